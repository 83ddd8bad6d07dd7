//! Durable ASL throughput: every step an execution takes is journaled to
//! SQLite the way the server does it (`create_execution` once, then
//! `record_progress` with the snapshot and new history events after each
//! poll). Plain `std::time`; runs only under `cargo bench -p treza --bench asl`.
//!
//! The workload is a chain of Task states answered in-process at once, so
//! each transition is one poll and one journal write (a Pass chain would
//! advance in a single poll and be journaled once).

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use treza_asl::{Execution, ExecutionContext, ExecutionStatus, Poll, StateMachine};
use treza_store::{CreateOutcome, NewExecution, Store};

const TASKS: usize = 20;

fn status_name(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Running => "RUNNING",
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::TimedOut => "TIMED_OUT",
        ExecutionStatus::Aborted => "ABORTED",
    }
}

fn task_chain(n: usize) -> StateMachine {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"step": i, "id.$": "$.id"},
            "ResultSelector": {"ok.$": "$.Payload.ok"},
            "ResultPath": "$.last",
        });
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("T{}", i + 1));
        }
        states.insert(format!("T{i}"), s);
    }
    StateMachine::from_value(&json!({"StartAt": "T0", "States": states})).expect("valid chain")
}

/// Runs one journaled execution; returns its state transitions.
fn run(store: &Store, m: &StateMachine, i: u64) -> u64 {
    let name = format!("bench-{i}");
    let now = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let ctx = ExecutionContext {
        name: name.clone(),
        id: format!("arn:aws:states:local:000000000000:execution:bench:{name}"),
        state_machine_name: "bench".into(),
        role_arn: None,
    };
    let input = json!({"id": name});
    let mut ex = Execution::start(m, ctx, input.clone(), now);
    let created = store
        .create_execution(&NewExecution {
            name: name.clone(),
            state_machine: "bench".into(),
            enclave_id: None,
            input,
            snapshot: serde_json::to_value(&ex).expect("snapshot"),
            started_at: now.to_rfc3339(),
        })
        .expect("create_execution");
    assert_eq!(created, CreateOutcome::Created);
    let mut transitions = 0;
    loop {
        let p = ex.poll(m, now);
        let events = ex.take_events();
        transitions += events
            .iter()
            .filter(|e| e.r#type.ends_with("StateEntered"))
            .count() as u64;
        let events: Vec<Value> = events
            .iter()
            .map(|e| serde_json::to_value(e).expect("event"))
            .collect();
        store
            .record_progress(
                &name,
                &serde_json::to_value(&ex).expect("snapshot"),
                &events,
                status_name(ex.status()),
                None,
            )
            .expect("record_progress");
        match p {
            Poll::Done(_) => return transitions,
            Poll::Tasks(ts) => {
                for t in ts {
                    ex.complete_task(m, t.task_id, Ok(json!({"Payload": {"ok": true}})), now);
                }
            }
            Poll::WaitUntil(_) | Poll::Idle => panic!("a Task chain never waits"),
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benches/asl.rs: run with `cargo bench -p treza --bench asl` (or scripts/bench-asl.sh)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("treza.db")).expect("store");
    let m = task_chain(TASKS);
    let budget = Duration::from_secs(5);
    run(&store, &m, 0); // warm-up
    let start = Instant::now();
    let (mut executions, mut transitions) = (0u64, 0u64);
    while start.elapsed() < budget {
        transitions += run(&store, &m, executions + 1);
        executions += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("treza-asl durable throughput, SQLite journal (WAL), one writer");
    println!(
        "Task chain, {TASKS} states, one journal write per transition: {:>7.0} transitions/s  {:>6.1} executions/s  ({executions} executions, {secs:.2} s)",
        transitions as f64 / secs,
        executions as f64 / secs
    );
}
