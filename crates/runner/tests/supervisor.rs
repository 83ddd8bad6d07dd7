//! The workload supervisor as a process, without Terraform: start, status,
//! stop, idempotency, failure reasons, and the guard that cleans up after a
//! supervisor killed mid-start.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SUPERVISOR: &str = env!("CARGO_BIN_EXE_treza-workload");

fn supervisor(dir: &Path, spec: &Value, command: &str) -> Output {
    Command::new(SUPERVISOR)
        .arg(command)
        .env("TREZA_WORKLOAD_DIR", dir)
        .env("TREZA_WORKLOAD_SPEC", spec.to_string())
        .output()
        .expect("run supervisor")
}

fn status(dir: &Path) -> Value {
    let out = supervisor(dir, &json!({}), "status");
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("status is JSON")
}

fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rfind(')').map(|i| s[i + 1..].trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | None)
        })
        .unwrap_or(false)
}

fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    check()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn daemon_start_is_idempotent_and_stop_is_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = json!({"command": ["sleep", "60"], "workload_type": "daemon",
                      "environment": {"SECRET_VALUE": "do-not-print-me"}});
    let first = supervisor(dir.path(), &spec, "start");
    assert!(first.status.success(), "{}", stderr(&first));
    let st = status(dir.path());
    assert_eq!(st["running"], json!(true));
    let pid = st["pid"].as_i64().expect("pid");
    assert!(alive(pid));

    let again = supervisor(dir.path(), &spec, "start");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already running"));
    assert_eq!(status(dir.path())["pid"], json!(pid));

    for out in [&first, &again] {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
        assert!(!text.contains("do-not-print-me"));
    }

    let stop = supervisor(dir.path(), &spec, "stop");
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(eventually(Duration::from_secs(5), || !alive(pid)));
    // Stopped on purpose: not running, not crashed, SIGTERM recorded as 128+15.
    assert_eq!(
        status(dir.path()),
        json!({"running": false, "healthy": false, "pid": null, "exit_code": 143,
               "crashed": false, "reason": "no workload is running"})
    );
    let stop_again = supervisor(dir.path(), &spec, "stop");
    assert!(stop_again.status.success());
}

#[test]
fn failures_are_one_error_line_and_leave_nothing_running() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            json!({"command": ["sh", "-c", "exit 4"], "workload_type": "daemon"}),
            "workload exited with status 4 during startup",
        ),
        (
            json!({"command": ["sh", "-c", "exit 5"], "workload_type": "batch"}),
            "batch workload exited with status 5",
        ),
        (
            json!({"command": ["/nonexistent/program"]}),
            "cannot start workload command \"/nonexistent/program\"",
        ),
        (
            json!({"command": "sleep 1"}),
            "workload spec field `command`",
        ),
    ];
    for (spec, expected) in cases {
        let out = supervisor(dir.path(), &spec, "start");
        assert_eq!(out.status.code(), Some(1), "{spec}");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "exactly one stderr line for {spec}: {err}");
        assert!(
            lines[0].starts_with("treza-workload: error: ") && lines[0].contains(expected),
            "{spec}: {err}"
        );
        assert!(!dir.path().join("workload.pid").exists());
        if spec["workload_type"] == json!("batch") {
            assert_eq!(status(dir.path())["exit_code"], json!(5));
        }
    }
}

#[test]
fn service_that_never_answers_fails_with_the_probe_reason() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let spec = json!({"command": ["sleep", "60"], "workload_type": "service",
                      "expose_ports": [port], "health_check_path": "/ready",
                      "startup_timeout_seconds": 1.5});
    let out = supervisor(dir.path(), &spec, "start");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "treza-workload: error: health check GET http://127.0.0.1:{port}/ready did not succeed within 1.5s: connection refused"
        )
    );
    assert_eq!(status(dir.path())["running"], json!(false));
}

#[test]
fn guard_stops_the_workload_when_start_is_killed() {
    let dir = tempfile::tempdir().expect("tmp");
    let marker = format!("guard-test-{}", std::process::id());
    let spec = json!({
        "command": ["sh", "-c", "sleep 120", marker],
        "workload_type": "service", "expose_ports": [9], "startup_timeout_seconds": 300
    });
    let mut start = Command::new(SUPERVISOR)
        .arg("start")
        .env("TREZA_WORKLOAD_DIR", dir.path())
        .env("TREZA_WORKLOAD_SPEC", spec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn start");
    assert!(
        eventually(Duration::from_secs(10), || status(dir.path())["running"]
            == json!(true)),
        "workload never started"
    );
    let pid = status(dir.path())["pid"].as_i64().expect("pid");
    start.kill().expect("SIGKILL the supervisor");
    let _ = start.wait();
    assert!(
        eventually(Duration::from_secs(15), || !alive(pid)),
        "guard did not stop workload {pid}"
    );
    assert!(eventually(Duration::from_secs(5), || !dir
        .path()
        .join("workload.pid")
        .exists()));
    let log = fs::read_to_string(dir.path().join("workload.log")).expect("log");
    assert!(log.contains("start was interrupted"), "{log}");
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(SUPERVISOR)
        .arg("restart")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(SUPERVISOR)
        .arg("stop")
        .env_remove("TREZA_WORKLOAD_DIR")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TREZA_WORKLOAD_DIR is not set"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn start_time(pid: i64) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

fn signal(pid: i64, sig: i32) {
    // SAFETY: signals a process this test started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

fn http_service(port: u16) -> Value {
    json!({
        "command": ["python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
        "workload_type": "service", "expose_ports": [port],
        "health_check_interval": 0.5, "stop_grace_seconds": 2
    })
}

#[test]
fn service_status_probes_health_once_and_start_adopts_a_healthy_process() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let spec = http_service(port);
    let out = supervisor(dir.path(), &spec, "start");
    assert!(out.status.success(), "{}", stderr(&out));
    let st = status(dir.path());
    assert_eq!(st["running"], json!(true), "{st}");
    assert_eq!(st["healthy"], json!(true), "{st}");
    assert_eq!(st["crashed"], json!(false));
    assert_eq!(st["reason"], json!(null));
    let pid = st["pid"].as_i64().expect("pid");
    let born = start_time(pid).expect("start time");

    // As after a server restart: a new supervisor finds the process through
    // the pid file and /proc start time, and restarts nothing.
    let again = supervisor(dir.path(), &spec, "start");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already running and healthy"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(status(dir.path())["pid"], json!(pid));
    assert_eq!(
        start_time(pid),
        Some(born.clone()),
        "the workload was restarted"
    );

    // Frozen: still running, but the one probe times out.
    signal(pid, libc::SIGSTOP);
    let started = Instant::now();
    let st = status(dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "one bounded probe"
    );
    assert_eq!(st["running"], json!(true), "{st}");
    assert_eq!(st["healthy"], json!(false), "{st}");
    assert_eq!(st["crashed"], json!(false), "{st}");
    let reason = st["reason"].as_str().unwrap_or("").to_string();
    assert!(
        reason.starts_with(&format!("health check GET http://127.0.0.1:{port}/")),
        "{reason}"
    );
    signal(pid, libc::SIGCONT);
    assert!(eventually(Duration::from_secs(5), || status(dir.path())
        ["healthy"]
        == json!(true)));
    assert_eq!(start_time(pid), Some(born));

    let stop = supervisor(dir.path(), &spec, "stop");
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(!alive(pid));
}

#[test]
fn start_replaces_a_running_but_unhealthy_service() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let spec = http_service(port);
    assert!(supervisor(dir.path(), &spec, "start").status.success());
    let old = status(dir.path())["pid"].as_i64().expect("pid");
    signal(old, libc::SIGSTOP);
    let out = supervisor(dir.path(), &spec, "start");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replacing it"));
    let st = status(dir.path());
    let new = st["pid"].as_i64().expect("pid");
    assert_ne!(new, old);
    assert!(eventually(Duration::from_secs(5), || !alive(old)));
    assert_eq!(st["healthy"], json!(true), "{st}");
    assert!(supervisor(dir.path(), &spec, "stop").status.success());
}

#[test]
fn a_crash_is_detected_with_its_exit_status() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = json!({"command": ["sleep", "60"], "workload_type": "daemon"});
    assert!(supervisor(dir.path(), &spec, "start").status.success());
    let pid = status(dir.path())["pid"].as_i64().expect("pid");
    signal(pid, libc::SIGKILL);
    assert!(
        eventually(Duration::from_secs(5), || status(dir.path())["crashed"]
            == json!(true)),
        "{}",
        status(dir.path())
    );
    let st = status(dir.path());
    assert_eq!(st["running"], json!(false));
    assert_eq!(st["healthy"], json!(false));
    assert_eq!(st["exit_code"], json!(137));
    assert!(
        st["reason"].as_str().unwrap_or("").contains("signal 9"),
        "{st}"
    );
    let log = fs::read_to_string(dir.path().join("workload.log")).expect("log");
    assert!(log.contains("was killed by signal 9"), "{log}");
    // Stop after a crash is fine and clears the record.
    assert!(supervisor(dir.path(), &spec, "stop").status.success());
    assert_eq!(status(dir.path())["crashed"], json!(false));
}

#[test]
fn stop_is_graceful_first_and_forced_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tmp");
    let polite = json!({"command": ["sleep", "60"], "workload_type": "daemon",
                        "stop_grace_seconds": 2});
    assert!(supervisor(dir.path(), &polite, "start").status.success());
    let pid = status(dir.path())["pid"].as_i64().expect("pid");
    let started = Instant::now();
    let out = supervisor(dir.path(), &polite, "stop");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("exited after SIGTERM"));
    assert!(!alive(pid));
    assert_eq!(status(dir.path())["exit_code"], json!(143));

    let stubborn = json!({
        "command": ["python3", "-c",
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)"],
        "workload_type": "daemon", "stop_grace_seconds": 2
    });
    assert!(supervisor(dir.path(), &stubborn, "start").status.success());
    let pid = status(dir.path())["pid"].as_i64().expect("pid");
    let started = Instant::now();
    // stop reads the grace period from workload.json: no spec needed.
    let out = supervisor(dir.path(), &json!({}), "stop");
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        took >= Duration::from_secs(2),
        "killed before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("was killed"));
    assert!(!alive(pid));
    assert_eq!(status(dir.path())["exit_code"], json!(137));
}

#[test]
fn workload_output_is_logged_with_environment_values_masked() {
    let dir = tempfile::tempdir().expect("tmp");
    let secret = format!("s3cr3t-{}", std::process::id());
    let spec = json!({
        "command": ["sh", "-c", "echo \"token is $API_TOKEN\"; echo \"err $API_TOKEN\" >&2; echo plain"],
        "workload_type": "batch",
        "environment": {"API_TOKEN": secret}
    });
    let out = supervisor(dir.path(), &spec, "start");
    assert!(out.status.success(), "{}", stderr(&out));
    let log = fs::read_to_string(dir.path().join("workload.log")).expect("log");
    assert!(!log.contains(&secret), "secret in log:\n{log}");
    assert!(log.contains("token is ***"), "{log}");
    assert!(log.contains("err ***"), "{log}");
    assert!(log.contains("plain"), "{log}");
    // A finished batch: recorded exit code, healthy, not running, not crashed.
    assert_eq!(
        status(dir.path()),
        json!({"running": false, "healthy": true, "pid": null, "exit_code": 0,
               "crashed": false, "reason": null})
    );
}

#[test]
fn library_status_matches_the_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let st = treza_runner::workload::workload_status(dir.path());
    assert!(!st.running && !st.healthy && !st.crashed);
    assert_eq!(serde_json::to_value(&st).expect("json"), status(dir.path()));
}

#[test]
fn stop_reaches_processes_that_left_the_group() {
    let dir = tempfile::tempdir().expect("tmp");
    let marker = format!("{}", 300 + std::process::id() % 500);
    // A child that starts its own session, then the main process.
    let script = format!("setsid sleep {marker}.5 & exec sleep 1000");
    let spec = json!({"command": ["sh", "-c", script], "workload_type": "daemon"});
    let start = supervisor(dir.path(), &spec, "start");
    assert!(start.status.success(), "{}", stderr(&start));
    let escaped = || {
        let out = Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}.5")])
            .output()
            .expect("pgrep");
        !out.stdout.is_empty()
    };
    assert!(
        eventually(Duration::from_secs(5), escaped),
        "the session leader child never started"
    );
    let stop = supervisor(dir.path(), &spec, "stop");
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(
        eventually(Duration::from_secs(5), || !escaped()),
        "a process in its own session survived stop"
    );
}

#[test]
fn start_with_a_changed_spec_replaces_the_running_workload() {
    let dir = tempfile::tempdir().expect("tmp");
    let first_spec = json!({"command": ["sleep", "61"], "workload_type": "daemon"});
    let first = supervisor(dir.path(), &first_spec, "start");
    assert!(first.status.success(), "{}", stderr(&first));
    let old_pid = status(dir.path())["pid"].as_i64().expect("pid");
    // Same spec, keys in another order: adopted, not replaced.
    let reordered = json!({"workload_type": "daemon", "command": ["sleep", "61"]});
    let again = supervisor(dir.path(), &reordered, "start");
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(status(dir.path())["pid"], json!(old_pid));
    // A different command: the old process goes, a new one runs.
    let changed = json!({"command": ["sleep", "62"], "workload_type": "daemon"});
    let replaced = supervisor(dir.path(), &changed, "start");
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert!(String::from_utf8_lossy(&replaced.stdout).contains("different spec"));
    let new_pid = status(dir.path())["pid"].as_i64().expect("pid");
    assert_ne!(new_pid, old_pid);
    assert!(eventually(Duration::from_secs(5), || !alive(old_pid)));
    let stop = supervisor(dir.path(), &changed, "stop");
    assert!(stop.status.success(), "{}", stderr(&stop));
}
