//! Validation of an enclave request and the deployment preflight.
//!
//! Three layers, in order, each reporting every problem it finds:
//! 1. a JSON Schema per provider checks the *shape* of the raw
//!    `providerConfig` as the app writes it (numbers may be strings,
//!    lists may be comma-separated strings);
//! 2. coercion turns the raw values into a typed [`ProviderConfig`];
//! 3. business rules check ranges, allow-lists and how fields fit together.
//!
//! Schema errors are translated into [`FieldError`]s that name the field and a
//! short rule; schema vocabulary never reaches the user. Messages never echo
//! environment variable values, which may be secrets.

use crate::record::{Enclave, MAX_DESCRIPTION_LEN, MAX_NAME_LEN};
use crate::status::Status;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

/// Region used when a request names none.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Longest wallet address accepted (EVM addresses are 42, Solana ones 44).
pub const MAX_WALLET_LEN: usize = 128;
/// At most this many environment variables per enclave.
pub const MAX_ENV_VARS: usize = 100;
/// Longest environment variable value, and longest `command` argument.
pub const MAX_ENV_VALUE_LEN: usize = 4096;
pub const MAX_COMMAND_ARG_LEN: usize = 4096;
/// The parent instance of a Nitro enclave keeps at least this many vCPUs.
pub const PARENT_MIN_VCPUS: u32 = 2;
/// ... and at least this much memory (OS, Docker, EIF build, vsock proxy).
pub const PARENT_RESERVED_MEMORY_MIB: u32 = 2048;
/// A Nitro enclave gets at least this much memory per vCPU.
pub const MIN_MEMORY_MIB_PER_VCPU: u32 = 512;

// ---------------------------------------------------------------------------
// Errors

/// One thing wrong with a request: which field, which rule, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path from the request root, e.g. `providerConfig.cpuCount`.
    pub field: String,
    /// Short machine-readable rule: `required`, `type`, `range`, `enum`,
    /// `format`, `length`, `unique`, `fit`, `ratio`, `unsupported`, `json`, `status`.
    pub rule: String,
    /// A sentence for a human, naming the field, what is allowed and what was given.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            rule: rule.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every problem found in a request (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Whether some error names exactly this field and rule.
    pub fn has(&self, field: &str, rule: &str) -> bool {
        self.0.iter().any(|e| e.field == field && e.rule == rule)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

// ---------------------------------------------------------------------------
// Typed configuration

/// What the workload does once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadType {
    /// Runs to completion; exit code 0 is success.
    Batch,
    /// Listens on `exposePorts` and answers health checks.
    Service,
    /// Runs until stopped; no ports required.
    Daemon,
}

impl WorkloadType {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadType::Batch => "batch",
            WorkloadType::Service => "service",
            WorkloadType::Daemon => "daemon",
        }
    }
}

/// Providers treza can deploy to; each is a Terraform module in `providers/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Provider {
    #[serde(rename = "aws-nitro")]
    AwsNitro,
    #[serde(rename = "local")]
    Local,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::AwsNitro, Provider::Local];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::AwsNitro => "aws-nitro",
            Provider::Local => "local",
        }
    }

    pub fn parse(id: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == id)
    }
}

/// A validated `providerConfig`, with defaults filled in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image: Option<String>,
    pub cpu_count: u32,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub enable_debug: bool,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    pub workload_type: WorkloadType,
    #[serde(default)]
    pub expose_ports: Vec<u16>,
    #[serde(default)]
    pub aws_services: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
    pub health_check_interval: u32,
    /// How long the workload may take to become healthy before the deploy fails.
    pub startup_timeout_seconds: u32,
    /// The workload's argv (local provider only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

// Hand-written so environment variable values (possibly secrets) never reach a log via `{:?}`.
impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: BTreeMap<&str, &str> = self
            .environment_variables
            .keys()
            .map(|k| (k.as_str(), "***"))
            .collect();
        f.debug_struct("ProviderConfig")
            .field("docker_image", &self.docker_image)
            .field("cpu_count", &self.cpu_count)
            .field("memory_mib", &self.memory_mib)
            .field("instance_type", &self.instance_type)
            .field("enable_debug", &self.enable_debug)
            .field("environment_variables", &env)
            .field("workload_type", &self.workload_type)
            .field("expose_ports", &self.expose_ports)
            .field("aws_services", &self.aws_services)
            .field("health_check_path", &self.health_check_path)
            .field("health_check_interval", &self.health_check_interval)
            .field("startup_timeout_seconds", &self.startup_timeout_seconds)
            .field("command", &self.command)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Instance types

/// Default bound on a workload's start-up (the health check must pass within it).
pub const DEFAULT_STARTUP_TIMEOUT_SECONDS: u32 = 60;

/// An EC2 instance type that can host a Nitro enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceType {
    pub name: &'static str,
    pub vcpus: u32,
    pub memory_mib: u32,
}

const fn it(name: &'static str, vcpus: u32, memory_gib: u32) -> InstanceType {
    InstanceType {
        name,
        vcpus,
        memory_mib: memory_gib * 1024,
    }
}

/// Enclave-capable instance types treza accepts. The app offers the m6i and c6i
/// rows; the others are the same families' siblings, sized per AWS.
pub const INSTANCE_TYPES: &[InstanceType] = &[
    it("m6i.xlarge", 4, 16),
    it("m6i.2xlarge", 8, 32),
    it("m6i.4xlarge", 16, 64),
    it("m6i.8xlarge", 32, 128),
    it("c6i.xlarge", 4, 8),
    it("c6i.2xlarge", 8, 16),
    it("c6i.4xlarge", 16, 32),
    it("c6i.8xlarge", 32, 64),
    it("r6i.xlarge", 4, 32),
    it("r6i.2xlarge", 8, 64),
    it("r6i.4xlarge", 16, 128),
    it("m5.xlarge", 4, 16),
    it("m5.2xlarge", 8, 32),
    it("m5.4xlarge", 16, 64),
    it("c5.xlarge", 4, 8),
    it("c5.2xlarge", 8, 16),
    it("c5.4xlarge", 16, 32),
];

pub fn instance_type(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

// ---------------------------------------------------------------------------
// Requests

/// A request to create an enclave, as `POST /api/enclaves` receives it.
/// Every field defaults so that a missing one is reported with the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NewEnclave {
    pub name: String,
    pub description: String,
    pub region: String,
    pub wallet_address: String,
    pub provider_id: String,
    pub provider_config: Map<String, Value>,
}

impl NewEnclave {
    /// The region to store: the one given, or [`DEFAULT_REGION`].
    pub fn region_or_default(&self) -> &str {
        if self.region.is_empty() {
            DEFAULT_REGION
        } else {
            &self.region
        }
    }
}

/// Check a whole creation request; every error is reported, not just the first.
pub fn validate_new_enclave(req: &NewEnclave) -> Result<ProviderConfig, ValidationErrors> {
    let mut errs = Vec::new();
    check_identity(
        &req.name,
        &req.description,
        &req.region,
        &req.wallet_address,
        &mut errs,
    );
    let config = check_provider(&req.provider_id, &req.provider_config, &mut errs);
    finish(config, errs)
}

/// Check a provider configuration alone.
pub fn validate_provider_config(
    provider_id: &str,
    raw: &Map<String, Value>,
) -> Result<ProviderConfig, ValidationErrors> {
    let mut errs = Vec::new();
    let config = check_provider(provider_id, raw, &mut errs);
    finish(config, errs)
}

/// The deployment workflow's validation step: the record must be waiting for
/// deployment and everything in it must still be valid (records may be written
/// by clients that bypass the API).
pub fn preflight_deploy(e: &Enclave) -> Result<ProviderConfig, ValidationErrors> {
    let mut errs = Vec::new();
    if e.status != Status::PendingDeploy {
        errs.push(FieldError::new(
            "status",
            "status",
            format!(
                "deployment needs status {}, but enclave {} is {}",
                Status::PendingDeploy,
                e.id,
                e.status
            ),
        ));
    }
    check_id(&e.id, &mut errs);
    check_identity(
        &e.name,
        &e.description,
        &e.region,
        &e.wallet_address,
        &mut errs,
    );
    let config = check_provider(&e.provider_id, &e.provider_config, &mut errs);
    finish(config, errs)
}

/// The cleanup workflow's validation step. Only the status and the provider are
/// checked: a record whose configuration became invalid must still be destroyable.
pub fn preflight_destroy(e: &Enclave) -> Result<Provider, ValidationErrors> {
    let mut errs = Vec::new();
    if e.status != Status::PendingDestroy {
        errs.push(FieldError::new(
            "status",
            "status",
            format!(
                "destruction needs status {}, but enclave {} is {}",
                Status::PendingDestroy,
                e.id,
                e.status
            ),
        ));
    }
    check_id(&e.id, &mut errs);
    let provider = Provider::parse(&e.provider_id);
    if provider.is_none() {
        errs.push(unknown_provider(&e.provider_id));
    }
    finish(provider, errs)
}

fn finish<T>(value: Option<T>, errs: Vec<FieldError>) -> Result<T, ValidationErrors> {
    match value {
        Some(v) if errs.is_empty() => Ok(v),
        _ => Err(ValidationErrors(errs)),
    }
}

// ---------------------------------------------------------------------------
// Identity fields

fn check_id(id: &str, errs: &mut Vec<FieldError>) {
    if id.is_empty() {
        errs.push(FieldError::new("id", "required", "id is required"));
    }
}

fn check_identity(
    name: &str,
    description: &str,
    region: &str,
    wallet: &str,
    errs: &mut Vec<FieldError>,
) {
    if name.trim().is_empty() {
        errs.push(FieldError::new("name", "required", "name is required"));
    }
    check_free_text("name", name, MAX_NAME_LEN, errs);
    check_free_text("description", description, MAX_DESCRIPTION_LEN, errs);

    if wallet.trim().is_empty() {
        errs.push(FieldError::new(
            "walletAddress",
            "required",
            "walletAddress is required",
        ));
    } else if wallet.chars().count() > MAX_WALLET_LEN {
        errs.push(FieldError::new(
            "walletAddress",
            "length",
            format!(
                "walletAddress must be at most {MAX_WALLET_LEN} characters, got {}",
                wallet.chars().count()
            ),
        ));
    } else if wallet.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errs.push(FieldError::new(
            "walletAddress",
            "format",
            "walletAddress must not contain spaces or control characters",
        ));
    }

    if !region.is_empty() && !is_region(region) {
        errs.push(FieldError::new(
            "region",
            "format",
            format!(
                "region must look like an AWS region such as \"us-east-1\", got {}",
                quote(region)
            ),
        ));
    }
}

/// Free text is stored literally; only length and control characters are checked.
fn check_free_text(field: &str, value: &str, max: usize, errs: &mut Vec<FieldError>) {
    let len = value.chars().count();
    if len > max {
        errs.push(FieldError::new(
            field,
            "length",
            format!("{field} must be at most {max} characters, got {len}"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        errs.push(FieldError::new(
            field,
            "format",
            format!(
                "{field} must not contain control characters other than newline and tab, found U+{:04X}",
                c as u32
            ),
        ));
    }
}

/// `^[a-z]{2}(-[a-z]+)+-\d$`, e.g. `us-east-1`, `us-gov-west-1`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let n = parts.len();
    n >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..n - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[n - 1].len() == 1
        && parts[n - 1].bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------
// Schemas

const CONFIG: &str = "providerConfig";
const ENV: &str = "providerConfig.environmentVariables";
const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

fn common_properties() -> Value {
    json!({
        "dockerImage": {
            "type": "string", "minLength": 1, "maxLength": 512,
            "pattern": "^([A-Za-z0-9][A-Za-z0-9._/:@+-]*)?$"
        },
        "cpuCount": { "$ref": "#/$defs/wholeNumber" },
        "memoryMiB": { "$ref": "#/$defs/wholeNumber" },
        "instanceType": { "type": "string", "minLength": 1, "maxLength": 64 },
        "enableDebug": { "type": ["boolean", "string"], "enum": [true, false, "true", "false"] },
        "environmentVariables": { "type": ["object", "string"] },
        "workloadType": { "type": "string", "enum": ["batch", "service", "daemon"] },
        "exposePorts": {
            "type": ["string", "integer", "array"],
            "maxItems": 32,
            "items": { "$ref": "#/$defs/wholeNumber" }
        },
        "awsServices": {
            "type": ["string", "array"],
            "maxItems": 32,
            "items": { "type": "string" }
        },
        "healthCheckPath": { "type": "string", "maxLength": 1024, "pattern": "^/[!-~]*$" },
        "healthCheckInterval": { "$ref": "#/$defs/wholeNumber" },
        "startupTimeoutSeconds": { "$ref": "#/$defs/wholeNumber" },
        "command": {
            "type": "array", "minItems": 1, "maxItems": 256,
            "items": { "type": "string", "maxLength": MAX_COMMAND_ARG_LEN, "pattern": "^[^\\x00]*$" }
        }
    })
}

fn provider_schema(required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": required,
        "properties": common_properties(),
        "$defs": {
            "wholeNumber": {
                "type": ["number", "string"],
                "multipleOf": 1,
                "minimum": -999_999_999,
                "maximum": 999_999_999,
                "pattern": "^-?[0-9]{1,9}$"
            }
        }
    })
}

fn environment_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "maxProperties": MAX_ENV_VARS,
        "propertyNames": { "pattern": ENV_NAME_PATTERN },
        "additionalProperties": {
            "type": ["string", "number", "boolean"],
            "maxLength": MAX_ENV_VALUE_LEN
        }
    })
}

struct Schemas {
    aws_nitro: Validator,
    local: Validator,
    environment: Validator,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        // The schemas are constants of this module; failing to compile one is a bug here.
        let compile = |s: Value| {
            jsonschema::draft202012::new(&s)
                .unwrap_or_else(|e| panic!("treza-core: built-in JSON schema is invalid: {e}"))
        };
        Schemas {
            aws_nitro: compile(provider_schema(&[
                "dockerImage",
                "cpuCount",
                "memoryMiB",
                "instanceType",
            ])),
            local: compile(provider_schema(&["command"])),
            environment: compile(environment_schema()),
        }
    })
}

/// The raw JSON Schema for a provider's `providerConfig`, for docs and clients.
pub fn provider_config_schema(provider: Provider) -> Value {
    match provider {
        Provider::AwsNitro => {
            provider_schema(&["dockerImage", "cpuCount", "memoryMiB", "instanceType"])
        }
        Provider::Local => provider_schema(&["command"]),
    }
}

// ---------------------------------------------------------------------------
// Schema errors -> FieldErrors

/// What a field must be, in words, keyed by its path with indices as `[]`.
fn expectation(key: &str) -> &'static str {
    match key {
        "dockerImage" => {
            "a container image reference such as \"nginx:1.27\" (letters, digits and . _ / : @ + -)"
        }
        "cpuCount" | "memoryMiB" | "healthCheckInterval" | "startupTimeoutSeconds" => {
            "a whole number, or a string holding one such as \"2\""
        }
        "instanceType" => "an EC2 instance type name such as \"m6i.xlarge\"",
        "enableDebug" => "true or false",
        "environmentVariables" => {
            "an object of NAME: value pairs, or a string holding such a JSON object"
        }
        "workloadType" => "one of batch, service, daemon",
        "exposePorts" => {
            "a list of port numbers: an array, a number, or a comma-separated string such as \"80,443\""
        }
        "exposePorts[]" => "a port number",
        "awsServices" => "a list of service names: an array of strings or a comma-separated string",
        "awsServices[]" => "a service name string",
        "healthCheckPath" => "a URL path starting with '/' without spaces, such as \"/health\"",
        "command" => "a non-empty array of strings (the program and its arguments)",
        "command[]" => "a string without NUL characters",
        "" => "an object",
        _ => "a valid value",
    }
}

/// Renders a JSON pointer into the request as `a.b[0]`, returning the display
/// path and the lookup key (indices as `[]`).
fn render_path(prefix: &str, pointer: &str, root: &Value) -> (String, String) {
    let mut display = prefix.to_string();
    let mut key = String::new();
    let mut cur = Some(root);
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        match cur {
            Some(Value::Array(items)) => {
                display.push_str(&format!("[{seg}]"));
                key.push_str("[]");
                cur = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                display.push('.');
                display.push_str(&seg);
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(&seg);
                cur = other.and_then(|v| v.get(&seg));
            }
        }
    }
    (display, key)
}

/// A short description of a value for messages; `reveal` false shows only its kind.
fn describe(v: &Value, reveal: bool) -> String {
    let kind = match v {
        Value::Null => return "null".into(),
        Value::Bool(b) => {
            return if reveal {
                b.to_string()
            } else {
                "a boolean".into()
            }
        }
        Value::Number(n) => {
            return if reveal {
                n.to_string()
            } else {
                "a number".into()
            }
        }
        Value::String(s) => return if reveal { quote(s) } else { "a string".into() },
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    kind.into()
}

/// Quotes a user value for a message, shortened so messages stay readable.
fn quote(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{:?}...", head)
    } else {
        format!("{s:?}")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn len_of(v: &Value) -> usize {
    match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    }
}

/// Which document a schema error is about.
#[derive(Clone, Copy)]
enum Scope {
    /// A provider's `providerConfig`.
    Config(Provider),
    /// The environment map: keys are variable names, values may be secrets.
    Environment,
}

/// Translates one schema error into a field, a rule and a sentence.
fn translate(err: &ValidationError<'_>, scope: Scope, root: &Value) -> FieldError {
    let (prefix, reveal) = match scope {
        Scope::Config(_) => (CONFIG, true),
        Scope::Environment => (ENV, false),
    };
    let (field, key) = render_path(prefix, err.instance_path.as_str(), root);
    let expectation = |k: &str| match scope {
        Scope::Config(_) => expectation(k),
        Scope::Environment => {
            "a string (numbers and booleans are accepted and turned into strings)"
        }
    };
    let got = describe(&err.instance, reveal);
    let (rule, message) = match &err.kind {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            let field = format!("{field}.{name}");
            let why = match scope {
                Scope::Config(p) => format!(" for provider {p}"),
                Scope::Environment => String::new(),
            };
            return FieldError::new(
                field.clone(),
                "required",
                format!("{field} is required{why}"),
            );
        }
        ValidationErrorKind::Type { .. } => (
            "type",
            format!("{field} must be {}, got {got}", expectation(&key)),
        ),
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => (
            "enum",
            format!("{field} must be {}, got {got}", expectation(&key)),
        ),
        ValidationErrorKind::MultipleOf { .. } => (
            "type",
            format!("{field} must be {}, got {got}", expectation(&key)),
        ),
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Format { .. } => (
            "format",
            format!("{field} must be {}, got {got}", expectation(&key)),
        ),
        ValidationErrorKind::MinLength { limit } | ValidationErrorKind::MinItems { limit }
            if *limit == 1 =>
        {
            ("required", format!("{field} must not be empty"))
        }
        ValidationErrorKind::MinLength { limit } => (
            "length",
            format!(
                "{field} must be at least {}",
                plural(*limit, "character", "characters")
            ),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            "length",
            format!(
                "{field} must be at most {}, got {}",
                plural(*limit, "character", "characters"),
                len_of(&err.instance)
            ),
        ),
        ValidationErrorKind::MinItems { limit } => (
            "length",
            format!(
                "{field} must have at least {}",
                plural(*limit, "item", "items")
            ),
        ),
        ValidationErrorKind::MaxItems { limit } => (
            "length",
            format!(
                "{field} must have at most {}, got {}",
                plural(*limit, "item", "items"),
                len_of(&err.instance)
            ),
        ),
        ValidationErrorKind::MaxProperties { limit } => (
            "length",
            format!(
                "{field} must have at most {}, got {}",
                plural(*limit, "entry", "entries"),
                len_of(&err.instance)
            ),
        ),
        ValidationErrorKind::PropertyNames { error } => {
            let name = describe(&error.instance, true);
            (
                "format",
                format!(
                    "{field} has an invalid name {name}: names start with a letter or underscore and contain only letters, digits and underscores"
                ),
            )
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => (
            "range",
            format!("{field} must be at least {limit}, got {got}"),
        ),
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => (
            "range",
            format!("{field} must be at most {limit}, got {got}"),
        ),
        _ => (
            "invalid",
            format!("{field} must be {}, got {got}", expectation(&key)),
        ),
    };
    FieldError::new(field, rule, message)
}

// ---------------------------------------------------------------------------
// Provider configuration

fn unknown_provider(id: &str) -> FieldError {
    let allowed: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
    if id.is_empty() {
        FieldError::new(
            "providerId",
            "required",
            format!("providerId is required: one of {}", allowed.join(", ")),
        )
    } else {
        FieldError::new(
            "providerId",
            "enum",
            format!(
                "providerId must be one of {}, got {}",
                allowed.join(", "),
                quote(id)
            ),
        )
    }
}

/// Runs all three layers, pushing every error; returns the config only if it
/// could be built (callers still check `errs`).
fn check_provider(
    provider_id: &str,
    raw: &Map<String, Value>,
    errs: &mut Vec<FieldError>,
) -> Option<ProviderConfig> {
    let Some(provider) = Provider::parse(provider_id) else {
        errs.push(unknown_provider(provider_id));
        return None;
    };
    let before = errs.len();
    // An explicit null means "not given" (forms send null for empty optional fields).
    let root = Value::Object(
        raw.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let validator = match provider {
        Provider::AwsNitro => &schemas().aws_nitro,
        Provider::Local => &schemas().local,
    };
    // Top-level fields whose shape is wrong: later layers skip them.
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for e in validator.iter_errors(&root) {
        let top = match &e.kind {
            ValidationErrorKind::Required { property } => {
                property.as_str().unwrap_or_default().to_string()
            }
            _ => e
                .instance_path
                .as_str()
                .split('/')
                .nth(1)
                .unwrap_or_default()
                .to_string(),
        };
        broken.insert(top);
        errs.push(translate(&e, Scope::Config(provider), &root));
    }
    let usable = |k: &str| -> Option<&Value> {
        if broken.contains(k) {
            None
        } else {
            raw.get(k).filter(|v| !v.is_null())
        }
    };

    let text = |k: &str| usable(k).and_then(Value::as_str).map(str::to_string);
    let p = Parsed {
        docker_image: text("dockerImage"),
        instance_type: text("instanceType"),
        enable_debug: match usable("enableDebug") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        },
        cpu_count: usable("cpuCount").and_then(whole_number),
        memory_mib: usable("memoryMiB").and_then(whole_number),
        health_check_interval: usable("healthCheckInterval").and_then(whole_number),
        startup_timeout_seconds: usable("startupTimeoutSeconds").and_then(whole_number),
        workload_type: match usable("workloadType").and_then(Value::as_str) {
            Some("batch") => Some(WorkloadType::Batch),
            Some("service") => Some(WorkloadType::Service),
            Some("daemon") => Some(WorkloadType::Daemon),
            _ => None,
        },
        health_check_path: text("healthCheckPath"),
        command: match usable("command") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        },
    };
    let env_ok = usable("environmentVariables")
        .map(|v| environment(v, errs))
        .unwrap_or(Some(BTreeMap::new()));
    let ports_ok = if broken.contains("exposePorts") {
        None
    } else {
        usable("exposePorts")
            .map(|v| ports(v, errs))
            .unwrap_or(Some(Vec::new()))
    };
    let services_ok = usable("awsServices")
        .map(|v| services(v, errs))
        .unwrap_or(Some(Vec::new()));

    let config = business_rules(provider, raw, &broken, p, ports_ok.as_deref(), errs);

    if errs.len() > before {
        return None;
    }
    let mut config = config?;
    config.environment_variables = env_ok?;
    config.expose_ports = ports_ok?;
    config.aws_services = services_ok?;
    Some(config)
}

/// Values whose shape passed the schema, before range and fit checks.
struct Parsed {
    docker_image: Option<String>,
    instance_type: Option<String>,
    enable_debug: bool,
    cpu_count: Option<i64>,
    memory_mib: Option<i64>,
    health_check_interval: Option<i64>,
    startup_timeout_seconds: Option<i64>,
    workload_type: Option<WorkloadType>,
    health_check_path: Option<String>,
    command: Vec<String>,
}

/// A schema-checked whole number: an integer (possibly written `2.0`) or a numeric string.
fn whole_number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn range_error(field: &str, what: &str, got: i64) -> FieldError {
    FieldError::new(
        format!("{CONFIG}.{field}"),
        "range",
        format!("{CONFIG}.{field} must be {what}, got {got}"),
    )
}

fn business_rules(
    provider: Provider,
    raw: &Map<String, Value>,
    broken: &BTreeSet<String>,
    p: Parsed,
    ports: Option<&[u16]>,
    errs: &mut Vec<FieldError>,
) -> Option<ProviderConfig> {
    let present = |k: &str| raw.get(k).is_some_and(|v| !v.is_null());
    let field = |k: &str| format!("{CONFIG}.{k}");

    // CPU and memory.
    let (cpu, mem) = match provider {
        Provider::AwsNitro => {
            let cpu = p.cpu_count.and_then(|c| {
                if (2..=16).contains(&c) && c % 2 == 0 {
                    Some(c as u32)
                } else {
                    errs.push(range_error(
                        "cpuCount",
                        "an even number between 2 and 16",
                        c,
                    ));
                    None
                }
            });
            let mem = p.memory_mib.and_then(|m| {
                if (1024..=16384).contains(&m) {
                    Some(m as u32)
                } else {
                    errs.push(range_error("memoryMiB", "between 1024 and 16384", m));
                    None
                }
            });
            (cpu, mem)
        }
        Provider::Local => {
            let cpu = match p.cpu_count {
                None => Some(2),
                Some(c) if (1..=16).contains(&c) => Some(c as u32),
                Some(c) => {
                    errs.push(range_error("cpuCount", "between 1 and 16", c));
                    None
                }
            };
            let mem = match p.memory_mib {
                None => Some(1024),
                Some(m) if (128..=16384).contains(&m) => Some(m as u32),
                Some(m) => {
                    errs.push(range_error("memoryMiB", "between 128 and 16384", m));
                    None
                }
            };
            (cpu, mem)
        }
    };
    // Instance type, fit and ratio (Nitro only).
    if provider == Provider::AwsNitro {
        if let Some(name) = &p.instance_type {
            match instance_type(name) {
                None => {
                    let allowed: Vec<&str> = INSTANCE_TYPES.iter().map(|t| t.name).collect();
                    errs.push(FieldError::new(
                        field("instanceType"),
                        "enum",
                        format!(
                            "{} must be an enclave-capable instance type, one of {}, got {}",
                            field("instanceType"),
                            allowed.join(", "),
                            quote(name)
                        ),
                    ));
                }
                Some(t) => {
                    let max_cpu = t.vcpus.saturating_sub(PARENT_MIN_VCPUS);
                    if let Some(c) = cpu.filter(|c| *c > max_cpu) {
                        errs.push(FieldError::new(
                            field("cpuCount"),
                            "fit",
                            format!(
                                "{} {c} does not fit instanceType {}: it has {} vCPUs and the parent keeps {PARENT_MIN_VCPUS}, so the enclave can have at most {max_cpu}",
                                field("cpuCount"), t.name, t.vcpus
                            ),
                        ));
                    }
                    let max_mem = t.memory_mib.saturating_sub(PARENT_RESERVED_MEMORY_MIB);
                    if let Some(m) = mem.filter(|m| *m > max_mem) {
                        errs.push(FieldError::new(
                            field("memoryMiB"),
                            "fit",
                            format!(
                                "{} {m} does not fit instanceType {}: it has {} MiB and the parent keeps {PARENT_RESERVED_MEMORY_MIB}, so the enclave can have at most {max_mem}",
                                field("memoryMiB"), t.name, t.memory_mib
                            ),
                        ));
                    }
                }
            }
        }
        if let (Some(c), Some(m)) = (cpu, mem) {
            let need = c * MIN_MEMORY_MIB_PER_VCPU;
            if m < need {
                errs.push(FieldError::new(
                    field("memoryMiB"),
                    "ratio",
                    format!(
                        "{} must be at least {MIN_MEMORY_MIB_PER_VCPU} MiB per vCPU, so at least {need} for cpuCount {c}, got {m}",
                        field("memoryMiB")
                    ),
                ));
            }
        }
        if present("command") {
            errs.push(FieldError::new(
                field("command"),
                "unsupported",
                format!(
                    "{} is only supported by the local provider; aws-nitro runs the dockerImage's entrypoint",
                    field("command")
                ),
            ));
        }
    }

    // The program to run must be named.
    if provider == Provider::Local && p.command.first().is_some_and(|a| a.is_empty()) {
        errs.push(FieldError::new(
            format!("{CONFIG}.command[0]"),
            "required",
            format!("{CONFIG}.command[0] (the program to run) must not be empty"),
        ));
    }

    // Health check.
    let interval = match p.health_check_interval {
        None => Some(10),
        Some(i) if (1..=3600).contains(&i) => Some(i as u32),
        Some(i) => {
            errs.push(range_error(
                "healthCheckInterval",
                "between 1 and 3600 seconds",
                i,
            ));
            None
        }
    };
    let startup_timeout = match p.startup_timeout_seconds {
        None => Some(DEFAULT_STARTUP_TIMEOUT_SECONDS),
        Some(i) if (1..=3600).contains(&i) => Some(i as u32),
        Some(i) => {
            errs.push(range_error(
                "startupTimeoutSeconds",
                "between 1 and 3600 seconds",
                i,
            ));
            None
        }
    };
    // The app writes neither workloadType nor exposePorts: a workload without
    // ports cannot be a service, so the default follows the ports.
    let has_ports = ports.is_some_and(|p| !p.is_empty()) || broken.contains("exposePorts");
    let workload_type = p.workload_type.unwrap_or(if has_ports {
        WorkloadType::Service
    } else {
        WorkloadType::Daemon
    });
    if workload_type == WorkloadType::Service && ports.is_some_and(|p| p.is_empty()) {
        errs.push(FieldError::new(
            field("exposePorts"),
            "required",
            format!(
                "{} must list at least one port when workloadType is service",
                field("exposePorts")
            ),
        ));
    }
    let health_check_path = match (&p.health_check_path, workload_type) {
        (Some(path), _) => Some(path.clone()),
        (None, WorkloadType::Service) => Some("/".to_string()),
        (None, _) => None,
    };

    if broken.contains("workloadType")
        || broken.contains("healthCheckInterval")
        || broken.contains("startupTimeoutSeconds")
    {
        return None;
    }
    Some(ProviderConfig {
        docker_image: p.docker_image,
        cpu_count: cpu?,
        memory_mib: mem?,
        instance_type: p.instance_type,
        enable_debug: p.enable_debug,
        environment_variables: BTreeMap::new(),
        workload_type,
        expose_ports: Vec::new(),
        aws_services: Vec::new(),
        health_check_path,
        health_check_interval: interval?,
        startup_timeout_seconds: startup_timeout?,
        command: p.command,
    })
}

/// `environmentVariables`: an object, or a string holding a JSON object.
fn environment(v: &Value, errs: &mut Vec<FieldError>) -> Option<BTreeMap<String, String>> {
    let parsed;
    let obj = match v {
        Value::Object(_) => v,
        Value::String(s) if s.trim().is_empty() => return Some(BTreeMap::new()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(inner @ Value::Object(_)) => {
                parsed = inner;
                &parsed
            }
            Ok(other) => {
                errs.push(FieldError::new(
                    ENV,
                    "type",
                    format!(
                        "{ENV} must be {}, got a string holding {}",
                        expectation("environmentVariables"),
                        describe(&other, false)
                    ),
                ));
                return None;
            }
            Err(e) => {
                // serde_json's error names a line and column, never the text.
                errs.push(FieldError::new(
                    ENV,
                    "json",
                    format!("{ENV} is a string but not valid JSON: {e}"),
                ));
                return None;
            }
        },
        _ => return None, // the schema already reported it
    };
    let before = errs.len();
    for e in schemas().environment.iter_errors(obj) {
        errs.push(translate(&e, Scope::Environment, obj));
    }
    if errs.len() > before {
        return None;
    }
    let map = obj.as_object()?;
    Some(
        map.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
    )
}

/// `exposePorts`: `"80,443"`, `80`, `[80, "443"]`.
fn ports(v: &Value, errs: &mut Vec<FieldError>) -> Option<Vec<u16>> {
    let field = format!("{CONFIG}.exposePorts");
    let mut items: Vec<(String, Option<i64>)> = Vec::new();
    match v {
        Value::String(s) => {
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                items.push((quote(part), part.parse::<i64>().ok()));
            }
        }
        Value::Array(a) => {
            for x in a {
                items.push((describe(x, true), whole_number(x)));
            }
        }
        other => items.push((describe(other, true), whole_number(other))),
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (shown, n) in items {
        match n.and_then(|n| u16::try_from(n).ok()).filter(|n| *n >= 1) {
            Some(port) if out.contains(&port) => {
                ok = false;
                errs.push(FieldError::new(
                    field.clone(),
                    "unique",
                    format!("{field} lists port {port} more than once"),
                ));
            }
            Some(port) => out.push(port),
            None => {
                ok = false;
                errs.push(FieldError::new(
                    field.clone(),
                    "range",
                    format!("{field} must contain port numbers between 1 and 65535, got {shown}"),
                ));
            }
        }
    }
    if out.len() > 32 {
        ok = false;
        errs.push(FieldError::new(
            field.clone(),
            "length",
            format!("{field} must have at most 32 items, got {}", out.len()),
        ));
    }
    ok.then_some(out)
}

/// `awsServices`: `"kms,s3"` or `["kms", "s3"]`; lowercase names, duplicates dropped.
fn services(v: &Value, errs: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let field = format!("{CONFIG}.awsServices");
    let names: Vec<&str> = match v {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::trim).collect(),
        _ => return None,
    };
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for name in names {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !valid {
            ok = false;
            errs.push(FieldError::new(
                field.clone(),
                "format",
                format!(
                    "{field} must contain AWS service names such as \"kms\" or \"s3\" (lowercase letters, digits and '-'), got {}",
                    quote(name)
                ),
            ));
        } else if !out.iter().any(|s| s == name) {
            out.push(name.to_string());
        }
    }
    if out.len() > 32 {
        ok = false;
        errs.push(FieldError::new(
            field.clone(),
            "length",
            format!("{field} must have at most 32 items, got {}", out.len()),
        ));
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-east-1",
            "us-east-12",
            "use-east-1",
            "us--1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn schemas_compile() {
        let _ = schemas();
    }

    #[test]
    fn render_paths() {
        let root = json!({"command": ["a", "b"], "x": {"y": 1}});
        assert_eq!(
            render_path("p", "/command/1", &root),
            ("p.command[1]".to_string(), "command[]".to_string())
        );
        assert_eq!(
            render_path("p", "/x/y", &root),
            ("p.x.y".to_string(), "x.y".to_string())
        );
        assert_eq!(
            render_path("p", "", &root),
            ("p".to_string(), String::new())
        );
    }
}
