//! In-memory throughput of the engine on one core (plain `std::time`).
//!
//! Run with `cargo bench -p treza-asl --bench engine` (or `scripts/bench-asl.sh`,
//! which also compares against moto). Without `--bench` (as under
//! `cargo test --all-targets`) it prints a hint and exits.
//!
//! With `ASL_BENCH_MOTO=FILE` (written by `crates/asl/benches/moto_compare.py`)
//! it also runs the conformance cases moto handled, as many times as moto
//! ran them, and prints both rates and their ratio.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use treza_asl::{Execution, ExecutionContext, Outcome, Poll, StateMachine};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn ctx(i: u64) -> ExecutionContext {
    ExecutionContext {
        name: format!("bench-{i}"),
        id: format!("arn:aws:states:local:000000000000:execution:bench:bench-{i}"),
        state_machine_name: "bench".into(),
        role_arn: None,
    }
}

/// Runs one execution in virtual time (tasks echo their parameters);
/// returns the outcome and the number of state transitions.
fn run(m: &StateMachine, i: u64, input: Value, history_limit: u64) -> (Outcome, u64) {
    let mut clock = t0();
    let mut ex = Execution::start(m, ctx(i), input, clock);
    ex.set_history_limit(history_limit);
    let mut transitions = 0;
    loop {
        let p = ex.poll(m, clock);
        transitions += ex
            .take_events()
            .iter()
            .filter(|e| e.r#type.ends_with("StateEntered"))
            .count() as u64;
        match p {
            Poll::Done(o) => return (o, transitions),
            Poll::Tasks(ts) => {
                for t in ts {
                    ex.complete_task(m, t.task_id, Ok(t.parameters.clone()), clock);
                }
            }
            Poll::WaitUntil(t) => clock = clock.max(t),
            Poll::Idle => panic!("idle with nothing outstanding"),
        }
    }
}

struct Rate {
    executions: u64,
    transitions: u64,
    secs: f64,
}

/// Repeats `one` until `budget` has passed (at least `min_runs` times).
fn measure(budget: Duration, min_runs: u64, mut one: impl FnMut(u64) -> u64) -> Rate {
    let _ = one(0); // warm-up
    let start = Instant::now();
    let mut executions = 0;
    let mut transitions = 0;
    while executions < min_runs || start.elapsed() < budget {
        transitions += one(executions + 1);
        executions += 1;
    }
    Rate {
        executions,
        transitions,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn report(name: &str, r: &Rate) {
    println!(
        "{name:<44} {:>9.0} transitions/s  {:>8.1} executions/s  ({} executions, {:.2} s)",
        r.transitions as f64 / r.secs,
        r.executions as f64 / r.secs,
        r.executions,
        r.secs
    );
}

fn machine(def: Value) -> StateMachine {
    StateMachine::from_value(&def).expect("valid benchmark definition")
}

/// A chain of `n` Pass states, each adding a field through Parameters.
fn pass_chain(n: usize) -> StateMachine {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass", "ResultPath": "$.last", "Result": i});
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    machine(json!({"StartAt": "S0", "States": states}))
}

/// A Pass + Choice loop counting to `$.limit` with States.MathAdd.
fn counter_loop() -> StateMachine {
    machine(json!({
        "StartAt": "Inc",
        "States": {
            "Inc": {"Type": "Pass",
                    "Parameters": {"i.$": "States.MathAdd($.i, 1)", "limit.$": "$.limit"},
                    "Next": "More?"},
            "More?": {"Type": "Choice",
                      "Choices": [{"Variable": "$.i", "NumericLessThanPath": "$.limit", "Next": "Inc"}],
                      "Default": "Done"},
            "Done": {"Type": "Succeed"}
        }
    }))
}

/// A Map over `$.items`, each iteration a Pass that reshapes the item.
fn map_machine() -> StateMachine {
    machine(json!({
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Shape", "States": {
                    "Shape": {"Type": "Pass", "Parameters": {"n.$": "$.n", "ok": true}, "End": true}
                }},
                "ResultSelector": {"count.$": "States.ArrayLength($)"},
                "End": true
            }
        }
    }))
}

/// The conformance cases listed by moto_compare.py, run as often as moto ran them.
fn compare_with_moto(file: &Path) {
    let text = std::fs::read_to_string(file).expect("moto results file");
    let moto: Value = serde_json::from_str(&text).expect("moto results JSON");
    let dir = PathBuf::from(moto["cases_dir"].as_str().expect("cases_dir"));
    let reps = moto["reps"].as_u64().expect("reps");
    let mut cases = Vec::new();
    for name in moto["cases"].as_array().expect("cases") {
        let name = name.as_str().expect("case name");
        let def = std::fs::read_to_string(dir.join(name).join("definition.json")).expect("def");
        let input: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(name).join("input.json")).expect("input"),
        )
        .expect("input JSON");
        cases.push((StateMachine::parse(&def).expect("valid case"), input));
    }
    let start = Instant::now();
    let mut n = 0u64;
    let mut transitions = 0u64;
    for _ in 0..reps {
        for (m, input) in &cases {
            transitions += run(m, n, input.clone(), treza_asl::MAX_HISTORY_EVENTS).1;
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let ours = n as f64 / secs;
    let theirs = moto["moto"]["executions_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    println!();
    println!(
        "conformance cases vs moto ({} cases x {reps} runs; {} skipped for moto)",
        cases.len(),
        moto["skipped"].as_array().map_or(0, Vec::len)
    );
    println!(
        "  moto {}   {:>10.1} executions/s  ({} executions, {:.2} s)",
        moto["moto"]["version"].as_str().unwrap_or("?"),
        theirs,
        moto["moto"]["executions"],
        moto["moto"]["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  treza-asl    {:>10.1} executions/s  ({n} executions, {transitions} transitions, {secs:.3} s)",
        ours
    );
    if theirs > 0.0 {
        println!("  ratio        {:>10.0}x (target >= 100x)", ours / theirs);
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/engine.rs: run with `cargo bench -p treza-asl --bench engine` (or scripts/bench-asl.sh)");
        return;
    }
    let budget = Duration::from_secs(3);
    println!("treza-asl in-memory throughput, one core, virtual time");

    let chain = pass_chain(1000);
    report(
        "Pass chain, 1,000 states",
        &measure(budget, 5, |i| run(&chain, i, json!({"a": 1}), u64::MAX).1),
    );

    let counter = counter_loop();
    report(
        "Pass+Choice loop, 1,000 rounds (MathAdd)",
        &measure(budget, 5, |i| {
            let (o, t) = run(&counter, i, json!({"i": 0, "limit": 1000}), u64::MAX);
            assert!(matches!(o, Outcome::Succeeded { .. }), "{o:?}");
            t
        }),
    );

    let map = map_machine();
    let items: Vec<Value> = (0..10_000).map(|n| json!({"n": n})).collect();
    let input = json!({ "items": items });
    report(
        "Map over 10,000 items (Pass per item)",
        &measure(budget, 3, |i| {
            // 40,000 history events: past AWS's 25,000 limit (AWS would need a Distributed Map).
            let (o, t) = run(&map, i, input.clone(), u64::MAX);
            assert!(
                matches!(&o, Outcome::Succeeded { output } if output["count"] == 10_000),
                "{o:?}"
            );
            t
        }),
    );

    if let Ok(file) = std::env::var("ASL_BENCH_MOTO") {
        compare_with_moto(Path::new(&file));
    }
}
