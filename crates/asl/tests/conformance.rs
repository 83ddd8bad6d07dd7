//! Runs every case of the shared ASL conformance suite (recorded against AWS)
//! in place. Cases listed in `conformance-skips.txt` (by case name or by
//! feature, each with a reason) may fail; any other mismatch fails the test.

use chrono::{TimeZone, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use treza_asl::{run_to_completion, ExecutionContext, Outcome, StateMachine, TaskFailure};

const FEATURES: &[&str] = &[
    "Pass",
    "Choice",
    "Wait",
    "Map",
    "Parallel",
    "Retry",
    "Catch",
    "Fail",
    "Succeed",
    "Intrinsic",
    "ContextObject",
    "Assign",
    "JSONata",
];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/asl/cases")
}

/// Skip entries: name -> reason. A name is a feature or a case directory.
fn load_skips() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-skips.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line.split_once('#').unwrap_or((line, ""));
        assert!(
            !reason.trim().is_empty(),
            "conformance-skips.txt line {}: '{}' needs a '# reason'",
            n + 1,
            name.trim()
        );
        out.insert(name.trim().to_string(), reason.trim().to_string());
    }
    out
}

/// JSON equality where numbers compare by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn read_json(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

/// Runs one case; `Err` describes the mismatch.
fn run_case(dir: &Path, expected: &Value) -> Result<(), String> {
    let def = std::fs::read_to_string(dir.join("definition.json")).map_err(|e| e.to_string())?;
    let input = read_json(&dir.join("input.json"))?;
    let machine = StateMachine::parse(&def).map_err(|e| e.to_string())?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("case")
        .to_string();
    let ctx = ExecutionContext {
        name: "conformance".into(),
        id: format!("arn:aws:states:us-east-1:000000000000:execution:{name}:conformance"),
        state_machine_name: name,
        role_arn: Some("arn:aws:iam::000000000000:role/conformance".into()),
    };
    let start = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .ok_or("bad start time")?;
    let (outcome, _events) = run_to_completion(
        &machine,
        ctx,
        input,
        start,
        |t| {
            Err(TaskFailure {
                error: "States.TaskFailed".into(),
                cause: Some(format!("no task handler for {}", t.resource)),
            })
        },
        true,
    );
    let status = expected["status"].as_str().unwrap_or("");
    match (status, &outcome) {
        ("SUCCEEDED", Outcome::Succeeded { output }) => {
            if same(output, &expected["output"]) {
                Ok(())
            } else {
                Err(format!(
                    "output {output} != expected {}",
                    expected["output"]
                ))
            }
        }
        ("FAILED", Outcome::Failed { error, cause }) => {
            let want_err = expected["error"].as_str();
            if error.as_deref() != want_err {
                return Err(format!(
                    "error {error:?} != expected {want_err:?} (cause {cause:?})"
                ));
            }
            match expected["cause"].as_str() {
                Some(c) if cause.as_deref() != Some(c) => {
                    Err(format!("cause {cause:?} != expected {c:?}"))
                }
                _ => Ok(()),
            }
        }
        _ => Err(format!("expected {status}, got {outcome:?}")),
    }
}

#[test]
fn conformance() {
    let dir = cases_dir();
    if !dir.is_dir() {
        println!(
            "conformance: suite not found at {} (expected beside the repository); skipping",
            dir.display()
        );
        return;
    }
    let skips = load_skips();
    for s in skips.keys() {
        if !FEATURES.contains(&s.as_str()) {
            assert!(
                dir.join(s).is_dir(),
                "conformance-skips.txt names unknown case '{s}'"
            );
        }
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let (mut passed, mut skipped, mut failed) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut stale = Vec::new();
    for case in &entries {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let expected = match read_json(&case.join("expected.json")) {
            Ok(v) => v,
            Err(e) => {
                failed += 1;
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let features: Vec<&str> = expected["features"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let skip = skips.contains_key(&name) || features.iter().any(|f| skips.contains_key(*f));
        let result = std::panic::catch_unwind(|| run_case(case, &expected))
            .unwrap_or_else(|_| Err("engine panicked".into()));
        match (result, skip) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => {
                if skips.contains_key(&name) {
                    stale.push(name);
                }
                skipped += 1;
            }
            (Err(_), true) => skipped += 1,
            (Err(e), false) => {
                failed += 1;
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    for s in &stale {
        println!("note: skipped case now passes, remove it from the skip list: {s}");
    }
    println!("conformance: {passed} passed, {skipped} skipped, {failed} failed");
    assert!(
        failures.is_empty(),
        "{failed} conformance case(s) failed; see the FAIL lines above"
    );
}
