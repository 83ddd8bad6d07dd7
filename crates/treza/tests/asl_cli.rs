//! Drives `treza asl ...` as a user would: the real binary, files on disk,
//! exit codes and exactly one JSON object on stdout.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn treza(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_treza"))
        .args(args)
        .output()
        .expect("the treza binary runs")
}

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/asl/cases")
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write");
    p.to_string_lossy().into_owned()
}

/// Stdout must hold exactly one JSON value (one line).
fn single_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stdout must be one JSON line: {text:?}");
    serde_json::from_str(lines[0]).expect("stdout is JSON")
}

fn run_case(name: &str, extra: &[&str]) -> (Output, Value) {
    let dir = cases().join(name);
    let def = dir.join("definition.json");
    let input = dir.join("input.json");
    let mut args = vec![
        "asl",
        "run",
        def.to_str().expect("utf-8 path"),
        "--input",
        input.to_str().expect("utf-8 path"),
        "--virtual-time",
    ];
    args.extend_from_slice(extra);
    let out = treza(&args);
    let v = single_json(&out);
    (out, v)
}

fn expected(name: &str) -> Value {
    let text = std::fs::read_to_string(cases().join(name).join("expected.json")).expect("expected");
    serde_json::from_str(&text).expect("expected.json")
}

#[test]
fn conformance_cases_run_through_the_binary() {
    for name in [
        "assign__base_cases__base_paths",
        "base__base_wait_seconds_path__0",
        "scenarios__wait_timestamp__seconds",
        "base__base_wait_seconds_path__neg1",
    ] {
        let (out, got) = run_case(name, &[]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let want = expected(name);
        assert_eq!(got["status"], want["status"], "{name}: {got}");
        if want["status"] == "SUCCEEDED" {
            assert_eq!(got["output"], want["output"], "{name}");
        } else {
            assert_eq!(got["error"], want["error"], "{name}");
        }
    }
}

#[test]
fn a_failed_execution_still_exits_zero_and_history_is_added_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = write(
        dir.path(),
        "fail.asl.json",
        &json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Next": "F"},
            "F": {"Type": "Fail", "Error": "Custom.Error", "Cause": "because"}
        }}),
    );
    let out = treza(&["asl", "run", &def, "--history"]);
    assert_eq!(out.status.code(), Some(0));
    let v = single_json(&out);
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "Custom.Error");
    assert_eq!(v["cause"], "because");
    let types: Vec<&str> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "FailStateEntered",
            "ExecutionFailed"
        ]
    );
    assert_eq!(v["history"][1]["previousEventId"], 1);
}

#[test]
fn tasks_fail_without_canned_results_and_use_them_when_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = write(
        dir.path(),
        "task.json",
        &json!({"StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                     "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 30, "MaxAttempts": 2}],
                     "ResultSelector": {"v.$": "$.Payload"}, "End": true}
        }}),
    );
    let out = treza(&["asl", "run", &def, "--virtual-time"]);
    assert_eq!(out.status.code(), Some(0));
    let v = single_json(&out);
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "States.TaskFailed");
    assert!(v["cause"]
        .as_str()
        .is_some_and(|c| c.contains("arn:aws:states:::lambda:invoke")));

    let results = write(
        dir.path(),
        "results.json",
        &json!({"Call": [{"error": "Flaky"}, {"result": {"Payload": 42}}]}),
    );
    let out = treza(&[
        "asl",
        "run",
        &def,
        "--virtual-time",
        "--task-results",
        &results,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        single_json(&out),
        json!({"status": "SUCCEEDED", "output": {"v": 42}})
    );
}

#[test]
fn unusable_definitions_and_inputs_exit_two_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        dir.path(),
        "bad.json",
        &json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "Next": "Missing"}}}),
    );
    let good = write(
        dir.path(),
        "good.json",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
    );
    let not_json = dir.path().join("input.json");
    std::fs::write(&not_json, "{oops").expect("write");
    let not_json = not_json.to_string_lossy().into_owned();

    let huge = write(
        dir.path(),
        "huge.json",
        &json!({"s": "x".repeat(256 * 1024)}),
    );
    for args in [
        vec!["asl", "run", good.as_str(), "--input", huge.as_str()],
        vec!["asl", "run", bad.as_str()],
        vec!["asl", "run", good.as_str(), "--input", not_json.as_str()],
        vec!["asl", "run", "/nonexistent/definition.json"],
        vec!["asl", "bench", bad.as_str(), "--executions", "3"],
    ] {
        let out = treza(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn validate_reports_json_pointers_and_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        dir.path(),
        "bad.json",
        &json!({"StartAt": "Check", "States": {
            "Check": {"Type": "Choice",
                      "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Gone"}],
                      "Default": "Done"},
            "Done": {"Type": "Succeed"}
        }}),
    );
    let out = treza(&["asl", "validate", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("/States/Check/Choices/0/Next:")),
        "{text}"
    );

    let out = treza(&["asl", "validate", &bad, "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = single_json(&out);
    assert_eq!(v["valid"], false);
    assert!(v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .any(|d| d["path"] == "/States/Check/Choices/0/Next" && d["message"].is_string()));

    let good = cases().join("assign__base_cases__base_paths/definition.json");
    let out = treza(&[
        "asl",
        "validate",
        good.to_str().expect("utf-8"),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(single_json(&out), json!({"valid": true, "diagnostics": []}));
}

#[test]
fn bench_reports_rates_as_json() {
    let dir = cases().join("assign__base_cases__base_paths");
    let out = treza(&[
        "asl",
        "bench",
        dir.join("definition.json").to_str().expect("utf-8"),
        "--input",
        dir.join("input.json").to_str().expect("utf-8"),
        "--executions",
        "50",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = single_json(&out);
    assert_eq!(v["executions"], 50);
    assert_eq!(v["stateTransitions"], 50);
    assert_eq!(v["outcomes"], json!({"SUCCEEDED": 50}));
    assert!(v["executionsPerSecond"].as_f64().is_some_and(|r| r > 0.0));
}

#[test]
fn without_virtual_time_a_wait_really_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = write(
        dir.path(),
        "wait.json",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}}),
    );
    let t = std::time::Instant::now();
    let out = treza(&["asl", "run", &def]);
    assert_eq!(out.status.code(), Some(0));
    assert!(t.elapsed() >= std::time::Duration::from_millis(950));
    assert_eq!(single_json(&out)["status"], "SUCCEEDED");

    let t = std::time::Instant::now();
    let def = write(
        dir.path(),
        "long.json",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}),
    );
    let out = treza(&["asl", "run", &def, "--virtual-time"]);
    assert_eq!(single_json(&out)["status"], "SUCCEEDED");
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
}
