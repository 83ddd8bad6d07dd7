//! Driving the terraform CLI through the phases of a run.
//!
//! Each phase is one terraform process in its own process group, with a
//! scrubbed environment. Two threads read its stdout and stderr line by line
//! and hand the lines to the calling thread, which redacts them and passes
//! them to the sink as they arrive, watches the phase deadline, and records
//! what decides the failure message. Every exit status is checked.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use treza_core::{classify_terraform_failure, ErrorType, Redactor};

use crate::locate::find_terraform;
use crate::request::{Action, RunRequest};
use crate::workspace::{self, Workspace, PLAN_FILE};

/// After a phase times out (or the runner is stopped) terraform gets SIGINT
/// and this long to finish writing state before SIGKILL.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(30);
/// The same for apply and destroy, whose in-flight cloud calls take longer to
/// wind down; 120 s is also the longest ECS Fargate `stopTimeout`.
pub const INTERRUPT_GRACE_APPLY: Duration = Duration::from_secs(120);

/// How long terraform may take to stop after SIGINT in `phase`.
pub fn interrupt_grace(phase: &str) -> Duration {
    match phase {
        "apply" | "destroy" => INTERRUPT_GRACE_APPLY,
        _ => INTERRUPT_GRACE,
    }
}
/// How long to keep reading output after terraform exited, for lines still
/// in flight (a grandchild may hold the pipe open longer; it is not waited for).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Most output kept per phase for classifying a failure; Terraform prints
/// far less, so this only bounds a runaway provisioner.
const MAX_PHASE_OUTPUT: usize = 4 << 20;

/// Environment variables terraform inherits; everything else is dropped so
/// nothing reaches the module except through `terraform.tfvars.json`.
const PASS_THROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    // TF_LOG's trace goes to stderr, through the redactor; TF_LOG_PATH is
    // not passed: a trace file would hold the tfvars unredacted.
    "TF_LOG",
    "TF_PLUGIN_CACHE_DIR",
];
const PASS_THROUGH_PREFIXES: &[&str] = &["AWS_"];

/// One line of terraform output (or a runner note), already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    /// init, plan, apply, output or destroy.
    pub phase: String,
    /// stdout or stderr.
    pub stream: String,
    pub message: String,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub success: bool,
    /// `terraform output -json` flattened to name -> value; outputs marked
    /// sensitive are left out.
    pub outputs: Map<String, Value>,
    /// A [`treza_core::ErrorType`] name: WorkloadFailed, TerraformError,
    /// StateLocked, Timeout, ProviderAuth, ... ; Internal for problems on the
    /// runner's side (no terraform, unusable workspace).
    pub error_type: Option<String>,
    /// Redacted, one line.
    pub error_message: Option<String>,
    /// The phase that failed.
    pub phase: Option<String>,
}

impl RunOutcome {
    fn succeeded(outputs: Map<String, Value>) -> Self {
        RunOutcome {
            success: true,
            outputs,
            error_type: None,
            error_message: None,
            phase: None,
        }
    }

    fn failed(error_type: ErrorType, message: String, phase: &str) -> Self {
        RunOutcome {
            success: false,
            outputs: Map::new(),
            error_type: Some(error_type.as_str().to_string()),
            error_message: Some(message),
            phase: Some(phase.to_string()),
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs the request's action and reports each output line to `sink` as it
/// comes. Never panics on bad input; every failure becomes a `RunOutcome`.
pub fn run(req: &RunRequest, sink: &mut dyn FnMut(LogLine)) -> RunOutcome {
    let mut driver = Driver {
        redactor: Redactor::new(&req.secrets),
        sink,
    };
    let outcome = driver.run(req);
    // The message may quote terraform output and outputs may echo inputs;
    // the result is logged too, so it is redacted like the lines.
    let redactor = &driver.redactor;
    RunOutcome {
        error_message: outcome
            .error_message
            .map(|m| redactor.redact(&m).into_owned()),
        outputs: outcome
            .outputs
            .into_iter()
            .map(|(k, v)| (k, redact_value(redactor, v)))
            .collect(),
        ..outcome
    }
}

fn redact_value(redactor: &Redactor, mut value: Value) -> Value {
    redactor.redact_value(&mut value);
    value
}

struct Driver<'s> {
    redactor: Redactor,
    sink: &'s mut dyn FnMut(LogLine),
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

enum PhaseEnd {
    Exited(ExitStatus),
    /// `forced`: terraform did not stop after SIGINT and was killed.
    TimedOut {
        forced: bool,
    },
    /// The runner was asked to stop (SIGTERM/SIGINT, or its parent died).
    Cancelled {
        forced: bool,
    },
}

/// What an interrupted phase means for the state.
fn interrupted_state(forced: bool) -> &'static str {
    if forced {
        "terraform did not stop after SIGINT and was killed: the state may be incomplete or still locked; reconcile before the next run"
    } else {
        "terraform was interrupted and released the state"
    }
}

/// Set when the runner must stop: the running phase's terraform is
/// interrupted like on a timeout, so state is released cleanly.
static CANCEL: AtomicBool = AtomicBool::new(false);

/// Asks the current run to stop as soon as terraform can be interrupted.
/// Async-signal-safe: only stores to an atomic.
pub fn request_cancel() {
    CANCEL.store(true, Ordering::SeqCst);
}

fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst)
}

/// One terraform invocation of a run: phase name, argv (after `terraform`),
/// and whether stdout is captured instead of logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseCommand {
    pub name: &'static str,
    pub args: Vec<String>,
    pub capture_stdout: bool,
}

/// The terraform commands of a run, in order. Plan/apply/destroy wait up to
/// `req.lock_timeout` for a state lock held by another run (a previous
/// runner still releasing it) before failing with StateLocked; the deploy
/// applies exactly the plan it saved in `plan_file`.
pub fn phase_commands(req: &RunRequest, plan_file: &str) -> Vec<PhaseCommand> {
    let lock = format!("-lock-timeout={}s", req.lock_timeout.as_secs());
    let cmd = |name: &'static str, args: Vec<String>, capture_stdout: bool| PhaseCommand {
        name,
        args,
        capture_stdout,
    };
    let words = |w: &[&str]| w.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let mut init = words(&["init", "-input=false", "-no-color"]);
    init.extend(req.backend.init_args(&req.enclave_id));
    if let Some(dir) = &req.plugin_dir {
        init.push(format!("-plugin-dir={}", dir.display()));
    }
    let plan = {
        let mut a = words(&["plan", "-input=false", "-no-color"]);
        a.push(lock.clone());
        a.push(format!("-out={plan_file}"));
        a
    };
    let mut phases = vec![cmd("init", init, false)];
    match req.action {
        Action::Plan => phases.push(cmd("plan", plan, false)),
        Action::Deploy => {
            phases.push(cmd("plan", plan, false));
            let mut apply = words(&["apply", "-input=false", "-no-color"]);
            apply.push(lock.clone());
            apply.push(plan_file.to_string());
            phases.push(cmd("apply", apply, false));
            phases.push(cmd(
                "output",
                words(&["output", "-json", "-no-color"]),
                true,
            ));
        }
        Action::Destroy => {
            let mut destroy = words(&["destroy", "-input=false", "-no-color"]);
            destroy.push(lock);
            destroy.push("-auto-approve".to_string());
            phases.push(cmd("destroy", destroy, false));
        }
    }
    phases
}

struct Phase<'a> {
    name: &'static str,
    args: Vec<String>,
    terraform: &'a Path,
    workspace: &'a Workspace,
    timeout: Duration,
    /// Keep stdout instead of logging it (`output -json`: values may be secret).
    capture_stdout: bool,
}

impl Driver<'_> {
    fn emit(&mut self, phase: &str, stream: &str, message: &str) {
        let line = LogLine {
            timestamp: now_rfc3339(),
            phase: phase.to_string(),
            stream: stream.to_string(),
            message: self.redactor.redact(message).into_owned(),
        };
        (self.sink)(line);
    }

    fn note(&mut self, phase: &str, message: &str) {
        self.emit(phase, "stdout", &format!("treza-runner: {message}"));
    }

    fn run(&mut self, req: &RunRequest) -> RunOutcome {
        let first_phase = "init";
        let terraform = match find_terraform(req.terraform.as_deref()) {
            Ok(t) => t,
            Err(e) => return RunOutcome::failed(ErrorType::Internal, e, first_phase),
        };
        let ws = match workspace::prepare(
            &req.module_dir,
            &req.workspace_dir,
            &req.variables,
            &req.backend,
        ) {
            Ok(ws) => ws,
            Err(e) => return RunOutcome::failed(ErrorType::Internal, e, first_phase),
        };
        if req.action == Action::Destroy && req.backend.is_local() && !ws.has_state() {
            self.note(
                "destroy",
                "no Terraform state for this enclave: nothing to destroy",
            );
            return RunOutcome::succeeded(Map::new());
        }
        self.note(
            first_phase,
            &format!(
                "{} enclave {} with provider {} using {}",
                req.action,
                req.enclave_id,
                req.provider_id,
                terraform.display()
            ),
        );

        let plan_file = format!("{PLAN_FILE}-{}", std::process::id());
        let outcome = self.run_phases(req, &terraform, &ws, &plan_file);
        let _ = std::fs::remove_file(ws.dir.join(&plan_file));
        outcome
    }

    fn run_phases(
        &mut self,
        req: &RunRequest,
        terraform: &Path,
        ws: &Workspace,
        plan_file: &str,
    ) -> RunOutcome {
        let phases: Vec<Phase<'_>> = phase_commands(req, plan_file)
            .into_iter()
            .map(|c| Phase {
                name: c.name,
                timeout: req.timeout_for(c.name),
                args: c.args,
                terraform,
                workspace: ws,
                capture_stdout: c.capture_stdout,
            })
            .collect();
        let mut outputs = Map::new();
        for p in &phases {
            if cancelled() {
                return RunOutcome::failed(
                    ErrorType::Internal,
                    format!("the runner was stopped before terraform {}", p.name),
                    p.name,
                );
            }
            let (end, scan, stdout) = match self.run_phase(p) {
                Ok(r) => r,
                Err(e) => return RunOutcome::failed(ErrorType::Internal, e, p.name),
            };
            match end {
                PhaseEnd::Cancelled { forced } => {
                    return RunOutcome::failed(
                        ErrorType::Internal,
                        format!(
                            "the runner was stopped during terraform {}; {}",
                            p.name,
                            interrupted_state(forced)
                        ),
                        p.name,
                    )
                }
                PhaseEnd::TimedOut { forced } => {
                    return RunOutcome::failed(
                        ErrorType::Timeout,
                        format!(
                            "terraform {} did not finish within the phase timeout of {}s and was interrupted{}",
                            p.name,
                            p.timeout.as_secs_f64(),
                            if forced { format!("; {}", interrupted_state(true)) } else { String::new() }
                        ),
                        p.name,
                    )
                }
                PhaseEnd::Exited(status) if !status.success() => {
                    let (kind, message) = if scan.trim().is_empty() {
                        (
                            ErrorType::TerraformError,
                            format!(
                                "terraform {} failed ({}) without printing anything",
                                p.name,
                                describe_status(status)
                            ),
                        )
                    } else {
                        classify_terraform_failure(&scan)
                    };
                    let message = if kind == ErrorType::StateLocked {
                        format!(
                            "{message} (another run held the state lock for longer than the lock timeout of {}s)",
                            req.lock_timeout.as_secs()
                        )
                    } else {
                        message
                    };
                    return RunOutcome::failed(kind, message, p.name);
                }
                PhaseEnd::Exited(_) => {}
            }
            if p.capture_stdout {
                match flatten_outputs(&stdout) {
                    Ok(o) => outputs = o,
                    Err(e) => return RunOutcome::failed(ErrorType::Internal, e, p.name),
                }
            }
        }
        RunOutcome::succeeded(outputs)
    }

    /// Runs one phase: (how it ended, its redacted output, captured stdout).
    fn run_phase(&mut self, p: &Phase<'_>) -> Result<(PhaseEnd, String, String), String> {
        self.note(p.name, &format!("terraform {}", p.args.join(" ")));
        let mut cmd = Command::new(p.terraform);
        cmd.args(&p.args)
            .current_dir(&p.workspace.dir)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own group: a final SIGKILL reaches provisioner children too.
            .process_group(0);
        for (name, value) in std::env::vars_os() {
            let Some(n) = name.to_str() else { continue };
            if PASS_THROUGH_ENV.contains(&n)
                || PASS_THROUGH_PREFIXES.iter().any(|p| n.starts_with(p))
            {
                cmd.env(&name, value);
            }
        }
        cmd.env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", &p.workspace.cli_config);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", p.terraform.display()))?;

        let (tx, rx) = mpsc::channel();
        let mut readers = 0;
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, Stream::Stdout, tx.clone());
            readers += 1;
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, Stream::Stderr, tx.clone());
            readers += 1;
        }
        drop(tx);

        let mut scan = String::new();
        let mut captured = String::new();
        let end = self.supervise(p, &mut child, &rx, readers, &mut scan, &mut captured);
        Ok((end, scan, captured))
    }

    /// Pumps lines to the sink until terraform exits, enforcing the deadline.
    fn supervise(
        &mut self,
        p: &Phase<'_>,
        child: &mut Child,
        rx: &Receiver<(Stream, String)>,
        mut readers: usize,
        scan: &mut String,
        captured: &mut String,
    ) -> PhaseEnd {
        let pid = child.id() as i32;
        let deadline = Instant::now() + p.timeout;
        let mut interrupted_at: Option<Instant> = None;
        let mut killed = false;
        let mut exited: Option<(ExitStatus, Instant)> = None;
        loop {
            let wait = match exited {
                Some(_) => Duration::from_millis(20),
                None => Duration::from_millis(100),
            };
            match rx.recv_timeout(wait) {
                Ok((stream, line)) => {
                    self.handle_line(p, stream, &line, scan, captured);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => readers = 0,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if exited.is_none() {
                match child.try_wait() {
                    Ok(Some(status)) => exited = Some((status, Instant::now())),
                    Ok(None) => {}
                    Err(_) => {
                        signal_group(pid, libc::SIGKILL);
                        if let Ok(status) = child.wait() {
                            exited = Some((status, Instant::now()));
                        }
                    }
                }
            }
            if let Some((status, at)) = exited {
                if readers == 0 || at.elapsed() >= DRAIN_AFTER_EXIT {
                    // Anything of terraform's still running (a provisioner's
                    // process) must not outlive an interrupted phase.
                    if interrupted_at.is_some() {
                        signal_group(pid, libc::SIGKILL);
                    }
                    while let Ok((stream, line)) = rx.try_recv() {
                        self.handle_line(p, stream, &line, scan, captured);
                    }
                    return match interrupted_at {
                        Some(_) if cancelled() => PhaseEnd::Cancelled { forced: killed },
                        Some(_) => PhaseEnd::TimedOut { forced: killed },
                        None => PhaseEnd::Exited(status),
                    };
                }
                continue;
            }
            let now = Instant::now();
            match interrupted_at {
                None if cancelled() => {
                    self.note(
                        p.name,
                        &format!(
                            "runner asked to stop; sending terraform {} SIGINT and waiting up to {}s for it to release the state",
                            p.name,
                            interrupt_grace(p.name).as_secs()
                        ),
                    );
                    // SAFETY: kill only sends a signal to our own child.
                    unsafe {
                        libc::kill(pid, libc::SIGINT);
                    }
                    interrupted_at = Some(now);
                }
                None if now >= deadline => {
                    self.note(
                        p.name,
                        &format!(
                            "terraform {} exceeded the phase timeout of {}s; sending SIGINT and waiting up to {}s for it to stop",
                            p.name,
                            p.timeout.as_secs_f64(),
                            interrupt_grace(p.name).as_secs()
                        ),
                    );
                    // SAFETY: kill only sends a signal to our own child.
                    unsafe {
                        libc::kill(pid, libc::SIGINT);
                    }
                    interrupted_at = Some(now);
                }
                Some(at) if !killed && now.duration_since(at) >= interrupt_grace(p.name) => {
                    self.note(p.name, "terraform did not stop after SIGINT; killing it");
                    signal_group(pid, libc::SIGKILL);
                    killed = true;
                }
                _ => {}
            }
        }
    }

    fn handle_line(
        &mut self,
        p: &Phase<'_>,
        stream: Stream,
        line: &str,
        scan: &mut String,
        captured: &mut String,
    ) {
        match stream {
            Stream::Stdout if p.capture_stdout => {
                captured.push_str(line);
                captured.push('\n');
            }
            Stream::Stdout | Stream::Stderr => {
                let redacted = self.redactor.redact(line).into_owned();
                if scan.len() + redacted.len() < MAX_PHASE_OUTPUT {
                    scan.push_str(&redacted);
                    scan.push('\n');
                }
                let name = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                (self.sink)(LogLine {
                    timestamp: now_rfc3339(),
                    phase: p.name.to_string(),
                    stream: name.to_string(),
                    message: redacted,
                });
            }
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; ESRCH (group gone) is fine.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

fn spawn_reader<R: Read + Send + 'static>(pipe: R, stream: Stream, tx: Sender<(Stream, String)>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send((stream, line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// `terraform output -json` -> name -> value, without sensitive outputs.
pub fn flatten_outputs(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let parsed: Value = serde_json::from_str(text)
        .map_err(|e| format!("terraform output -json printed something that is not JSON ({e})"))?;
    let Value::Object(all) = parsed else {
        return Err("terraform output -json did not print a JSON object".to_string());
    };
    Ok(all
        .into_iter()
        .filter(|(_, o)| o.get("sensitive") != Some(&Value::Bool(true)))
        .filter_map(|(name, o)| o.get("value").cloned().map(|v| (name, v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_are_flattened_without_sensitive_ones() {
        let text = json!({
            "instance_id": {"sensitive": false, "type": "string", "value": "local-e1"},
            "token": {"sensitive": true, "type": "string", "value": "s3cret"},
            "ports": {"sensitive": false, "type": ["list", "number"], "value": [1, 2]}
        })
        .to_string();
        let flat = flatten_outputs(&text).expect("flatten");
        assert_eq!(flat.get("instance_id"), Some(&json!("local-e1")));
        assert_eq!(flat.get("ports"), Some(&json!([1, 2])));
        assert!(!flat.contains_key("token"));
        assert!(flatten_outputs("").expect("empty").is_empty());
        assert!(flatten_outputs("not json").is_err());
    }

    fn request(action: Action, backend: crate::StateBackend) -> RunRequest {
        let mut req = RunRequest::new("enc_1", action, "local", Map::new(), "/m", "/w");
        req.lock_timeout = Duration::from_secs(7);
        req.backend = backend;
        req
    }

    fn argv(phases: &[PhaseCommand]) -> Vec<(String, Vec<String>)> {
        phases
            .iter()
            .map(|p| (p.name.to_string(), p.args.clone()))
            .collect()
    }

    #[test]
    fn deploy_plans_then_applies_the_saved_plan_with_a_lock_timeout() {
        let phases = phase_commands(
            &request(Action::Deploy, crate::StateBackend::Local),
            "tfplan-9",
        );
        let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            argv(&phases),
            vec![
                ("init".into(), strs(&["init", "-input=false", "-no-color"])),
                (
                    "plan".into(),
                    strs(&[
                        "plan",
                        "-input=false",
                        "-no-color",
                        "-lock-timeout=7s",
                        "-out=tfplan-9"
                    ])
                ),
                (
                    "apply".into(),
                    strs(&[
                        "apply",
                        "-input=false",
                        "-no-color",
                        "-lock-timeout=7s",
                        "tfplan-9"
                    ])
                ),
                ("output".into(), strs(&["output", "-json", "-no-color"])),
            ]
        );
        assert!(phases.last().is_some_and(|p| p.capture_stdout));
        let destroy = phase_commands(&request(Action::Destroy, crate::StateBackend::Local), "p");
        assert_eq!(
            destroy[1].args,
            strs(&[
                "destroy",
                "-input=false",
                "-no-color",
                "-lock-timeout=7s",
                "-auto-approve"
            ])
        );
        let plan = phase_commands(&request(Action::Plan, crate::StateBackend::Local), "p");
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[1].name, "plan");
    }

    #[test]
    fn s3_backend_settings_go_to_init_as_separate_arguments() {
        let backend = crate::StateBackend::S3(crate::S3Backend {
            bucket: "treza-state".into(),
            region: "us-west-2".into(),
            lock_table: Some("treza-locks".into()),
        });
        let phases = phase_commands(&request(Action::Destroy, backend), "p");
        assert_eq!(
            phases[0].args,
            vec![
                "init",
                "-input=false",
                "-no-color",
                "-reconfigure",
                "-backend-config=bucket=treza-state",
                "-backend-config=key=enclaves/enc_1/terraform.tfstate",
                "-backend-config=region=us-west-2",
                "-backend-config=encrypt=true",
                "-backend-config=dynamodb_table=treza-locks",
            ]
        );
        // Only init talks about the backend.
        assert!(phases[1..]
            .iter()
            .all(|p| p.args.iter().all(|a| !a.starts_with("-backend-config"))));
    }
}
