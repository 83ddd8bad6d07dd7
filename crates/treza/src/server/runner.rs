//! How the local `ecs:runTask.sync` integration runs the Terraform runner:
//! the same runner the ECS task runs, as a child process (`treza runner`),
//! configured through the same environment variables.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};
use treza_store::LogEntry;

/// Receives batches of log entries as the runner produces them.
pub type LogSink = Arc<dyn Fn(Vec<LogEntry>) + Send + Sync>;

pub struct RunnerInvocation {
    pub enclave_id: String,
    /// The container environment the workflow set (ENCLAVE_ID, ACTION, ...).
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunnerOutcome {
    pub task_id: u64,
    pub exit_code: i64,
    pub outputs: Map<String, Value>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait RunnerBackend: Send + Sync {
    fn run(&self, inv: RunnerInvocation, logs: LogSink) -> BoxFuture<'_, RunnerOutcome>;
}

/// Where the child runner finds things on this machine.
pub struct ChildProcessRunner {
    pub exe: PathBuf,
    pub providers_dir: PathBuf,
    pub data_dir: PathBuf,
    pub terraform: Option<PathBuf>,
    pub phase_timeout_seconds: u64,
    next_task: AtomicU64,
}

impl ChildProcessRunner {
    pub fn new(
        exe: PathBuf,
        providers_dir: PathBuf,
        data_dir: PathBuf,
        terraform: Option<PathBuf>,
    ) -> Self {
        ChildProcessRunner {
            exe,
            providers_dir,
            data_dir,
            terraform,
            phase_timeout_seconds: 900,
            next_task: AtomicU64::new(1),
        }
    }

    pub fn enclave_dir(data_dir: &std::path::Path, enclave_id: &str) -> PathBuf {
        data_dir.join("enclaves").join(enclave_id)
    }

    /// Translates the validated provider configuration into the provider
    /// module's input variables.
    fn module_variables(
        &self,
        enclave_id: &str,
        provider_id: &str,
        config: &Value,
    ) -> Result<Value, String> {
        match provider_id {
            "local" => {
                let workload_dir = Self::enclave_dir(&self.data_dir, enclave_id).join("workload");
                Ok(json!({
                    "enclave_id": enclave_id,
                    "supervisor": self.exe.to_string_lossy(),
                    "workload_dir": workload_dir.to_string_lossy(),
                    "workload": local_workload_spec(config),
                }))
            }
            other => Err(format!(
                "provider '{other}' cannot run on this machine (embedded mode runs the 'local' provider)"
            )),
        }
    }
}

impl RunnerBackend for ChildProcessRunner {
    fn run(&self, inv: RunnerInvocation, logs: LogSink) -> BoxFuture<'_, RunnerOutcome> {
        Box::pin(async move {
            let task_id = self.next_task.fetch_add(1, Ordering::Relaxed);
            let fail = |t: &str, m: String| RunnerOutcome {
                task_id,
                exit_code: 2,
                error_type: Some(t.to_string()),
                error_message: Some(m),
                ..Default::default()
            };
            let provider = inv.env.get("PROVIDER_ID").cloned().unwrap_or_default();
            let config: Value = match inv
                .env
                .get("CONFIGURATION")
                .map(|c| serde_json::from_str(c))
            {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    return fail("InvalidInput", format!("CONFIGURATION is not JSON: {e}"))
                }
                None => return fail("InvalidInput", "CONFIGURATION is required".into()),
            };
            let vars = match self.module_variables(&inv.enclave_id, &provider, &config) {
                Ok(v) => v,
                Err(m) => return fail("InvalidInput", m),
            };
            let mut cmd = tokio::process::Command::new(&self.exe);
            cmd.arg("runner")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", std::env::var_os("HOME").unwrap_or_default())
                .env("ENCLAVE_ID", &inv.enclave_id)
                .env(
                    "ACTION",
                    inv.env.get("ACTION").map(String::as_str).unwrap_or(""),
                )
                .env("PROVIDER_ID", &provider)
                .env("CONFIGURATION", vars.to_string())
                .env("MODULE_DIR", self.providers_dir.join(&provider))
                .env(
                    "WORKSPACE_DIR",
                    Self::enclave_dir(&self.data_dir, &inv.enclave_id).join("terraform"),
                )
                .env(
                    "PHASE_TIMEOUT_SECONDS",
                    self.phase_timeout_seconds.to_string(),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(tf) = &self.terraform {
                cmd.env("TREZA_TERRAFORM", tf);
            }
            // If the server dies, the runner is told to stop (it interrupts
            // terraform and releases the state) rather than running on unowned.
            // SAFETY: prctl is async-signal-safe and touches only this child.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    return fail(
                        "Internal",
                        format!("cannot start the runner {}: {e}", self.exe.display()),
                    )
                }
            };
            // Dropped before the runner exits (the execution stopped waiting,
            // the server shuts down): ask it to stop, so it interrupts
            // Terraform and releases the state instead of being killed.
            let mut stop_guard = StopOnDrop(child.id());
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                return fail("Internal", "runner pipes unavailable".into());
            };
            let err_logs = logs.clone();
            let stderr_task = tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    err_logs(vec![LogEntry {
                        timestamp: crate::clock::now_iso(),
                        source: "ecs".into(),
                        message: line,
                        fields: Some(json!({"stream": "stderr"})),
                    }]);
                }
            });
            let mut result: Option<Value> = None;
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(Value::Object(mut m)) if m.contains_key("log") => {
                        let l = m.remove("log").unwrap_or(Value::Null);
                        logs(vec![LogEntry {
                            timestamp: l
                                .get("timestamp")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .unwrap_or_else(crate::clock::now_iso),
                            source: "ecs".into(),
                            message: l
                                .get("message")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            fields: Some(
                                json!({"phase": l.get("phase"), "stream": l.get("stream")}),
                            ),
                        }]);
                    }
                    Ok(Value::Object(mut m)) if m.contains_key("result") => {
                        result = m.remove("result")
                    }
                    _ => logs(vec![LogEntry {
                        timestamp: crate::clock::now_iso(),
                        source: "ecs".into(),
                        message: line,
                        fields: None,
                    }]),
                }
            }
            let status = child.wait().await;
            stop_guard.0 = None;
            let _ = stderr_task.await;
            let exit_code = match status {
                Ok(s) => s.code().map(i64::from).unwrap_or(137),
                Err(e) => return fail("Internal", format!("waiting for the runner failed: {e}")),
            };
            let r = result.unwrap_or(Value::Null);
            let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            RunnerOutcome {
                task_id,
                exit_code,
                outputs: r
                    .get("outputs")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                error_type: text("error_type"),
                error_message: text("error_message"),
            }
        })
    }
}

/// Sends SIGTERM to a still-running child when dropped.
struct StopOnDrop(Option<u32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill only sends a signal to our own, not yet reaped, child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// The local provider's `workload` variable (the supervisor's spec) from a
/// validated provider configuration (camelCase, as `ProviderConfig` serializes).
pub fn local_workload_spec(config: &Value) -> Value {
    let get = |k: &str, default: Value| config.get(k).cloned().unwrap_or(default);
    json!({
        "command": get("command", json!([])),
        "environment": get("environmentVariables", json!({})),
        "workload_type": get("workloadType", json!("service")),
        "expose_ports": get("exposePorts", json!([])),
        "health_check_path": get("healthCheckPath", json!("/")),
        "health_check_interval": get("healthCheckInterval", json!(10)),
        "startup_timeout_seconds": get("startupTimeoutSeconds", json!(60)),
    })
}

/// A runner that succeeds at once: used by the pipeline benchmark only, to
/// measure treza's own overhead without Terraform.
pub struct InstantRunner;

impl RunnerBackend for InstantRunner {
    fn run(&self, inv: RunnerInvocation, _logs: LogSink) -> BoxFuture<'_, RunnerOutcome> {
        Box::pin(async move {
            let mut outputs = Map::new();
            outputs.insert(
                "instance_id".into(),
                json!(format!("instant-{}", inv.enclave_id)),
            );
            RunnerOutcome {
                task_id: 0,
                exit_code: 0,
                outputs,
                ..Default::default()
            }
        })
    }
}
