//! What a run is asked to do, and the environment-variable front door that
//! builds it (the variable names ECS container overrides set).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::backend::{S3Backend, StateBackend};
use crate::input;
use crate::variables::{module_variables, ModuleOverrides};

/// The Terraform action of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// init + plan; changes nothing.
    Plan,
    /// init + plan + apply + output.
    Deploy,
    /// init + destroy; succeeds when nothing exists.
    Destroy,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Plan => "plan",
            Action::Deploy => "deploy",
            Action::Destroy => "destroy",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not plan, deploy or destroy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}: allowed are plan, deploy, destroy")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "plan" => Ok(Action::Plan),
            "deploy" | "apply" => Ok(Action::Deploy),
            "destroy" => Ok(Action::Destroy),
            _ => Err(UnknownAction(s.to_string())),
        }
    }
}

/// One run of the runner for one enclave.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub enclave_id: String,
    pub action: Action,
    pub provider_id: String,
    /// The module's input variables, written verbatim to
    /// `terraform.tfvars.json` by serde (never through a shell or HCL text).
    /// Empty: keep the workspace's previous tfvars (destroy without
    /// configuration).
    pub variables: Map<String, Value>,
    /// The provider module, e.g. `providers/local`; its files are copied into
    /// the workspace before each run.
    pub module_dir: PathBuf,
    /// Per-enclave directory holding the module copy (and, with the local
    /// backend, `terraform.tfstate`): one state per enclave.
    pub workspace_dir: PathBuf,
    /// Terraform to use; `None` means search (see [`crate::find_terraform`]).
    pub terraform: Option<PathBuf>,
    /// Values redacted from every log line and from the error message.
    pub secrets: Vec<String>,
    /// Limit for each Terraform phase (init, plan, apply, ...).
    pub phase_timeout: Duration,
    /// Per-phase limits (`init`, `plan`, `apply`, `output`, `destroy`) that
    /// replace `phase_timeout` for that phase.
    pub phase_timeouts: BTreeMap<String, Duration>,
    /// How long plan/apply/destroy wait for a state lock held by another
    /// run before failing with StateLocked.
    pub lock_timeout: Duration,
    /// Where the state lives.
    pub backend: StateBackend,
    /// A directory of provider plugins (a filesystem mirror baked into the
    /// ECS image): `init` takes plugins only from there, downloading nothing.
    pub plugin_dir: Option<PathBuf>,
}

impl RunRequest {
    /// A request with the defaults: local state, [`DEFAULT_PHASE_TIMEOUT`],
    /// [`DEFAULT_LOCK_TIMEOUT`], terraform searched for, no secrets.
    pub fn new(
        enclave_id: impl Into<String>,
        action: Action,
        provider_id: impl Into<String>,
        variables: Map<String, Value>,
        module_dir: impl Into<PathBuf>,
        workspace_dir: impl Into<PathBuf>,
    ) -> Self {
        RunRequest {
            enclave_id: enclave_id.into(),
            action,
            provider_id: provider_id.into(),
            variables,
            module_dir: module_dir.into(),
            workspace_dir: workspace_dir.into(),
            terraform: None,
            secrets: Vec::new(),
            phase_timeout: DEFAULT_PHASE_TIMEOUT,
            phase_timeouts: BTreeMap::new(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            backend: StateBackend::Local,
            plugin_dir: None,
        }
    }

    /// The limit for one phase.
    pub fn timeout_for(&self, phase: &str) -> Duration {
        self.phase_timeouts
            .get(phase)
            .copied()
            .unwrap_or(self.phase_timeout)
    }
}

/// Bad runner input: the variable and the rule it broke. Nothing was run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {rule}")]
pub struct InputError {
    pub variable: String,
    pub rule: String,
}

fn input_error(variable: &str, rule: impl Into<String>) -> InputError {
    InputError {
        variable: variable.to_string(),
        rule: rule.into(),
    }
}

/// Default limit of one Terraform phase.
pub const DEFAULT_PHASE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default wait for a state lock held by another run (`LOCK_TIMEOUT_SECONDS`).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest accepted `LOCK_TIMEOUT_SECONDS` (an hour).
pub const MAX_LOCK_TIMEOUT_SECONDS: u64 = 3600;

/// Where things are when the environment does not say.
#[derive(Debug, Clone)]
pub struct RunnerDefaults {
    /// `MODULE_DIR` defaults to `<providers_dir>/<PROVIDER_ID>`.
    pub providers_dir: PathBuf,
    /// `WORKSPACE_DIR` defaults to `<workspaces_dir>/<ENCLAVE_ID>`.
    pub workspaces_dir: PathBuf,
    /// `PROVIDER_ID` default.
    pub provider_id: String,
    /// `PHASE_TIMEOUT_SECONDS` default.
    pub phase_timeout: Duration,
}

impl Default for RunnerDefaults {
    fn default() -> Self {
        RunnerDefaults {
            providers_dir: PathBuf::from("providers"),
            workspaces_dir: PathBuf::from(".treza/workspaces"),
            provider_id: "local".to_string(),
            phase_timeout: DEFAULT_PHASE_TIMEOUT,
        }
    }
}

/// Longest accepted `PHASE_TIMEOUT_SECONDS` (a day).
pub const MAX_PHASE_TIMEOUT_SECONDS: u64 = 86_400;

/// The per-phase overrides of `PHASE_TIMEOUT_SECONDS`: variable and phase.
pub const PHASE_TIMEOUT_VARIABLES: &[(&str, &str)] = &[
    ("INIT_TIMEOUT_SECONDS", "init"),
    ("PLAN_TIMEOUT_SECONDS", "plan"),
    ("APPLY_TIMEOUT_SECONDS", "apply"),
    ("DESTROY_TIMEOUT_SECONDS", "destroy"),
];

fn is_safe_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !s.starts_with('.')
}

/// Builds a request from environment variables. Every variable is checked
/// before anything runs; the first bad one is reported with its rule.
///
/// | variable | rule |
/// |---|---|
/// | `ENCLAVE_ID` | required; letters, digits, `_`, `-`, `.`; at most 128; not starting with `.` |
/// | `ACTION` | required; plan, deploy or destroy |
/// | `PROVIDER_ID` | optional (default from `defaults`); same characters as ENCLAVE_ID, at most 64 |
/// | `CONFIGURATION` | JSON object; required for plan/deploy, optional for destroy (see [`crate::variables`]) |
/// | `WALLET_ADDRESS` | optional; at most 128 characters, no spaces or control characters |
/// | `DOCKER_IMAGE` | optional; image reference, letters, digits and `. _ / : @ + -`, at most 512 |
/// | `WORKLOAD_TYPE` | optional; batch, service or daemon |
/// | `HEALTH_CHECK_PATH` | optional; starts with `/`, printable ASCII without spaces, at most 1024 |
/// | `HEALTH_CHECK_INTERVAL` | optional; whole seconds 1..=3600 |
/// | `AWS_SERVICES` | optional; `kms,s3` or a JSON array; lowercase names, at most 32 |
/// | `EXPOSE_PORTS` | optional; `80,443` or a JSON array; ports 1..=65535, at most 32 |
/// | `VPC_ID`, `SUBNET_ID`, `SHARED_SECURITY_GROUP_ID` | optional; `vpc-`/`subnet-`/`sg-` + 8 or 17 lowercase hex digits |
/// | `BOOTSTRAP_BUCKET` | optional; S3 bucket for aws-nitro's bootstrap documents |
/// | `TF_STATE_BUCKET` | optional; S3 bucket name; selects the S3 backend |
/// | `TF_STATE_REGION` | S3 only; AWS region; default `AWS_REGION`, then `AWS_DEFAULT_REGION` |
/// | `TF_LOCK_TABLE` | S3 only, optional; DynamoDB table name (default: S3 lock file) |
/// | `LOCK_TIMEOUT_SECONDS` | optional; whole seconds 0..=3600, default 120 |
/// | `PHASE_TIMEOUT_SECONDS` | optional; whole seconds 1..=86400 |
/// | `INIT_/PLAN_/APPLY_/DESTROY_TIMEOUT_SECONDS` | optional; whole seconds 1..=86400, for that phase only |
/// | `MODULE_DIR` | optional; default `<providers_dir>/<PROVIDER_ID>` |
/// | `WORKSPACE_DIR` | optional; default `<workspaces_dir>/<ENCLAVE_ID>` |
/// | `TREZA_TERRAFORM` | optional path of the terraform executable |
/// | `TF_PLUGIN_DIR` | optional; absolute path of an existing provider mirror; `init -plugin-dir`, no downloads |
///
/// Empty values count as unset. Secrets for redaction: every value of
/// `workload.environment` / `environmentVariables` in the configuration and
/// every string under a key that looks secret (token, password, ...).
pub fn request_from_env(
    vars: &HashMap<String, String>,
    defaults: &RunnerDefaults,
) -> Result<RunRequest, InputError> {
    let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    // Parses an optional variable, naming it in the error.
    fn opt<T>(
        value: Option<&str>,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, InputError> {
        value
            .map(|v| parse(v).map_err(|rule| input_error(name, rule)))
            .transpose()
    }

    let enclave_id = get("ENCLAVE_ID").ok_or_else(|| input_error("ENCLAVE_ID", "is required"))?;
    if !is_safe_name(enclave_id, 128) {
        return Err(input_error(
            "ENCLAVE_ID",
            "must be 1-128 letters, digits, '_', '-' or '.', not starting with '.'",
        ));
    }
    let action: Action = get("ACTION")
        .ok_or_else(|| input_error("ACTION", "is required: plan, deploy or destroy"))?
        .parse()
        .map_err(|e: UnknownAction| input_error("ACTION", e.to_string()))?;
    let provider_id = get("PROVIDER_ID").unwrap_or(&defaults.provider_id);
    if !is_safe_name(provider_id, 64) {
        return Err(input_error(
            "PROVIDER_ID",
            "must be 1-64 letters, digits, '_', '-' or '.', not starting with '.'",
        ));
    }
    let configuration = match get("CONFIGURATION") {
        None if action == Action::Destroy => None,
        None => {
            return Err(input_error(
                "CONFIGURATION",
                "is required for plan and deploy: a JSON object of module variables",
            ))
        }
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Some(map),
            Ok(_) => {
                return Err(input_error(
                    "CONFIGURATION",
                    "must be a JSON object of module variables",
                ))
            }
            Err(e) => {
                // serde's message carries a position, never the input text.
                return Err(input_error(
                    "CONFIGURATION",
                    format!("must be valid JSON ({e})"),
                ));
            }
        },
    };

    let overrides = ModuleOverrides {
        wallet_address: opt(
            get("WALLET_ADDRESS"),
            "WALLET_ADDRESS",
            input::wallet_address,
        )?,
        docker_image: opt(get("DOCKER_IMAGE"), "DOCKER_IMAGE", input::docker_image)?,
        workload_type: opt(get("WORKLOAD_TYPE"), "WORKLOAD_TYPE", |t| {
            input::workload_type(t).map(str::to_string)
        })?,
        health_check_path: opt(
            get("HEALTH_CHECK_PATH"),
            "HEALTH_CHECK_PATH",
            input::health_check_path,
        )?,
        health_check_interval: opt(get("HEALTH_CHECK_INTERVAL"), "HEALTH_CHECK_INTERVAL", |t| {
            input::seconds(t, 1, 3600).map(|d| d.as_secs())
        })?,
        aws_services: opt(get("AWS_SERVICES"), "AWS_SERVICES", input::aws_services)?,
        expose_ports: opt(get("EXPOSE_PORTS"), "EXPOSE_PORTS", input::ports)?,
        vpc_id: opt(get("VPC_ID"), "VPC_ID", |t| input::aws_id(t, "vpc"))?,
        subnet_id: opt(get("SUBNET_ID"), "SUBNET_ID", |t| {
            input::aws_id(t, "subnet")
        })?,
        shared_security_group_id: opt(
            get("SHARED_SECURITY_GROUP_ID"),
            "SHARED_SECURITY_GROUP_ID",
            |t| input::aws_id(t, "sg"),
        )?,
        bootstrap_bucket: opt(
            get("BOOTSTRAP_BUCKET"),
            "BOOTSTRAP_BUCKET",
            input::s3_bucket,
        )?,
    };

    let backend = match opt(get("TF_STATE_BUCKET"), "TF_STATE_BUCKET", input::s3_bucket)? {
        None => {
            for name in ["TF_STATE_REGION", "TF_LOCK_TABLE"] {
                if get(name).is_some() {
                    return Err(input_error(
                        name,
                        "is only used with the S3 backend: set TF_STATE_BUCKET too, or unset it",
                    ));
                }
            }
            StateBackend::Local
        }
        Some(bucket) => {
            let region = match get("TF_STATE_REGION") {
                Some(r) => input::region(r).map_err(|rule| input_error("TF_STATE_REGION", rule))?,
                None => {
                    let (name, value) = ["AWS_REGION", "AWS_DEFAULT_REGION"]
                        .into_iter()
                        .find_map(|n| get(n).map(|v| (n, v)))
                        .ok_or_else(|| {
                            input_error(
                                "TF_STATE_REGION",
                                "is required with TF_STATE_BUCKET (or set AWS_REGION)",
                            )
                        })?;
                    input::region(value).map_err(|rule| {
                        input_error(
                            name,
                            format!("{rule} (used because TF_STATE_REGION is unset)"),
                        )
                    })?
                }
            };
            let lock_table = opt(get("TF_LOCK_TABLE"), "TF_LOCK_TABLE", input::dynamodb_table)?;
            StateBackend::S3(S3Backend {
                bucket,
                region,
                lock_table,
            })
        }
    };

    let lock_timeout = opt(get("LOCK_TIMEOUT_SECONDS"), "LOCK_TIMEOUT_SECONDS", |t| {
        input::seconds(t, 0, MAX_LOCK_TIMEOUT_SECONDS)
    })?
    .unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let phase_timeout = opt(get("PHASE_TIMEOUT_SECONDS"), "PHASE_TIMEOUT_SECONDS", |t| {
        input::seconds(t, 1, MAX_PHASE_TIMEOUT_SECONDS)
    })?
    .unwrap_or(defaults.phase_timeout);
    let mut phase_timeouts = BTreeMap::new();
    for (name, phase) in PHASE_TIMEOUT_VARIABLES {
        if let Some(t) = opt(get(name), name, |t| {
            input::seconds(t, 1, MAX_PHASE_TIMEOUT_SECONDS)
        })? {
            phase_timeouts.insert(phase.to_string(), t);
        }
    }

    let module_dir = get("MODULE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| defaults.providers_dir.join(provider_id));
    let workspace_dir = get("WORKSPACE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| defaults.workspaces_dir.join(enclave_id));
    let terraform = get("TREZA_TERRAFORM").map(PathBuf::from);
    let plugin_dir = opt(get("TF_PLUGIN_DIR"), "TF_PLUGIN_DIR", |t| {
        let p = PathBuf::from(t);
        if !p.is_absolute() {
            Err("must be an absolute path".to_string())
        } else if !p.is_dir() {
            Err("must be an existing directory of provider plugins".to_string())
        } else {
            Ok(p)
        }
    })?;

    let variables = module_variables(provider_id, enclave_id, configuration, &overrides)?;
    let secrets = secrets_in_configuration(&variables);
    Ok(RunRequest {
        enclave_id: enclave_id.to_string(),
        action,
        provider_id: provider_id.to_string(),
        variables,
        module_dir: absolute(&module_dir),
        workspace_dir: absolute(&workspace_dir),
        terraform,
        secrets,
        phase_timeout,
        phase_timeouts,
        lock_timeout,
        backend,
        plugin_dir,
    })
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn key_looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    treza_core::redact::is_secret_key(key)
        || ["private_key", "api_key", "apikey"]
            .iter()
            .any(|word| k.contains(word))
}

/// An object, or a JSON string holding one (how the app stores env maps).
fn as_object(value: &Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(m) => Some(m.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        },
        _ => None,
    }
}

/// The values in a module configuration that must never be logged.
pub fn secrets_in_configuration(variables: &Map<String, Value>) -> Vec<String> {
    let mut secrets = Vec::new();
    let env_values = |env: Option<&Value>, out: &mut Vec<String>| {
        if let Some(env) = env.and_then(as_object) {
            env.values().for_each(|v| collect_strings(v, out));
        }
    };
    // local: workload.environment; aws-nitro: environment_variables.
    if let Some(workload) = variables.get("workload").and_then(as_object) {
        env_values(workload.get("environment"), &mut secrets);
        collect_secret_keys(&Value::Object(workload), &mut secrets);
    }
    env_values(variables.get("environment_variables"), &mut secrets);
    for (key, value) in variables {
        if key_looks_secret(key) {
            collect_strings(value, &mut secrets);
        } else {
            collect_secret_keys(value, &mut secrets);
        }
    }
    secrets.sort();
    secrets.dedup();
    secrets
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn collect_secret_keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key_looks_secret(key) {
                    collect_strings(v, out);
                } else {
                    collect_secret_keys(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_keys(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn defaults() -> RunnerDefaults {
        RunnerDefaults {
            providers_dir: PathBuf::from("/opt/treza/providers"),
            workspaces_dir: PathBuf::from("/var/lib/treza/ws"),
            ..RunnerDefaults::default()
        }
    }

    #[test]
    fn action_parsing() {
        assert_eq!("deploy".parse::<Action>(), Ok(Action::Deploy));
        assert_eq!("DESTROY".parse::<Action>(), Ok(Action::Destroy));
        assert_eq!("plan".parse::<Action>(), Ok(Action::Plan));
        assert!("launch".parse::<Action>().is_err());
    }

    #[test]
    fn full_request_with_defaults() {
        let config = json!({
            "enclave_id": "enc_1",
            "workload": {"command": ["x"], "environment": {"API_TOKEN": "tok-123", "MODE": "prod"}},
            "db_password": "hunter22"
        });
        let req = request_from_env(
            &env(&[
                ("ENCLAVE_ID", "enc_1"),
                ("ACTION", "deploy"),
                ("CONFIGURATION", &config.to_string()),
                ("PHASE_TIMEOUT_SECONDS", "90"),
            ]),
            &defaults(),
        )
        .expect("valid");
        assert_eq!(req.action, Action::Deploy);
        assert_eq!(req.provider_id, "local");
        assert_eq!(req.module_dir, PathBuf::from("/opt/treza/providers/local"));
        assert_eq!(req.workspace_dir, PathBuf::from("/var/lib/treza/ws/enc_1"));
        assert_eq!(req.phase_timeout, Duration::from_secs(90));
        assert_eq!(req.variables.get("enclave_id"), Some(&json!("enc_1")));
        for s in ["tok-123", "prod", "hunter22"] {
            assert!(
                req.secrets.contains(&s.to_string()),
                "{s} in {:?}",
                req.secrets
            );
        }
        assert!(!req.secrets.contains(&"enc_1".to_string()));
    }

    #[test]
    fn workload_given_as_json_string_still_yields_secrets() {
        let workload =
            json!({"command": ["x"], "environment": "{\"K\": \"v-secret\"}"}).to_string();
        let vars = json!({ "workload": workload });
        let Value::Object(vars) = vars else {
            unreachable!()
        };
        assert_eq!(
            secrets_in_configuration(&vars),
            vec!["v-secret".to_string()]
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("ACTION", "deploy"), ("CONFIGURATION", "{}")],
                "ENCLAVE_ID",
            ),
            (
                &[
                    ("ENCLAVE_ID", "../etc"),
                    ("ACTION", "deploy"),
                    ("CONFIGURATION", "{}"),
                ],
                "ENCLAVE_ID",
            ),
            (&[("ENCLAVE_ID", "e1"), ("CONFIGURATION", "{}")], "ACTION"),
            (
                &[
                    ("ENCLAVE_ID", "e1"),
                    ("ACTION", "launch"),
                    ("CONFIGURATION", "{}"),
                ],
                "ACTION",
            ),
            (
                &[("ENCLAVE_ID", "e1"), ("ACTION", "deploy")],
                "CONFIGURATION",
            ),
            (
                &[
                    ("ENCLAVE_ID", "e1"),
                    ("ACTION", "deploy"),
                    ("CONFIGURATION", "[1]"),
                ],
                "CONFIGURATION",
            ),
            (
                &[
                    ("ENCLAVE_ID", "e1"),
                    ("ACTION", "deploy"),
                    ("CONFIGURATION", "{nope"),
                ],
                "CONFIGURATION",
            ),
            (
                &[
                    ("ENCLAVE_ID", "e1"),
                    ("ACTION", "deploy"),
                    ("CONFIGURATION", "{}"),
                    ("PROVIDER_ID", "a/b"),
                ],
                "PROVIDER_ID",
            ),
            (
                &[
                    ("ENCLAVE_ID", "e1"),
                    ("ACTION", "deploy"),
                    ("CONFIGURATION", "{}"),
                    ("PHASE_TIMEOUT_SECONDS", "0"),
                ],
                "PHASE_TIMEOUT_SECONDS",
            ),
            (
                &[
                    ("ENCLAVE_ID", "e1"),
                    ("ACTION", "deploy"),
                    ("CONFIGURATION", "{}"),
                    ("PHASE_TIMEOUT_SECONDS", "soon"),
                ],
                "PHASE_TIMEOUT_SECONDS",
            ),
        ];
        for (pairs, variable) in cases {
            let err = request_from_env(&env(pairs), &defaults()).expect_err("must fail");
            assert_eq!(&err.variable, variable, "{err}");
        }
    }

    #[test]
    fn destroy_needs_no_configuration() {
        let req = request_from_env(
            &env(&[("ENCLAVE_ID", "e1"), ("ACTION", "destroy")]),
            &defaults(),
        )
        .expect("valid");
        assert!(req.variables.is_empty());
    }

    #[test]
    fn bad_json_error_does_not_echo_the_configuration() {
        let err = request_from_env(
            &env(&[
                ("ENCLAVE_ID", "e1"),
                ("ACTION", "deploy"),
                ("CONFIGURATION", "{\"password\": \"pw-XYZ\" oops}"),
            ]),
            &defaults(),
        )
        .expect_err("bad json");
        assert!(!err.to_string().contains("pw-XYZ"));
    }

    /// A valid deploy plus `extra`.
    fn deploy_with(extra: &[(&str, &str)]) -> Result<RunRequest, InputError> {
        let mut pairs = vec![
            ("ENCLAVE_ID", "e1"),
            ("ACTION", "deploy"),
            ("CONFIGURATION", "{\"workload\": {\"command\": [\"x\"]}}"),
        ];
        pairs.extend_from_slice(extra);
        request_from_env(&env(&pairs), &defaults())
    }

    /// Every individual variable: a bad value is reported under its own
    /// name, with the rule, and a good one is accepted.
    #[test]
    fn each_variable_is_validated_under_its_name() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "WALLET_ADDRESS",
                &["0x742d35Cc6634C0532925a3b844Bc454e4438f44e"],
                &["0x1 2", "a\u{7}b"],
            ),
            (
                "DOCKER_IMAGE",
                &["nginx:1.27", "ghcr.io/a/b@sha256:00ff"],
                &["$(id)", "-x", "a b"],
            ),
            ("WORKLOAD_TYPE", &["batch", "Service", "daemon"], &["cron"]),
            ("HEALTH_CHECK_PATH", &["/healthz"], &["healthz", "/a b"]),
            (
                "HEALTH_CHECK_INTERVAL",
                &["1", "3600"],
                &["0", "3601", "5s", "1.5"],
            ),
            (
                "AWS_SERVICES",
                &["kms,s3", "[\"kms\"]"],
                &["KMS", "kms;s3", "[1"],
            ),
            (
                "EXPOSE_PORTS",
                &["80,443", "[8080]"],
                &["0", "70000", "http"],
            ),
            (
                "VPC_ID",
                &["vpc-0123abcd", "vpc-0123456789abcdef0"],
                &["vpc-xyz", "subnet-0123abcd"],
            ),
            (
                "SUBNET_ID",
                &["subnet-0123abcd"],
                &["subnet-01", "vpc-0123abcd"],
            ),
            (
                "SHARED_SECURITY_GROUP_ID",
                &["sg-0123abcd"],
                &["sg-0123ABCD", "sg0123abcd"],
            ),
            (
                "LOCK_TIMEOUT_SECONDS",
                &["0", "120", "3600"],
                &["-1", "3601", "2m"],
            ),
            (
                "PHASE_TIMEOUT_SECONDS",
                &["1", "86400"],
                &["0", "86401", "soon"],
            ),
            ("INIT_TIMEOUT_SECONDS", &["60"], &["0"]),
            ("PLAN_TIMEOUT_SECONDS", &["60"], &["x"]),
            ("APPLY_TIMEOUT_SECONDS", &["60"], &["99999999"]),
            ("DESTROY_TIMEOUT_SECONDS", &["60"], &["-5"]),
            (
                "TF_STATE_BUCKET",
                &["treza-state"],
                &["Treza_State", "ab", "1.2.3.4"],
            ),
        ];
        for (name, good, bad) in cases {
            for value in *good {
                let extra: Vec<(&str, &str)> = if *name == "TF_STATE_BUCKET" {
                    vec![(name, value), ("TF_STATE_REGION", "us-east-1")]
                } else {
                    vec![(name, value)]
                };
                if let Err(e) = deploy_with(&extra) {
                    panic!("{name}={value:?} should be accepted: {e}");
                }
            }
            for value in *bad {
                let err = deploy_with(&[(name, value)]).expect_err(&format!("{name}={value:?}"));
                assert_eq!(&err.variable, name, "{name}={value:?}: {err}");
                assert!(err.rule.contains("must"), "{err}");
            }
        }
    }

    #[test]
    fn individual_variables_merge_into_the_module_variables() {
        let req = deploy_with(&[
            ("WORKLOAD_TYPE", "service"),
            ("EXPOSE_PORTS", "8080"),
            ("HEALTH_CHECK_PATH", "/ready"),
            ("HEALTH_CHECK_INTERVAL", "5"),
            ("VPC_ID", "vpc-0123abcd"),
            ("DOCKER_IMAGE", "nginx:1"),
        ])
        .expect("valid");
        assert_eq!(
            Value::Object(req.variables),
            json!({
                "workload": {"command": ["x"], "workload_type": "service", "expose_ports": [8080],
                             "health_check_path": "/ready", "health_check_interval": 5},
                "enclave_id": "e1"
            })
        );
        let nitro = request_from_env(
            &env(&[
                ("ENCLAVE_ID", "e1"),
                ("ACTION", "deploy"),
                ("PROVIDER_ID", "aws-nitro"),
                (
                    "CONFIGURATION",
                    "{\"dockerImage\": \"a:1\", \"environmentVariables\": {\"K\": \"v-secret-1\"}}",
                ),
                ("DOCKER_IMAGE", "b:2"),
                ("SUBNET_ID", "subnet-0123abcd"),
                ("WALLET_ADDRESS", "0xabc"),
            ]),
            &defaults(),
        )
        .expect("valid");
        assert_eq!(nitro.variables["workload"]["image"], json!("b:2"));
        assert_eq!(nitro.variables["subnet_id"], json!("subnet-0123abcd"));
        assert_eq!(nitro.variables["wallet_address"], json!("0xabc"));
        assert_eq!(nitro.secrets, vec!["v-secret-1".to_string()]);
    }

    #[test]
    fn defaults_are_local_state_and_two_minute_lock_wait() {
        let req = deploy_with(&[]).expect("valid");
        assert_eq!(req.backend, StateBackend::Local);
        assert_eq!(req.lock_timeout, DEFAULT_LOCK_TIMEOUT);
        assert_eq!(req.lock_timeout, Duration::from_secs(120));
        assert_eq!(req.timeout_for("apply"), DEFAULT_PHASE_TIMEOUT);
    }

    #[test]
    fn per_phase_timeouts_override_the_phase_timeout() {
        let req = deploy_with(&[
            ("PHASE_TIMEOUT_SECONDS", "100"),
            ("APPLY_TIMEOUT_SECONDS", "900"),
            ("LOCK_TIMEOUT_SECONDS", "7"),
        ])
        .expect("valid");
        assert_eq!(req.timeout_for("init"), Duration::from_secs(100));
        assert_eq!(req.timeout_for("apply"), Duration::from_secs(900));
        assert_eq!(req.lock_timeout, Duration::from_secs(7));
    }

    #[test]
    fn s3_backend_from_the_environment() {
        let req = deploy_with(&[
            ("TF_STATE_BUCKET", "treza-state"),
            ("TF_STATE_REGION", "eu-west-1"),
        ])
        .expect("valid");
        assert_eq!(
            req.backend,
            StateBackend::S3(S3Backend {
                bucket: "treza-state".into(),
                region: "eu-west-1".into(),
                lock_table: None
            })
        );
        let req = deploy_with(&[
            ("TF_STATE_BUCKET", "treza-state"),
            ("AWS_REGION", "ap-south-1"),
            ("TF_LOCK_TABLE", "treza-locks"),
        ])
        .expect("valid");
        assert_eq!(
            req.backend,
            StateBackend::S3(S3Backend {
                bucket: "treza-state".into(),
                region: "ap-south-1".into(),
                lock_table: Some("treza-locks".into())
            })
        );
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("TF_STATE_BUCKET", "treza-state")], "TF_STATE_REGION"),
            (
                &[
                    ("TF_STATE_BUCKET", "treza-state"),
                    ("TF_STATE_REGION", "mars-1"),
                ],
                "TF_STATE_REGION",
            ),
            (
                &[
                    ("TF_STATE_BUCKET", "treza-state"),
                    ("AWS_REGION", "nowhere"),
                ],
                "AWS_REGION",
            ),
            (
                &[
                    ("TF_STATE_BUCKET", "treza-state"),
                    ("TF_STATE_REGION", "us-east-1"),
                    ("TF_LOCK_TABLE", "x"),
                ],
                "TF_LOCK_TABLE",
            ),
            (&[("TF_STATE_REGION", "us-east-1")], "TF_STATE_REGION"),
            (&[("TF_LOCK_TABLE", "treza-locks")], "TF_LOCK_TABLE"),
        ];
        for (extra, variable) in cases {
            let err = deploy_with(extra).expect_err("must fail");
            assert_eq!(&err.variable, variable, "{extra:?}: {err}");
        }
    }

    #[test]
    fn destroy_without_configuration_ignores_individual_variables() {
        let req = request_from_env(
            &env(&[
                ("ENCLAVE_ID", "e1"),
                ("ACTION", "destroy"),
                ("WORKLOAD_TYPE", "batch"),
            ]),
            &defaults(),
        )
        .expect("valid");
        assert!(req.variables.is_empty());
        // ...but they are still validated.
        let err = request_from_env(
            &env(&[
                ("ENCLAVE_ID", "e1"),
                ("ACTION", "destroy"),
                ("WORKLOAD_TYPE", "cron"),
            ]),
            &defaults(),
        )
        .expect_err("bad");
        assert_eq!(err.variable, "WORKLOAD_TYPE");
    }
}

#[cfg(test)]
mod plugin_dir_tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plugin_dir_must_be_an_existing_absolute_directory() {
        let base = [("ENCLAVE_ID", "e1"), ("ACTION", "destroy")];
        let defaults = RunnerDefaults::default();
        for (value, rule) in [
            ("relative/dir", "absolute"),
            ("/nonexistent/treza-plugins", "existing"),
        ] {
            let mut vars = env(&base);
            vars.insert("TF_PLUGIN_DIR".into(), value.into());
            let err = request_from_env(&vars, &defaults).expect_err("rejected");
            assert_eq!(err.variable, "TF_PLUGIN_DIR");
            assert!(err.rule.contains(rule), "{err}");
        }
        let dir = std::env::temp_dir();
        let mut vars = env(&base);
        vars.insert("TF_PLUGIN_DIR".into(), dir.to_string_lossy().into_owned());
        let req = request_from_env(&vars, &defaults).expect("valid");
        assert_eq!(req.plugin_dir.as_deref(), Some(dir.as_path()));
        let init = &crate::driver::phase_commands(&req, "tfplan")[0];
        assert!(
            init.args
                .contains(&format!("-plugin-dir={}", dir.display())),
            "{:?}",
            init.args
        );
    }
}
