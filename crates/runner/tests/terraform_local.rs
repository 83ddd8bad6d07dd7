//! End-to-end tests of the runner with real terraform, the real
//! `providers/local` module and real workload processes.
//!
//! Terraform is found like the runner finds it; if it is missing,
//! `scripts/install-terraform.sh` is tried, and only if that fails too are
//! the tests skipped (with a message). The tests take a global lock: each
//! drives several terraform processes, and the machine is small.

use std::collections::BTreeSet;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use treza_runner::{run, Action, LogLine, RunOutcome, RunRequest};

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_treza-workload");
const RUNNER: &str = env!("CARGO_BIN_EXE_treza-runner");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn module_dir() -> PathBuf {
    repo_root().join("providers/local")
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The terraform to test with, or None (tests skip) when none can be had.
fn terraform() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Ok(t) = treza_runner::find_terraform(None) {
                return Some(t);
            }
            let script = repo_root().join("scripts/install-terraform.sh");
            let out = Command::new("bash").arg(script).output().ok()?;
            let path = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()?
                .trim()
                .to_string();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
        .clone()
}

macro_rules! require_terraform {
    () => {
        match terraform() {
            Some(t) => t,
            None => {
                eprintln!("SKIPPED: no terraform found and scripts/install-terraform.sh could not install one");
                return;
            }
        }
    };
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}-{}-{nanos}", std::process::id())
}

struct Enclave {
    _root: tempfile::TempDir,
    workspace: PathBuf,
    workload_dir: PathBuf,
    id: String,
    terraform: PathBuf,
}

impl Enclave {
    fn new(terraform: PathBuf, id: &str) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let workspace = root.path().join("workspace");
        let workload_dir = root.path().join("workload");
        Enclave {
            workspace,
            workload_dir,
            _root: root,
            id: id.to_string(),
            terraform,
        }
    }

    fn request(&self, action: Action, workload: Value) -> RunRequest {
        let mut variables = Map::new();
        variables.insert("enclave_id".into(), json!(self.id));
        variables.insert("workload".into(), workload);
        variables.insert(
            "workload_dir".into(),
            json!(self.workload_dir.to_string_lossy()),
        );
        variables.insert("supervisor".into(), json!(SUPERVISOR));
        let mut req = RunRequest::new(
            self.id.clone(),
            action,
            "local",
            variables,
            module_dir(),
            self.workspace.clone(),
        );
        req.terraform = Some(self.terraform.clone());
        req.phase_timeout = Duration::from_secs(120);
        req
    }

    fn recorded_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.workload_dir.join("workload.pid")).ok()?;
        serde_json::from_str::<Value>(&text).ok()?["pid"]
            .as_i64()
            .map(|p| p as i32)
    }
}

fn run_collect(req: &RunRequest) -> (RunOutcome, Vec<LogLine>) {
    let mut lines = Vec::new();
    let outcome = run(req, &mut |l| lines.push(l));
    (outcome, lines)
}

fn transcript(lines: &[LogLine]) -> String {
    lines
        .iter()
        .map(|l| format!("[{}/{}] {}", l.phase, l.stream, l.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_success(outcome: &RunOutcome, lines: &[LogLine]) {
    assert!(
        outcome.success,
        "run failed: {outcome:?}\n{}",
        transcript(lines)
    );
}

fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
            !matches!(state.as_deref(), Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(marker) && process_alive(pid) {
                found.push(pid);
            }
        }
    }
    found
}

fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

#[test]
fn hostile_values_reach_the_workload_literally_and_run_nothing() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_hostile");
    let marker = format!("/tmp/pwned-{}", unique("x"));
    let report = enclave.workload_dir.join("report.json");
    let hostile: Vec<String> = vec![
        format!("$(touch {marker}-dollar)"),
        format!("`touch {marker}-backtick`"),
        format!("'; touch {marker}-quote; echo '"),
        format!("\"; touch {marker}-dquote; echo \""),
        "line one\nline two\r\n".to_string(),
        "${file(\"/etc/passwd\")}".to_string(),
        "%{ if true }x%{ endif }".to_string(),
        "$${literal} \\ backslash | pipe && amp ; semi".to_string(),
    ];
    let mut env = Map::new();
    for (i, v) in hostile.iter().enumerate() {
        env.insert(format!("HOSTILE_{i}"), json!(v));
    }
    env.insert("REPORT".into(), json!(report.to_string_lossy()));
    let script = "import json, os, sys\n\
                  env = {k: v for k, v in os.environ.items()}\n\
                  json.dump({'argv': sys.argv[1:], 'env': env}, open(os.environ['REPORT'], 'w'))\n";
    let mut command = vec![json!("python3"), json!("-c"), json!(script)];
    command.extend(hostile.iter().map(|h| json!(h)));
    let workload = json!({
        "command": command,
        "environment": env,
        "workload_type": "batch",
    });

    let (outcome, lines) = run_collect(&enclave.request(Action::Deploy, workload.clone()));
    assert_success(&outcome, &lines);
    assert_eq!(
        outcome.outputs.get("instance_id"),
        Some(&json!("local-enc_hostile"))
    );

    let got: Value =
        serde_json::from_str(&fs::read_to_string(&report).expect("workload wrote its report"))
            .expect("report is JSON");
    let argv: Vec<String> = serde_json::from_value(got["argv"].clone()).expect("argv");
    assert_eq!(argv, hostile, "argv must arrive byte for byte");
    for (i, v) in hostile.iter().enumerate() {
        assert_eq!(got["env"][format!("HOSTILE_{i}")], json!(v), "HOSTILE_{i}");
    }
    // The workload sees what it was given, not the supervisor's plumbing.
    assert!(got["env"].get("TREZA_WORKLOAD_SPEC").is_none());
    for suffix in ["-dollar", "-backtick", "-quote", "-dquote"] {
        assert!(
            !Path::new(&format!("{marker}{suffix}")).exists(),
            "{marker}{suffix} was created: a value was executed"
        );
    }
    assert_eq!(
        fs::read_to_string(enclave.workload_dir.join("exit_code"))
            .map(|s| s.trim().to_string())
            .ok(),
        Some("0".to_string())
    );
    let (outcome, lines) = run_collect(&enclave.request(Action::Destroy, workload));
    assert_success(&outcome, &lines);
}

#[test]
fn service_deploys_healthy_is_idempotent_and_destroys_cleanly() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_service");
    let port = free_port();
    // The workload spec given as a JSON string, as the app may store it.
    let workload = json!({
        "command": ["python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
        "workload_type": "service",
        "expose_ports": port.to_string(),
        "health_check_path": "/",
        "health_check_interval": "1",
    })
    .to_string();
    let req = enclave.request(Action::Deploy, json!(workload));

    let (outcome, lines) = run_collect(&req);
    assert_success(&outcome, &lines);
    assert!(
        port_answers(port),
        "service port {port} must answer after deploy"
    );
    let pid = enclave.recorded_pid().expect("pid recorded");
    assert!(process_alive(pid));
    assert_eq!(
        outcome.outputs.get("log_file"),
        Some(&json!(enclave
            .workload_dir
            .join("workload.log")
            .to_string_lossy()))
    );
    let phases: BTreeSet<&str> = lines.iter().map(|l| l.phase.as_str()).collect();
    for p in ["init", "plan", "apply"] {
        assert!(phases.contains(p), "no {p} lines in {phases:?}");
    }
    assert!(lines
        .iter()
        .all(|l| chrono::DateTime::parse_from_rfc3339(&l.timestamp).is_ok()));

    // Again: nothing changes, the same process keeps serving.
    let (outcome, lines) = run_collect(&req);
    assert_success(&outcome, &lines);
    assert!(
        lines.iter().any(|l| l.message.contains("No changes")),
        "second deploy should plan no changes:\n{}",
        transcript(&lines)
    );
    assert_eq!(enclave.recorded_pid(), Some(pid));
    assert!(process_alive(pid));

    let destroy = enclave.request(Action::Destroy, json!(workload));
    let (outcome, lines) = run_collect(&destroy);
    assert_success(&outcome, &lines);
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(pid)),
        "workload pid {pid} still alive after destroy"
    );
    assert!(!port_answers(port), "port {port} still open after destroy");
    assert_eq!(enclave.recorded_pid(), None);

    let (outcome, lines) = run_collect(&destroy);
    assert_success(&outcome, &lines);
}

#[test]
fn workload_that_exits_at_once_fails_the_deploy_with_its_reason() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_exits");
    let port = free_port();
    let marker = unique("exits-at-once");
    let workload = json!({
        "command": ["python3", "-c", "import sys; print('giving up'); sys.exit(3)", marker],
        "workload_type": "service",
        "expose_ports": [port],
    });
    let (outcome, lines) = run_collect(&enclave.request(Action::Deploy, workload.clone()));
    assert!(!outcome.success, "{}", transcript(&lines));
    assert_eq!(
        outcome.error_type.as_deref(),
        Some("WorkloadFailed"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.error_message.as_deref(),
        Some("workload exited with status 3 before becoming healthy")
    );
    assert_eq!(outcome.phase.as_deref(), Some("apply"));
    assert!(processes_with(&marker).is_empty());
    assert_eq!(enclave.recorded_pid(), None);
    let log = fs::read_to_string(enclave.workload_dir.join("workload.log")).expect("log");
    assert!(
        log.contains("giving up"),
        "workload output goes to its log: {log}"
    );

    let (outcome, lines) = run_collect(&enclave.request(Action::Destroy, workload));
    assert_success(&outcome, &lines);
}

#[test]
fn terraform_errors_report_the_first_error_line() {
    let tf = require_terraform!();
    let _guard = serial();

    // An invalid variable, rejected by the module's validation.
    let enclave = Enclave::new(tf.clone(), "enc_badvar");
    let (outcome, lines) = run_collect(&enclave.request(Action::Deploy, json!({"argv": ["true"]})));
    assert!(!outcome.success);
    assert_eq!(
        outcome.error_type.as_deref(),
        Some("TerraformError"),
        "{outcome:?}"
    );
    let message = outcome.error_message.clone().unwrap_or_default();
    // Terraform 1.11 says "for variable", older releases "for input variable".
    assert!(
        message.starts_with("Invalid value for") && message.contains("variable"),
        "{message}\n{}",
        transcript(&lines)
    );
    assert_eq!(outcome.phase.as_deref(), Some("plan"));

    // A module with a deliberate mistake.
    let module = tempfile::tempdir().expect("tempdir");
    fs::write(
        module.path().join("main.tf"),
        "resource \"terraform_data\" \"x\" {\n  no_such_argument = 1\n}\n",
    )
    .expect("write module");
    let mut req = Enclave::new(tf, "enc_badmodule").request(Action::Deploy, json!({}));
    req.variables = Map::new();
    req.module_dir = module.path().to_path_buf();
    let (outcome, lines) = run_collect(&req);
    assert!(!outcome.success);
    assert_eq!(outcome.error_type.as_deref(), Some("TerraformError"));
    assert_eq!(
        outcome.error_message.as_deref(),
        Some("Unsupported argument"),
        "{}",
        transcript(&lines)
    );
    assert!(outcome.outputs.is_empty());
}

#[test]
fn secrets_never_reach_the_log_lines() {
    let tf = require_terraform!();
    let _guard = serial();
    let secret = unique("tok-Secret");
    // The secret also names the workload directory, so terraform and the
    // supervisor both print it and redaction has to catch it.
    let mut enclave = Enclave::new(tf, "enc_secret");
    enclave.workload_dir = enclave.workspace.with_file_name(&secret);
    let workload = json!({
        "command": ["sleep", "30"],
        "environment": {"API_TOKEN": secret, "PLAIN": "x"},
        "workload_type": "daemon",
    });
    let mut req = enclave.request(Action::Deploy, workload.clone());
    req.secrets = vec![secret.clone()];
    let (outcome, lines) = run_collect(&req);
    assert_success(&outcome, &lines);
    let mut destroy = enclave.request(Action::Destroy, workload);
    destroy.secrets = vec![secret.clone()];
    let (outcome, more) = run_collect(&destroy);
    assert_success(&outcome, &more);
    let all = transcript(&[lines, more].concat());
    assert!(!all.contains(&secret), "secret leaked:\n{all}");
    assert!(
        all.contains(treza_core::redact::MASK),
        "redaction was not exercised:\n{all}"
    );
}

#[test]
fn phase_timeout_interrupts_terraform_and_leaves_no_workload() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_timeout");
    let marker = unique("never-healthy");
    let workload = json!({
        "command": ["python3", "-c", "import time; time.sleep(600)", marker],
        "workload_type": "service",
        "expose_ports": [free_port()],
        "startup_timeout_seconds": 600,
    });
    let mut req = enclave.request(Action::Deploy, workload.clone());
    req.phase_timeout = Duration::from_secs(6);
    let started = Instant::now();
    let (outcome, lines) = run_collect(&req);
    assert!(!outcome.success);
    assert_eq!(
        outcome.error_type.as_deref(),
        Some("Timeout"),
        "{outcome:?}\n{}",
        transcript(&lines)
    );
    assert_eq!(outcome.phase.as_deref(), Some("apply"));
    let message = outcome.error_message.unwrap_or_default();
    assert!(message.contains("apply"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(20), || processes_with(&marker)
            .is_empty()),
        "workload still running after the timeout: {:?}",
        processes_with(&marker)
    );
    let (outcome, lines) = run_collect(&enclave.request(Action::Destroy, workload));
    assert_success(&outcome, &lines);
}

#[test]
fn runner_process_speaks_json_lines_and_rejects_bad_input() {
    let tf = require_terraform!();
    let _guard = serial();

    let bad = Command::new(RUNNER)
        .env_clear()
        .env("ENCLAVE_ID", "e1")
        .env("ACTION", "launch")
        .output()
        .expect("run treza-runner");
    assert_eq!(bad.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&bad.stdout);
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(result["result"]["error_type"], json!("InvalidInput"));
    assert!(result["result"]["error_message"]
        .as_str()
        .unwrap_or("")
        .starts_with("ACTION:"));

    let root = tempfile::tempdir().expect("tempdir");
    let secret = unique("pw");
    let config = json!({
        "enclave_id": "enc_env",
        "workload": {"command": ["sleep", "30"], "workload_type": "daemon",
                     "environment": {"DB_PASSWORD": secret}},
        "workload_dir": root.path().join(&secret).to_string_lossy(),
        "supervisor": SUPERVISOR,
    });
    let run_action = |action: &str| {
        Command::new(RUNNER)
            .env("ENCLAVE_ID", "enc_env")
            .env("ACTION", action)
            .env("CONFIGURATION", config.to_string())
            .env("MODULE_DIR", module_dir())
            .env("WORKSPACE_DIR", root.path().join("ws"))
            .env("TREZA_TERRAFORM", &tf)
            .env("PHASE_TIMEOUT_SECONDS", "120")
            .output()
            .expect("run treza-runner")
    };
    for action in ["deploy", "destroy"] {
        let out = run_action(action);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{action}:\n{text}");
        assert!(
            !text.contains(&secret),
            "secret leaked in {action}:\n{text}"
        );
        let parsed: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
            .collect();
        let (last, logs) = parsed.split_last().expect("some lines");
        assert!(logs
            .iter()
            .all(|l| l["log"]["phase"].is_string() && l["log"]["message"].is_string()));
        assert_eq!(last["result"]["success"], json!(true), "{action}");
        if action == "deploy" {
            assert_eq!(
                last["result"]["outputs"]["instance_id"],
                json!("local-enc_env")
            );
        }
    }
}

#[test]
fn a_held_state_lock_makes_a_second_run_fail_with_state_locked() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_locked");
    let port = free_port();
    // Becomes healthy only after ~8 s: the first run holds the state lock
    // for all of its apply.
    let workload = json!({
        "command": ["sh", "-c", "sleep 8; exec python3 -m http.server \"$0\" --bind 127.0.0.1", port.to_string()],
        "workload_type": "service",
        "expose_ports": [port],
        "startup_timeout_seconds": 60,
    });
    let first = enclave.request(Action::Deploy, workload.clone());
    let holder = thread::spawn(move || run_collect(&first));
    assert!(
        eventually(Duration::from_secs(60), || enclave.recorded_pid().is_some()),
        "the first deploy never reached its apply"
    );

    let mut second = enclave.request(Action::Deploy, workload.clone());
    second.lock_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let (outcome, lines) = run_collect(&second);
    let waited = started.elapsed();
    assert!(!outcome.success, "{}", transcript(&lines));
    assert_eq!(
        outcome.error_type.as_deref(),
        Some("StateLocked"),
        "{outcome:?}\n{}",
        transcript(&lines)
    );
    assert_eq!(outcome.phase.as_deref(), Some("plan"));
    let message = outcome.error_message.unwrap_or_default();
    assert!(
        message.contains("lock timeout of 2s"),
        "the message says how long it waited: {message}"
    );
    assert!(
        waited >= Duration::from_secs(2),
        "gave up after {waited:?}, before the 2 s lock timeout"
    );

    let (outcome, lines) = holder.join().expect("first run");
    assert_success(&outcome, &lines);
    assert!(port_answers(port));
    let (outcome, lines) = run_collect(&enclave.request(Action::Destroy, workload));
    assert_success(&outcome, &lines);
}

#[test]
fn destroy_succeeds_when_the_workload_is_already_gone() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_gone");
    let marker = unique("gone");
    let workload = json!({
        "command": ["sh", "-c", "sleep 300; true", marker],
        "workload_type": "daemon",
    });
    let (outcome, lines) = run_collect(&enclave.request(Action::Deploy, workload.clone()));
    assert_success(&outcome, &lines);
    let pid = enclave.recorded_pid().expect("pid");
    // Someone else killed it and wiped its directory.
    // SAFETY: signals a process group this test created.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    assert!(eventually(Duration::from_secs(5), || !process_alive(pid)));
    fs::remove_dir_all(&enclave.workload_dir).expect("remove workload dir");

    let (outcome, lines) = run_collect(&enclave.request(Action::Destroy, workload.clone()));
    assert_success(&outcome, &lines);
    let state = fs::read_to_string(enclave.workspace.join("terraform.tfstate")).expect("state");
    let state: Value = serde_json::from_str(&state).expect("state JSON");
    assert_eq!(state["resources"], json!([]), "state still lists resources");
    // And once more, with nothing in the state at all.
    let (outcome, lines) = run_collect(&enclave.request(Action::Destroy, workload));
    assert_success(&outcome, &lines);
}

#[test]
fn plan_changes_nothing_and_starts_nothing() {
    let tf = require_terraform!();
    let _guard = serial();
    let enclave = Enclave::new(tf, "enc_plan");
    let marker = unique("plan-only");
    let workload =
        json!({"command": ["sh", "-c", "sleep 300; true", marker], "workload_type": "daemon"});
    let (outcome, lines) = run_collect(&enclave.request(Action::Plan, workload));
    assert_success(&outcome, &lines);
    assert!(
        lines.iter().any(|l| l.message.contains("1 to add")),
        "{}",
        transcript(&lines)
    );
    assert!(processes_with(&marker).is_empty());
    assert_eq!(enclave.recorded_pid(), None);
    let resources = fs::read_to_string(enclave.workspace.join("terraform.tfstate"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .map(|s| s["resources"].clone());
    assert!(
        resources.is_none() || resources == Some(json!([])),
        "plan wrote resources: {resources:?}"
    );
    // No saved plan is left behind.
    let leftovers: Vec<String> = fs::read_dir(&enclave.workspace)
        .expect("workspace")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("tfplan"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
