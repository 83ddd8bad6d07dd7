//! Drives executions through the public, sans-IO API: tasks, retries,
//! catchers, timeouts, waits, snapshots and concurrency.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use treza_asl::{
    run_to_completion, Execution, ExecutionContext, ExecutionStatus, Outcome, Poll, StateMachine,
    TaskFailure, TaskRequest,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn ctx() -> ExecutionContext {
    ExecutionContext {
        name: "exec-1".into(),
        id: "arn:aws:states:eu-west-1:123456789012:execution:deploy:exec-1".into(),
        state_machine_name: "deploy".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/sfn".into()),
    }
}

fn machine(def: Value) -> StateMachine {
    match StateMachine::parse(&def.to_string()) {
        Ok(m) => m,
        Err(e) => panic!("definition should be valid: {e}"),
    }
}

fn tasks(p: Poll) -> Vec<TaskRequest> {
    match p {
        Poll::Tasks(t) => t,
        other => panic!("expected tasks, got {other:?}"),
    }
}

fn fail(error: &str) -> Result<Value, TaskFailure> {
    Err(TaskFailure {
        error: error.into(),
        cause: Some(format!("{error} happened")),
    })
}

#[test]
fn task_parameters_selector_and_paths() {
    let m = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "InputPath": "$.req",
            "Parameters": {
                "id.$": "$.id",
                "exec.$": "$$.Execution.Name",
                "sm.$": "$$.StateMachine.Id",
                "msg.$": "States.Format('hello {}', $.who)",
                "fixed": {"nested": [1, 2]}
            },
            "ResultSelector": {"code.$": "$.Payload.code"},
            "ResultPath": "$.req.result",
            "OutputPath": "$.req",
            "TimeoutSeconds": 30,
            "End": true
        }}
    }));
    let mut ex = Execution::start(&m, ctx(), json!({"req": {"id": 7, "who": "bob"}}), t0());
    let ts = tasks(ex.poll(&m, t0()));
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].resource, "arn:aws:states:::lambda:invoke");
    assert_eq!(ts[0].timeout_seconds, Some(30));
    assert_eq!(
        ts[0].parameters,
        json!({"id": 7, "exec": "exec-1",
               "sm": "arn:aws:states:eu-west-1:123456789012:stateMachine:deploy",
               "msg": "hello bob", "fixed": {"nested": [1, 2]}})
    );
    assert_eq!(
        ex.poll(&m, t0()),
        Poll::WaitUntil(t0() + Duration::seconds(30))
    );
    ex.complete_task(
        &m,
        ts[0].task_id,
        Ok(json!({"Payload": {"code": 200, "x": 1}})),
        t0(),
    );
    assert_eq!(
        ex.poll(&m, t0()),
        Poll::Done(Outcome::Succeeded {
            output: json!({"id": 7, "who": "bob", "result": {"code": 200}})
        })
    );
    assert_eq!(ex.status(), ExecutionStatus::Succeeded);
    let types: Vec<String> = ex.take_events().into_iter().map(|e| e.r#type).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert!(ex.take_events().is_empty(), "events are handed out once");
}

#[test]
fn retry_backs_off_and_counts() {
    let m = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {
            "Type": "Task", "Resource": "r",
            "Parameters": {"retry.$": "$$.State.RetryCount"},
            "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3, "MaxDelaySeconds": 10}],
            "End": true
        }}
    }));
    let mut ex = Execution::start(&m, ctx(), json!({}), t0());
    let mut now = t0();
    let mut waits = Vec::new();
    for attempt in 0..3 {
        let ts = tasks(ex.poll(&m, now));
        assert_eq!(ts[0].parameters, json!({"retry": attempt}));
        ex.complete_task(&m, ts[0].task_id, fail("Flaky"), now);
        match ex.poll(&m, now) {
            Poll::WaitUntil(t) => {
                waits.push((t - now).num_seconds());
                now = t;
            }
            other => panic!("expected a backoff, got {other:?}"),
        }
    }
    assert_eq!(
        waits,
        [2, 6, 10],
        "2s, 2*3s, then capped by MaxDelaySeconds"
    );
    let ts = tasks(ex.poll(&m, now));
    ex.complete_task(&m, ts[0].task_id, fail("Flaky"), now);
    assert_eq!(
        ex.poll(&m, now),
        Poll::Done(Outcome::Failed {
            error: Some("Flaky".into()),
            cause: Some("Flaky happened".into())
        })
    );
}

#[test]
fn catch_puts_error_at_result_path() {
    let m = machine(json!({
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": "r", "Next": "Ok",
                     "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Recover"}]},
            "Ok": {"Type": "Succeed"},
            "Recover": {"Type": "Pass", "End": true}
        }
    }));
    let (out, events) = run_to_completion(&m, ctx(), json!({"a": 1}), t0(), |_| fail("Boom"), true);
    assert_eq!(
        out,
        Outcome::Succeeded {
            output: json!({"a": 1, "err": {"Error": "Boom", "Cause": "Boom happened"}})
        }
    );
    assert!(events.iter().any(|e| e.r#type == "PassStateEntered"));
}

#[test]
fn task_failed_does_not_match_timeout_and_all_skips_runtime() {
    let m = machine(json!({
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 5, "End": true,
                     "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}]},
            "Caught": {"Type": "Succeed"}
        }
    }));
    let mut ex = Execution::start(&m, ctx(), json!({}), t0());
    let _ = tasks(ex.poll(&m, t0()));
    // The host never answers: the engine enforces TimeoutSeconds itself.
    let p = ex.poll(&m, t0() + Duration::seconds(5));
    assert_eq!(
        p,
        Poll::Done(Outcome::Failed {
            error: Some("States.Timeout".into()),
            cause: None
        })
    );

    let m = machine(json!({
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": "r", "ResultSelector": {"x.$": "$.missing"}, "End": true,
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
            "Caught": {"Type": "Succeed"}
        }
    }));
    let (out, _) = run_to_completion(&m, ctx(), json!({}), t0(), |_| Ok(json!({})), true);
    match out {
        Outcome::Failed { error, cause } => {
            assert_eq!(error.as_deref(), Some("States.Runtime"));
            assert!(cause.unwrap_or_default().contains("'Call'"));
        }
        other => panic!("States.ALL must not catch States.Runtime: {other:?}"),
    }
}

#[test]
fn snapshot_resume_reissues_in_flight_tasks() {
    let m = machine(json!({
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": "r", "End": true}}
    }));
    let mut ex = Execution::start(&m, ctx(), json!({"k": "v"}), t0());
    let first = tasks(ex.poll(&m, t0()));
    assert_eq!(ex.poll(&m, t0()), Poll::Idle, "a task is handed out once");
    let snapshot = serde_json::to_string(&ex).expect("serializable");
    let mut resumed: Execution = serde_json::from_str(&snapshot).expect("deserializable");
    let again = tasks(resumed.poll(&m, t0()));
    assert_eq!(
        first, again,
        "the resumed execution re-issues the unfinished task"
    );
    resumed.complete_task(&m, again[0].task_id, Ok(json!("done")), t0());
    resumed.complete_task(&m, again[0].task_id, Ok(json!("dup")), t0());
    assert_eq!(
        resumed.poll(&m, t0()),
        Poll::Done(Outcome::Succeeded {
            output: json!("done")
        })
    );
}

#[test]
fn wait_states_use_the_supplied_clock() {
    let m = machine(json!({
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "T"},
            "T": {"Type": "Wait", "Timestamp": "2024-05-01T13:00:00Z", "End": true}
        }
    }));
    let mut ex = Execution::start(&m, ctx(), json!({"s": 90}), t0());
    assert_eq!(
        ex.poll(&m, t0()),
        Poll::WaitUntil(t0() + Duration::seconds(90))
    );
    assert_eq!(
        ex.poll(&m, t0() + Duration::seconds(89)),
        Poll::WaitUntil(t0() + Duration::seconds(90))
    );
    assert_eq!(
        ex.poll(&m, t0() + Duration::seconds(90)),
        Poll::WaitUntil(t0() + Duration::hours(1))
    );
    assert!(matches!(
        ex.poll(&m, t0() + Duration::hours(1)),
        Poll::Done(Outcome::Succeeded { .. })
    ));
}

#[test]
fn parallel_runs_branch_tasks_together_and_keeps_order() {
    let m = machine(json!({
        "StartAt": "P",
        "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "b", "End": true}}}
        ]}}
    }));
    let mut ex = Execution::start(&m, ctx(), json!(1), t0());
    let ts = tasks(ex.poll(&m, t0()));
    assert_eq!(ts.len(), 2);
    let (a, b) = (ts[0].task_id, ts[1].task_id);
    ex.complete_task(&m, b, Ok(json!("B")), t0());
    assert_eq!(ex.poll(&m, t0()), Poll::Idle);
    ex.complete_task(&m, a, Ok(json!("A")), t0());
    assert_eq!(
        ex.poll(&m, t0()),
        Poll::Done(Outcome::Succeeded {
            output: json!(["A", "B"])
        })
    );
}

#[test]
fn map_respects_max_concurrency() {
    let m = machine(json!({
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "End": true,
            "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true}}}}}
    }));
    let mut ex = Execution::start(&m, ctx(), json!({"items": ["x", "y"]}), t0());
    let first = tasks(ex.poll(&m, t0()));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].parameters, json!({"v": "x", "i": 0}));
    ex.complete_task(&m, first[0].task_id, Ok(json!(10)), t0());
    let second = tasks(ex.poll(&m, t0()));
    assert_eq!(second[0].parameters, json!({"v": "y", "i": 1}));
    ex.complete_task(&m, second[0].task_id, Ok(json!(20)), t0());
    assert_eq!(
        ex.poll(&m, t0()),
        Poll::Done(Outcome::Succeeded {
            output: json!([10, 20])
        })
    );
}

#[test]
fn execution_timeout_and_abort() {
    let m = machine(json!({
        "StartAt": "W", "TimeoutSeconds": 60,
        "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}
    }));
    let mut ex = Execution::start(&m, ctx(), json!({}), t0());
    assert_eq!(
        ex.poll(&m, t0()),
        Poll::WaitUntil(t0() + Duration::seconds(60))
    );
    assert_eq!(
        ex.poll(&m, t0() + Duration::seconds(60)),
        Poll::Done(Outcome::TimedOut)
    );
    assert_eq!(ex.status(), ExecutionStatus::TimedOut);

    let mut ex = Execution::start(&m, ctx(), json!({}), t0());
    ex.abort(Some("operator".into()), t0());
    assert_eq!(ex.poll(&m, t0()), Poll::Done(Outcome::Aborted));
    assert_eq!(ex.status(), ExecutionStatus::Aborted);
}

#[test]
fn choice_no_match_and_variables() {
    let m = machine(json!({
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"limit": 3}, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.n", "NumericGreaterThanPath": "$limit", "Next": "Big"}
            ]},
            "Big": {"Type": "Pass", "Parameters": {"limit.$": "$limit"}, "End": true}
        }
    }));
    let (out, _) = run_to_completion(&m, ctx(), json!({"n": 5}), t0(), |_| Ok(json!(null)), true);
    assert_eq!(
        out,
        Outcome::Succeeded {
            output: json!({"limit": 3})
        }
    );
    let (out, _) = run_to_completion(&m, ctx(), json!({"n": 1}), t0(), |_| Ok(json!(null)), true);
    assert!(
        matches!(out, Outcome::Failed { ref error, .. } if error.as_deref() == Some("States.NoChoiceMatched")),
        "{out:?}"
    );
}

#[test]
fn history_events_serialize_camel_case() {
    let m = machine(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
    let (_, events) = run_to_completion(&m, ctx(), json!({}), t0(), |_| Ok(json!(null)), true);
    let v = serde_json::to_value(&events[1]).expect("serializable");
    assert_eq!(v["type"], "PassStateEntered");
    assert_eq!(v["previousEventId"], 1);
    assert_eq!(v["details"]["name"], "P");
}

#[test]
fn machine_is_shareable_and_execution_clones() {
    fn assert_traits<T: Clone + Send + Sync>() {}
    assert_traits::<StateMachine>();
    assert_traits::<Execution>();
}

#[test]
fn definition_errors_name_the_field() {
    let err = match StateMachine::parse(
        r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.x","StringEquals":"a","Next":"Gone"}]}}}"#,
    ) {
        Ok(_) => panic!("the dangling Next must be rejected"),
        Err(e) => e,
    };
    assert_eq!(err.diagnostics[0].path, "/States/C/Choices/0/Next");
    assert!(err
        .to_string()
        .contains("/States/C/Choices/0/Next: 'Gone' is not a state"));
}

#[test]
fn project_workflows_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        println!("no workflows directory at {}; skipping", dir.display());
        return;
    };
    for entry in rd.filter_map(Result::ok) {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".asl.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable workflow");
        if let Err(e) = StateMachine::parse(&text) {
            panic!("{} is not a valid definition: {e}", path.display());
        }
    }
}

#[test]
fn endless_loops_stop_at_the_history_limit() {
    let m = machine(json!({
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}
    }));
    let (out, events) = run_to_completion(&m, ctx(), json!({}), t0(), |_| Ok(json!(null)), true);
    assert!(
        matches!(out, Outcome::Failed { ref error, .. } if error.as_deref() == Some("States.Runtime")),
        "{out:?}"
    );
    assert!(events.len() > 25_000);
}

#[test]
fn state_output_over_256_kib_fails_with_data_limit_exceeded_which_all_does_not_catch() {
    use treza_asl::MAX_PAYLOAD_BYTES;
    let m = machine(json!({
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": true
            },
            "Caught": {"Type": "Succeed"}
        }
    }));
    // Each branch output fits; the Parallel result (two copies) does not.
    let half = json!({"s": "x".repeat(MAX_PAYLOAD_BYTES / 2)});
    let (out, _) = run_to_completion(&m, ctx(), half, t0(), |_| Ok(json!(null)), true);
    assert!(
        matches!(out, Outcome::Failed { ref error, ref cause }
            if error.as_deref() == Some("States.DataLimitExceeded")
            && cause.as_deref().is_some_and(|c| c.contains("Double"))),
        "{out:?}"
    );
    let small = json!({"s": "x".repeat(MAX_PAYLOAD_BYTES / 4)});
    let (out, _) = run_to_completion(&m, ctx(), small, t0(), |_| Ok(json!(null)), true);
    assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
}

#[test]
fn intrinsic_limits_surface_as_definition_errors_and_runtime_failures() {
    let eleven = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"x.$": eleven}, "End": true}}});
    let err = StateMachine::from_value(&def).expect_err("too many calls");
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.path.starts_with("/States/P/Parameters")
                && d.message.contains("more than 10")),
        "{err}"
    );
    let m = machine(json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"x.$": "States.Base64Encode($.s)"}, "End": true}}}));
    let (out, _) = run_to_completion(
        &m,
        ctx(),
        json!({"s": "a".repeat(10_001)}),
        t0(),
        |_| Ok(json!(null)),
        true,
    );
    assert!(
        matches!(out, Outcome::Failed { ref error, ref cause }
            if error.as_deref() == Some("States.Runtime")
            && cause.as_deref().is_some_and(|c| c.contains("the limit is 10000"))),
        "{out:?}"
    );
}
