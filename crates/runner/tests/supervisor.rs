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
    assert_eq!(
        status(dir.path()),
        json!({"running": false, "pid": null, "exit_code": null})
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
