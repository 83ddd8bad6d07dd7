//! What a run is asked to do, and the environment-variable front door that
//! builds it (the variable names ECS container overrides set).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};

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
    pub variables: Map<String, Value>,
    /// The provider module, e.g. `providers/local`; its files are copied into
    /// the workspace before each run.
    pub module_dir: PathBuf,
    /// Per-enclave directory holding the module copy and `terraform.tfstate`:
    /// one state per enclave.
    pub workspace_dir: PathBuf,
    /// Terraform to use; `None` means search (see [`crate::find_terraform`]).
    pub terraform: Option<PathBuf>,
    /// Values redacted from every log line and from the error message.
    pub secrets: Vec<String>,
    /// Limit for each Terraform phase (init, plan, apply, ...).
    pub phase_timeout: Duration,
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
            phase_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Longest accepted `PHASE_TIMEOUT_SECONDS` (a day).
pub const MAX_PHASE_TIMEOUT_SECONDS: u64 = 86_400;

fn is_safe_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !s.starts_with('.')
}

/// Builds a request from environment variables:
///
/// | variable | rule |
/// |---|---|
/// | `ENCLAVE_ID` | required; letters, digits, `_`, `-`, `.`; at most 128; not starting with `.` |
/// | `ACTION` | required; plan, deploy or destroy |
/// | `PROVIDER_ID` | optional (default from `defaults`); same characters as ENCLAVE_ID, at most 64 |
/// | `CONFIGURATION` | JSON object of module variables; required for plan/deploy, optional for destroy |
/// | `MODULE_DIR` | optional; default `<providers_dir>/<PROVIDER_ID>` |
/// | `WORKSPACE_DIR` | optional; default `<workspaces_dir>/<ENCLAVE_ID>` |
/// | `TREZA_TERRAFORM` | optional path of the terraform executable |
/// | `PHASE_TIMEOUT_SECONDS` | optional whole number 1..=86400 |
///
/// Secrets for redaction: every value of `workload.environment` in the
/// configuration (object or JSON string) and every string under a key that
/// `treza_core::redact::is_secret_key` calls secret (token, password, ...).
pub fn request_from_env(
    vars: &HashMap<String, String>,
    defaults: &RunnerDefaults,
) -> Result<RunRequest, InputError> {
    let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

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
    let variables = match get("CONFIGURATION") {
        None if action == Action::Destroy => Map::new(),
        None => {
            return Err(input_error(
                "CONFIGURATION",
                "is required for plan and deploy: a JSON object of module variables",
            ))
        }
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
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
    let module_dir = get("MODULE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| defaults.providers_dir.join(provider_id));
    let workspace_dir = get("WORKSPACE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| defaults.workspaces_dir.join(enclave_id));
    let terraform = get("TREZA_TERRAFORM").map(PathBuf::from);
    let phase_timeout = match get("PHASE_TIMEOUT_SECONDS") {
        None => defaults.phase_timeout,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=MAX_PHASE_TIMEOUT_SECONDS).contains(&n) => Duration::from_secs(n),
            _ => {
                return Err(input_error(
                    "PHASE_TIMEOUT_SECONDS",
                    format!(
                        "must be a whole number of seconds from 1 to {MAX_PHASE_TIMEOUT_SECONDS}"
                    ),
                ))
            }
        },
    };
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
    [
        "secret",
        "token",
        "password",
        "passwd",
        "credential",
        "private_key",
        "privatekey",
        "api_key",
        "apikey",
    ]
    .iter()
    .any(|word| k.contains(word))
}

/// The values in a module configuration that must never be logged.
pub fn secrets_in_configuration(variables: &Map<String, Value>) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(workload) = variables.get("workload") {
        let workload = match workload {
            Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
            other => other.clone(),
        };
        let env = match workload.get("environment") {
            Some(Value::String(s)) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        if let Value::Object(env) = env {
            for value in env.values() {
                collect_strings(value, &mut secrets);
            }
        }
        collect_secret_keys(&workload, &mut secrets);
    }
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
}
