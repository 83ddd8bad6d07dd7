//! Drives workflow executions: feeds the sans-IO ASL engine its clock and
//! task results, and journals every step so a restart resumes each
//! execution where it stopped.

use super::host::Host;
use crate::clock;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use treza_asl::{
    Execution, ExecutionContext, ExecutionStatus, HistoryEvent, Outcome, Poll, StateMachine,
    TaskFailure,
};
use treza_core::Status;
use treza_core::{Workflow, WorkflowStart};
use treza_store::{Condition, CreateOutcome, LogEntry, NewExecution, Store};

/// How often a failing driver restarts from the journal before giving up
/// (the execution stays RUNNING in the journal and resumes at the next start).
const DRIVER_ATTEMPTS: u32 = 8;

/// The tasks an execution is waiting for; dropping it stops them (a runner
/// child is told to stop and interrupts Terraform cleanly).
#[derive(Default)]
struct RunningTasks(HashMap<u64, tokio::task::JoinHandle<()>>);

impl Drop for RunningTasks {
    fn drop(&mut self) {
        for (_, h) in self.0.drain() {
            h.abort();
        }
    }
}

pub struct Engine {
    store: Arc<Store>,
    host: Arc<Host>,
    machines: HashMap<&'static str, Arc<StateMachine>>,
    driving: Mutex<HashSet<String>>,
}

pub fn machine_name(w: Workflow) -> &'static str {
    match w {
        Workflow::Deployment => "deployment",
        Workflow::Cleanup => "cleanup",
    }
}

const DEPLOYMENT: &str = include_str!("../../../../workflows/deployment.asl.json");
const CLEANUP: &str = include_str!("../../../../workflows/cleanup.asl.json");

/// Fills the `${name}` placeholders of a workflow file.
pub fn render_workflow(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        // Values are JSON string contents: escape them as such.
        let escaped = serde_json::to_string(v).unwrap_or_default();
        out = out.replace(&format!("${{{k}}}"), &escaped[1..escaped.len() - 1]);
    }
    out
}

impl Engine {
    pub fn new(store: Arc<Store>, host: Arc<Host>) -> anyhow::Result<Self> {
        let values = host.names.placeholders();
        let mut machines = HashMap::new();
        for (name, src) in [("deployment", DEPLOYMENT), ("cleanup", CLEANUP)] {
            let m = StateMachine::parse(&render_workflow(src, &values))
                .map_err(|e| anyhow::anyhow!("workflows/{name}.asl.json is invalid: {e}"))?;
            machines.insert(name, Arc::new(m));
        }
        Ok(Engine {
            store,
            host,
            machines,
            driving: Mutex::new(HashSet::new()),
        })
    }

    /// Starts (or finds) the execution for a routed change. Idempotent by name.
    pub fn start(self: &Arc<Self>, start: &WorkflowStart, input: Value) -> anyhow::Result<bool> {
        let machine_key = machine_name(start.workflow);
        let machine = &self.machines[machine_key];
        let ctx = ExecutionContext {
            name: start.execution_name.clone(),
            id: format!(
                "arn:aws:states:local:000000000000:execution:treza-{machine_key}:{}",
                start.execution_name
            ),
            state_machine_name: format!("treza-{machine_key}"),
            role_arn: None,
        };
        let exec = Execution::start(machine, ctx, input.clone(), clock::now());
        let outcome = self.store.create_execution(&NewExecution {
            name: start.execution_name.clone(),
            state_machine: machine_key.to_string(),
            enclave_id: Some(start.enclave_id.clone()),
            input,
            snapshot: serde_json::to_value(&exec)?,
            started_at: clock::now_iso(),
        })?;
        match outcome {
            CreateOutcome::Created => {
                self.host.log(
                    &start.enclave_id,
                    "stepfunctions",
                    format!(
                        "execution {} of {machine_key} started",
                        start.execution_name
                    ),
                    None,
                );
                self.spawn_driver(start.execution_name.clone());
                Ok(true)
            }
            CreateOutcome::Existing(row) => {
                if row.status == "RUNNING" {
                    // Running in the journal but maybe driven by nobody (a
                    // driver gave up): drive it. spawn_driver ignores a driven name.
                    self.spawn_driver(row.name);
                } else {
                    self.fail_if_never_handled(start, &row.status);
                }
                Ok(false)
            }
        }
    }

    /// A finished execution of this name while the record still sits in the
    /// pending status at the routed version: the name belonged to an earlier
    /// record with the same id (deleted and written again), so nothing will
    /// ever handle this one. Fail it with the reason instead of leaving it.
    fn fail_if_never_handled(&self, start: &WorkflowStart, execution_status: &str) {
        let Ok(Some(current)) = self.store.get_enclave(&start.enclave_id) else {
            return;
        };
        let pending = match start.workflow {
            Workflow::Deployment => Status::PendingDeploy,
            Workflow::Cleanup => Status::PendingDestroy,
        };
        if current.status != pending
            || !start
                .execution_name
                .ends_with(&format!("-v{}", current.version))
        {
            return;
        }
        let cond = Condition {
            expected_version: Some(current.version),
            expected_status: Some(vec![pending]),
        };
        let message = format!(
            "execution {} already ran ({execution_status}) for an earlier record with this id; change the record (a new version) to start again",
            start.execution_name
        );
        let _ = self
            .store
            .update_enclave(&current.id, &cond, &clock::now_iso(), |e| {
                e.status = Status::Failed;
                e.error_type = Some("Conflict".into());
                e.error_message = Some(message.clone());
                Ok::<(), std::convert::Infallible>(())
            });
    }

    /// Resumes every execution the journal says is still running.
    pub fn resume_all(self: &Arc<Self>) -> anyhow::Result<usize> {
        let rows = self.store.unfinished_executions()?;
        let n = rows.len();
        for row in rows {
            tracing::info!(execution = %row.name, "resuming execution from its journal");
            self.spawn_driver(row.name);
        }
        Ok(n)
    }

    fn spawn_driver(self: &Arc<Self>, name: String) {
        {
            let mut d = self.driving.lock().unwrap_or_else(|p| p.into_inner());
            if !d.insert(name.clone()) {
                return;
            }
        }
        let me = self.clone();
        tokio::spawn(async move {
            // A driver that fails (the journal unwritable for a while)
            // restarts from the journal after a pause.
            let mut backoff = Duration::from_millis(200);
            for attempt in 1..=DRIVER_ATTEMPTS {
                match me.drive(&name).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(execution = %name, attempt, error = %e, "execution driver failed; restarting from the journal");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            me.driving
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }

    async fn drive(self: &Arc<Self>, name: &str) -> anyhow::Result<()> {
        let row = self
            .store
            .get_execution(name)?
            .ok_or_else(|| anyhow::anyhow!("execution {name} is not in the journal"))?;
        let machine = self
            .machines
            .get(row.state_machine.as_str())
            .ok_or_else(|| anyhow::anyhow!("unknown state machine {}", row.state_machine))?
            .clone();
        let enclave_id = row.enclave_id.clone().unwrap_or_default();
        let mut exec: Execution = serde_json::from_value(row.snapshot)?;
        let mut step = row.current_step.clone();
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(u64, Result<Value, TaskFailure>)>();
        let mut running = RunningTasks::default();
        loop {
            let poll = exec.poll(&machine, clock::now());
            let done = matches!(poll, Poll::Done(_));
            self.persist(name, &enclave_id, &mut exec, &mut step)?;
            match poll {
                Poll::Tasks(tasks) => {
                    for task in tasks {
                        let host = self.host.clone();
                        let tx = tx.clone();
                        let id = task.task_id;
                        running.0.insert(
                            id,
                            tokio::spawn(async move {
                                let r = host.invoke(&task).await;
                                let _ = tx.send((task.task_id, r));
                            }),
                        );
                    }
                }
                Poll::WaitUntil(t) => {
                    let wait = (t - clock::now()).to_std().unwrap_or_default();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        Some((id, r)) = rx.recv() => {
                            running.0.remove(&id);
                            exec.complete_task(&machine, id, r, clock::now());
                        }
                    }
                }
                Poll::Idle => match rx.recv().await {
                    Some((id, r)) => {
                        running.0.remove(&id);
                        exec.complete_task(&machine, id, r, clock::now());
                    }
                    None => anyhow::bail!("task channel closed"),
                },
                Poll::Done(outcome) => {
                    // Tasks the execution no longer waits for (timed out) stop now.
                    drop(std::mem::take(&mut running));
                    if !matches!(outcome, Outcome::Succeeded { .. }) {
                        self.settle_failed(name, &row.state_machine, &enclave_id, &outcome);
                    }
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    /// An execution that ended without success must not leave its enclave in
    /// the workflow's pending or in-progress status (the workflow's own
    /// failure path normally wrote FAILED already; then this does nothing).
    fn settle_failed(&self, name: &str, machine: &str, enclave_id: &str, outcome: &Outcome) {
        let (error, cause) = match outcome {
            Outcome::Failed { error, cause } => (
                error.clone().unwrap_or_else(|| "States.Runtime".into()),
                cause.clone().unwrap_or_default(),
            ),
            Outcome::TimedOut => ("States.Timeout".into(), "the execution timed out".into()),
            _ => (
                "ExecutionAborted".into(),
                "the execution was aborted".into(),
            ),
        };
        self.host.log(
            enclave_id,
            "errors",
            format!("execution {name} failed: {error}"),
            Some(json!({"cause": cause})),
        );
        let unsettled = match machine {
            "deployment" => vec![Status::PendingDeploy, Status::Deploying],
            _ => vec![Status::PendingDestroy, Status::Destroying],
        };
        let cond = Condition {
            expected_version: None,
            expected_status: Some(unsettled),
        };
        let message = if cause.is_empty() {
            error.clone()
        } else {
            format!("{error}: {cause}")
        };
        let written = self
            .store
            .update_enclave(enclave_id, &cond, &clock::now_iso(), |e| {
                e.status = Status::Failed;
                e.error_type = Some("Internal".into());
                e.error_message = Some(format!(
                    "workflow execution {name} ended without recording a result ({message})"
                ));
                Ok::<(), std::convert::Infallible>(())
            });
        if let Ok(e) = written {
            tracing::warn!(enclave = %e.id, execution = %name, "execution failed before recording FAILED; recorded it");
        }
    }

    /// Journals the snapshot and new events; `step` is the last state entered.
    fn persist(
        &self,
        name: &str,
        enclave_id: &str,
        exec: &mut Execution,
        step: &mut Option<String>,
    ) -> anyhow::Result<()> {
        let events = exec.take_events();
        if events.is_empty() {
            // Nothing happened since the last snapshot.
            return Ok(());
        }
        if let Some(s) = events.iter().rev().find_map(entered_state) {
            *step = Some(s);
        }
        let now = clock::now_iso();
        let entries: Vec<LogEntry> = events
            .iter()
            .filter_map(|e| {
                entered_state(e).map(|state| LogEntry {
                    timestamp: now.clone(),
                    source: "stepfunctions".into(),
                    message: format!("{}: {state}", e.r#type),
                    fields: None,
                })
            })
            .collect();
        let events: Vec<Value> = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        let status = status_name(exec.status());
        self.store.record_progress_with_logs(
            name,
            &serde_json::to_value(&*exec)?,
            &events,
            status,
            step.as_deref(),
            enclave_id,
            if enclave_id.is_empty() { &[] } else { &entries },
        )?;
        Ok(())
    }
}

fn entered_state(e: &HistoryEvent) -> Option<String> {
    if e.r#type.ends_with("StateEntered") {
        e.details
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    }
}

/// The journal's spelling of an execution status (Step Functions' own).
fn status_name(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Running => "RUNNING",
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::TimedOut => "TIMED_OUT",
        ExecutionStatus::Aborted => "ABORTED",
    }
}
