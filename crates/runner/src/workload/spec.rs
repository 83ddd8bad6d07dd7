//! The workload spec the supervisor reads from `TREZA_WORKLOAD_SPEC`.
//!
//! Parsing is lenient about representation (the web app writes numbers as
//! strings, ports as a comma-separated string) and strict about meaning:
//! every rejection names the field and the rule.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// How readiness is judged after the process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadType {
    /// Long-running; ready when an HTTP GET on the first exposed port answers 2xx/3xx.
    Service,
    /// Long-running; ready when still alive shortly after start.
    Daemon,
    /// Runs to completion; ready (successful) when it exits with status 0.
    Batch,
}

impl WorkloadType {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadType::Service => "service",
            WorkloadType::Daemon => "daemon",
            WorkloadType::Batch => "batch",
        }
    }
}

/// A validated workload description.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    /// argv; `command[0]` is looked up on PATH when it has no slash.
    pub command: Vec<String>,
    /// Added to a minimal base environment (PATH, HOME, LANG, ...).
    pub environment: BTreeMap<String, String>,
    pub workload_type: WorkloadType,
    pub expose_ports: Vec<u16>,
    pub health_check_path: String,
    /// Upper bound on the pause between startup health probes.
    pub health_check_interval: Duration,
    /// How long start waits for readiness. `None` for a batch without an
    /// explicit `startup_timeout_seconds`: it may run as long as it needs.
    pub startup_timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL when stopping (`stop_grace_seconds`).
    pub stop_grace: Duration,
}

/// What `start` records in `workload.json` for `status` and `stop`, which
/// get no spec: the spec without its command and environment (no secrets).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadMeta {
    pub workload_type: String,
    pub expose_ports: Vec<u16>,
    pub health_check_path: String,
    pub health_check_interval_seconds: f64,
    pub stop_grace_seconds: f64,
    /// SHA-256 of the whole spec (canonical JSON): `start` replaces a running
    /// workload whose spec changed instead of adopting it.
    #[serde(default)]
    pub spec_sha256: String,
}

/// SHA-256 (hex) of a spec's JSON with object keys sorted, so the same spec
/// written by Terraform or by the server hashes the same.
pub fn spec_digest(spec_text: &str) -> String {
    use sha2::{Digest, Sha256};
    fn canonical(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&m[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    match serde_json::from_str::<serde_json::Value>(spec_text) {
        Ok(v) => canonical(&v, &mut text),
        Err(_) => text.push_str(spec_text),
    }
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl WorkloadMeta {
    pub fn of(spec: &WorkloadSpec, spec_text: &str) -> Self {
        WorkloadMeta {
            spec_sha256: spec_digest(spec_text),
            workload_type: spec.workload_type.as_str().to_string(),
            expose_ports: spec.expose_ports.clone(),
            health_check_path: spec.health_check_path.clone(),
            health_check_interval_seconds: spec.health_check_interval.as_secs_f64(),
            stop_grace_seconds: spec.stop_grace.as_secs_f64(),
        }
    }

    pub fn stop_grace(&self) -> Duration {
        Duration::try_from_secs_f64(self.stop_grace_seconds).unwrap_or(DEFAULT_STOP_GRACE)
    }

    pub fn health_check_interval(&self) -> Duration {
        Duration::try_from_secs_f64(self.health_check_interval_seconds)
            .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL)
    }
}

/// Default startup deadline for services and daemons.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a workload gets between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// Why a spec was rejected: the field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub rule: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "workload spec field `{}`: {}", self.field, self.rule)
    }
}

impl std::error::Error for SpecError {}

fn reject(field: &str, rule: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        rule: rule.into(),
    }
}

impl WorkloadSpec {
    /// Parses the JSON text of a spec (an object, or a JSON string holding one).
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| reject("(spec)", format!("must be valid JSON ({e})")))?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, SpecError> {
        let object = match value {
            Value::Object(o) => o.clone(),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(o)) => o,
                _ => return Err(reject("(spec)", "must be a JSON object")),
            },
            _ => return Err(reject("(spec)", "must be a JSON object")),
        };
        Self::from_object(&object)
    }

    fn from_object(o: &Map<String, Value>) -> Result<Self, SpecError> {
        let command = parse_command(o.get("command"))?;
        let environment = parse_environment(o.get("environment"))?;
        let expose_ports = parse_ports(o.get("expose_ports"))?;
        let workload_type = match non_null(o.get("workload_type")) {
            None => {
                if expose_ports.is_empty() {
                    WorkloadType::Daemon
                } else {
                    WorkloadType::Service
                }
            }
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "service" => WorkloadType::Service,
                "daemon" => WorkloadType::Daemon,
                "batch" => WorkloadType::Batch,
                _ => {
                    return Err(reject(
                        "workload_type",
                        "must be one of service, daemon, batch",
                    ))
                }
            },
            Some(_) => {
                return Err(reject(
                    "workload_type",
                    "must be a string: service, daemon or batch",
                ))
            }
        };
        if workload_type == WorkloadType::Service && expose_ports.is_empty() {
            return Err(reject(
                "expose_ports",
                "a service needs at least one port to health-check",
            ));
        }
        let health_check_path = match non_null(o.get("health_check_path")) {
            None => "/".to_string(),
            Some(Value::String(s)) if s.is_empty() => "/".to_string(),
            Some(Value::String(s)) => {
                if !s.starts_with('/') {
                    return Err(reject("health_check_path", "must start with '/'"));
                }
                if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(reject(
                        "health_check_path",
                        "must not contain whitespace or control characters",
                    ));
                }
                s.clone()
            }
            Some(_) => return Err(reject("health_check_path", "must be a string")),
        };
        let health_check_interval =
            parse_seconds(o.get("health_check_interval"), "health_check_interval")?
                .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL);
        let explicit_timeout =
            parse_seconds(o.get("startup_timeout_seconds"), "startup_timeout_seconds")?;
        let startup_timeout = match (workload_type, explicit_timeout) {
            (_, Some(t)) => Some(t),
            (WorkloadType::Batch, None) => None,
            (_, None) => Some(DEFAULT_STARTUP_TIMEOUT),
        };
        let stop_grace = parse_seconds(o.get("stop_grace_seconds"), "stop_grace_seconds")?
            .unwrap_or(DEFAULT_STOP_GRACE);
        Ok(WorkloadSpec {
            command,
            environment,
            workload_type,
            expose_ports,
            health_check_path,
            health_check_interval,
            startup_timeout,
            stop_grace,
        })
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

fn parse_command(v: Option<&Value>) -> Result<Vec<String>, SpecError> {
    let items = match non_null(v) {
        None => return Err(reject("command", "is required: a non-empty argv list")),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(reject(
                "command",
                "must be an argv list of strings (no shell is used)",
            ))
        }
    };
    let mut argv = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if s.contains('\0') => {
                return Err(reject(
                    &format!("command[{i}]"),
                    "must not contain NUL bytes",
                ))
            }
            Value::String(s) => argv.push(s.clone()),
            Value::Number(n) => argv.push(n.to_string()),
            _ => return Err(reject(&format!("command[{i}]"), "must be a string")),
        }
    }
    match argv.first() {
        None => Err(reject("command", "must not be empty")),
        Some(first) if first.is_empty() => {
            Err(reject("command[0]", "must name the program to run"))
        }
        Some(_) => Ok(argv),
    }
}

fn parse_environment(v: Option<&Value>) -> Result<BTreeMap<String, String>, SpecError> {
    let map = match non_null(v) {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m.clone(),
        // The web app stores environmentVariables as a JSON string.
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(BTreeMap::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(reject(
                    "environment",
                    "must be an object of NAME -> string (or a JSON string of one)",
                ))
            }
        },
        Some(_) => return Err(reject("environment", "must be an object of NAME -> string")),
    };
    let mut env = BTreeMap::new();
    for (name, value) in map {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(reject(
                "environment",
                format!("variable name {name:?} must be non-empty and contain no '=' or NUL"),
            ));
        }
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                // Never echo the value: it may be a secret.
                return Err(reject(
                    &format!("environment.{name}"),
                    "must be a string, number or boolean",
                ));
            }
        };
        if text.contains('\0') {
            return Err(reject(
                &format!("environment.{name}"),
                "must not contain NUL bytes",
            ));
        }
        env.insert(name, text);
    }
    Ok(env)
}

fn parse_port(v: &Value, field: &str) -> Result<u16, SpecError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(reject(field, "must be a port number from 1 to 65535")),
    }
}

fn parse_ports(v: Option<&Value>) -> Result<Vec<u16>, SpecError> {
    match non_null(v) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_port(item, &format!("expose_ports[{i}]")))
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| parse_port(&Value::String(p.to_string()), "expose_ports"))
            .collect(),
        Some(n @ Value::Number(_)) => Ok(vec![parse_port(n, "expose_ports")?]),
        Some(_) => Err(reject(
            "expose_ports",
            "must be a list of ports or a comma-separated string",
        )),
    }
}

fn parse_seconds(v: Option<&Value>, field: &str) -> Result<Option<Duration>, SpecError> {
    let secs = match non_null(v) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match secs {
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        _ => Err(reject(
            field,
            "must be a number of seconds greater than 0 and at most 86400",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<WorkloadSpec, SpecError> {
        WorkloadSpec::from_value(&v)
    }

    #[test]
    fn minimal_spec_defaults_to_daemon_with_30s_deadline() {
        let s = spec(json!({"command": ["sleep", "100"]})).expect("valid");
        assert_eq!(s.workload_type, WorkloadType::Daemon);
        assert_eq!(s.startup_timeout, Some(DEFAULT_STARTUP_TIMEOUT));
        assert_eq!(s.health_check_path, "/");
        assert!(s.environment.is_empty());
        assert_eq!(s.stop_grace, DEFAULT_STOP_GRACE);
        let meta = WorkloadMeta::of(&s, r#"{"command": ["sleep", "100"]}"#);
        assert_eq!(
            meta.spec_sha256,
            spec_digest(r#"{ "command":["sleep","100"] }"#)
        );
        assert_ne!(
            meta.spec_sha256,
            spec_digest(r#"{"command": ["sleep", "101"]}"#)
        );
        assert_eq!(meta.stop_grace(), Duration::from_secs(10));
        assert_eq!(meta.workload_type, "daemon");
    }

    #[test]
    fn app_style_strings_are_accepted() {
        let s = spec(json!({
            "command": ["srv"],
            "workload_type": "Service",
            "expose_ports": "8080, 9090",
            "health_check_interval": "5",
            "startup_timeout_seconds": "12",
            "environment": "{\"A\": \"1\", \"B\": 2}"
        }))
        .expect("valid");
        assert_eq!(s.workload_type, WorkloadType::Service);
        assert_eq!(s.expose_ports, vec![8080, 9090]);
        assert_eq!(s.health_check_interval, Duration::from_secs(5));
        assert_eq!(s.startup_timeout, Some(Duration::from_secs(12)));
        assert_eq!(s.environment.get("B").map(String::as_str), Some("2"));
    }

    #[test]
    fn whole_spec_may_be_a_json_string() {
        let s = WorkloadSpec::from_json("\"{\\\"command\\\":[\\\"true\\\"]}\"").expect("valid");
        assert_eq!(s.command, vec!["true"]);
    }

    #[test]
    fn batch_without_timeout_has_no_deadline() {
        let s = spec(json!({"command": ["true"], "workload_type": "batch"})).expect("valid");
        assert_eq!(s.startup_timeout, None);
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (json!({}), "command"),
            (json!({"command": "echo hi"}), "command"),
            (json!({"command": []}), "command"),
            (json!({"command": [""]}), "command[0]"),
            (json!({"command": ["a", {}]}), "command[1]"),
            (
                json!({"command": ["a"], "workload_type": "cron"}),
                "workload_type",
            ),
            (
                json!({"command": ["a"], "workload_type": "service"}),
                "expose_ports",
            ),
            (
                json!({"command": ["a"], "expose_ports": [0]}),
                "expose_ports[0]",
            ),
            (
                json!({"command": ["a"], "expose_ports": "80,x"}),
                "expose_ports",
            ),
            (
                json!({"command": ["a"], "expose_ports": [80], "health_check_path": "x"}),
                "health_check_path",
            ),
            (
                json!({"command": ["a"], "expose_ports": [80], "health_check_path": "/a\r\nX: y"}),
                "health_check_path",
            ),
            (
                json!({"command": ["a"], "environment": {"A=B": "x"}}),
                "environment",
            ),
            (
                json!({"command": ["a"], "environment": {"A": ["x"]}}),
                "environment.A",
            ),
            (
                json!({"command": ["a"], "startup_timeout_seconds": -1}),
                "startup_timeout_seconds",
            ),
            (
                json!({"command": ["a"], "health_check_interval": "soon"}),
                "health_check_interval",
            ),
            (
                json!({"command": ["a"], "stop_grace_seconds": 0}),
                "stop_grace_seconds",
            ),
            (json!(["a"]), "(spec)"),
        ];
        for (value, field) in cases {
            let err = spec(value.clone()).expect_err(&format!("{value} should be rejected"));
            assert_eq!(err.field, field, "for {value}: {err}");
        }
    }

    #[test]
    fn environment_errors_never_echo_values() {
        let err = spec(json!({"command": ["a"], "environment": {"TOKEN": {"v": "s3cr3t-value"}}}))
            .expect_err("rejected");
        assert!(!err.to_string().contains("s3cr3t-value"));
    }
}
