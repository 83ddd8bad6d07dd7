//! The status monitor: moves PAUSING and RESUMING enclaves of the local
//! provider by stopping and starting their workload through its supervisor,
//! the way the original system's scheduled status-monitor Lambda stopped and
//! started EC2 instances. Resume waits for the health check: an enclave is
//! DEPLOYED again only when its workload answers (and, unlike the original,
//! resume restarts the workload itself, not just the host).

use super::runner::{local_workload_spec, ChildProcessRunner};
use crate::clock;
use serde_json::json;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use treza_core::{Enclave, Status};
use treza_store::{Condition, LogEntry, Store};

pub struct Monitor {
    pub store: Arc<Store>,
    /// The binary implementing `workload start|stop` (this one).
    pub supervisor: PathBuf,
    pub data_dir: PathBuf,
    /// `TREZA_HEALTH_INTERVAL_SECONDS`, default 10.
    health_interval: Duration,
    busy: Mutex<HashSet<String>>,
}

/// How often the monitor looks, besides being woken by commits.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// How often DEPLOYED local workloads are checked (process alive, health probe).
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// errorType values the health check sets and clears on a DEPLOYED enclave.
const CRASHED: &str = "WorkloadCrashed";
const UNHEALTHY: &str = "WorkloadUnhealthy";

impl Monitor {
    pub fn new(store: Arc<Store>, supervisor: PathBuf, data_dir: PathBuf) -> Self {
        Monitor {
            store,
            supervisor,
            data_dir,
            health_interval: std::env::var("TREZA_HEALTH_INTERVAL_SECONDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs)
                .unwrap_or(HEALTH_INTERVAL),
            busy: Mutex::new(HashSet::new()),
        }
    }

    pub async fn run(self: Arc<Self>, wake: Arc<Notify>) {
        let mut last_health = std::time::Instant::now();
        loop {
            if let Err(e) = self.sweep() {
                tracing::error!(error = %e, "status monitor");
            }
            if last_health.elapsed() >= self.health_interval {
                last_health = std::time::Instant::now();
                if let Err(e) = self.check_health().await {
                    tracing::error!(error = %e, "status monitor health check");
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(SWEEP_INTERVAL.min(self.health_interval)) => {}
            }
        }
    }

    fn sweep(self: &Arc<Self>) -> anyhow::Result<()> {
        for (status, action) in [(Status::Pausing, "stop"), (Status::Resuming, "start")] {
            for e in self.store.list_enclaves(None, Some(status))? {
                if e.provider_id != "local" {
                    continue;
                }
                if !self
                    .busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(e.id.clone())
                {
                    continue;
                }
                let me = self.clone();
                tokio::spawn(async move {
                    let id = e.id.clone();
                    if let Err(err) = me.transition(e, action).await {
                        tracing::error!(enclave = %id, error = %err, "status monitor");
                    }
                    me.busy
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                });
            }
        }
        Ok(())
    }

    /// Checks every DEPLOYED local workload. The lifecycle has no move from
    /// DEPLOYED to FAILED, so a crash or a failing health check is reported on
    /// the record (errorType WorkloadCrashed / WorkloadUnhealthy, errorMessage
    /// the reason) and in the enclave's error log; a recovery clears it.
    async fn check_health(&self) -> anyhow::Result<()> {
        for e in self.store.list_enclaves(None, Some(Status::Deployed))? {
            if e.provider_id != "local"
                || self
                    .busy
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&e.id)
            {
                continue;
            }
            let dir = ChildProcessRunner::enclave_dir(&self.data_dir, &e.id).join("workload");
            let status =
                tokio::task::spawn_blocking(move || treza_runner::workload::workload_status(&dir))
                    .await?;
            let finished_batch = !status.running && status.exit_code == Some(0) && !status.crashed;
            let problem = if status.crashed || (!status.running && !finished_batch) {
                Some((
                    CRASHED,
                    status
                        .reason
                        .unwrap_or_else(|| "the workload is not running".into()),
                ))
            } else if status.running && !status.healthy {
                Some((
                    UNHEALTHY,
                    status
                        .reason
                        .unwrap_or_else(|| "the health check fails".into()),
                ))
            } else {
                None
            };
            let current = (e.error_type.as_deref(), e.error_message.as_deref());
            let change = match &problem {
                Some((t, m)) if current != (Some(*t), Some(m.as_str())) => true,
                None => matches!(current.0, Some(CRASHED | UNHEALTHY)),
                _ => false,
            };
            if !change {
                continue;
            }
            let cond = Condition {
                expected_version: Some(e.version),
                expected_status: Some(vec![Status::Deployed]),
            };
            let written = self
                .store
                .update_enclave(&e.id, &cond, &clock::now_iso(), |r| {
                    match &problem {
                        Some((t, m)) => {
                            r.error_type = Some((*t).to_string());
                            r.error_message = Some(m.clone());
                        }
                        None => {
                            r.error_type = None;
                            r.error_message = None;
                        }
                    }
                    Ok::<(), std::convert::Infallible>(())
                });
            if written.is_ok() {
                match &problem {
                    Some((t, m)) => self.log(&e.id, "errors", format!("status monitor: {t}: {m}")),
                    None => self.log(
                        &e.id,
                        "lambda",
                        "status monitor: the workload is healthy again".into(),
                    ),
                }
            }
        }
        Ok(())
    }

    async fn transition(&self, e: Enclave, action: &'static str) -> anyhow::Result<()> {
        // A problem that retrying cannot fix ends the transition FAILED,
        // never stuck in PAUSING/RESUMING.
        let config = match treza_core::validate_provider_config(&e.provider_id, &e.provider_config)
        {
            Ok(c) => c,
            Err(errs) => {
                return self.record(
                    &e,
                    Status::Failed,
                    Some(format!("stored configuration no longer validates: {errs}")),
                );
            }
        };
        let spec = local_workload_spec(&serde_json::to_value(&config)?);
        let dir = ChildProcessRunner::enclave_dir(&self.data_dir, &e.id).join("workload");
        self.log(
            &e.id,
            "lambda",
            format!("status monitor: workload {action}"),
        );
        let out = tokio::process::Command::new(&self.supervisor)
            .args(["workload", action])
            .env("TREZA_WORKLOAD_DIR", &dir)
            .env("TREZA_WORKLOAD_SPEC", spec.to_string())
            .env("TREZA_ENCLAVE_ID", &e.id)
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(err) => {
                let msg = format!(
                    "cannot run the workload supervisor {}: {err}",
                    self.supervisor.display()
                );
                return self.record(&e, Status::Failed, Some(msg));
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (next, error) = match (e.status, out.status.success()) {
            (Status::Pausing, true) => (Status::Paused, None),
            (Status::Resuming, true) => (Status::Deployed, None),
            _ => {
                let reason = stderr
                    .lines()
                    .find_map(|l| l.strip_prefix("treza-workload: error: "))
                    .unwrap_or("the workload supervisor failed")
                    .to_string();
                (Status::Failed, Some(reason))
            }
        };
        self.record(&e, next, error)
    }

    /// Moves the enclave on from the status it had when the monitor picked it up.
    fn record(&self, e: &Enclave, next: Status, error: Option<String>) -> anyhow::Result<()> {
        let cond = Condition {
            expected_version: Some(e.version),
            expected_status: Some(vec![e.status]),
        };
        self.store
            .update_enclave(&e.id, &cond, &clock::now_iso(), |r| {
                r.status = next;
                if let Some(msg) = &error {
                    r.error_type = Some("WorkloadFailed".into());
                    r.error_message = Some(msg.clone());
                }
                Ok::<(), std::convert::Infallible>(())
            })
            .map_err(|err| anyhow::anyhow!("cannot record {next}: {err}"))?;
        let source = if error.is_some() { "errors" } else { "lambda" };
        self.log(
            &e.id,
            source,
            format!(
                "status monitor: {} -> {next}{}",
                e.status,
                error.map(|m| format!(": {m}")).unwrap_or_default()
            ),
        );
        Ok(())
    }

    fn log(&self, id: &str, source: &str, message: String) {
        let entry = LogEntry {
            timestamp: clock::now_iso(),
            source: source.into(),
            message,
            fields: Some(json!({"function": "treza-status-monitor"})),
        };
        if let Err(e) = self.store.append_logs(id, &[entry]) {
            tracing::error!(error = %e, "cannot store a log entry");
        }
    }
}
