use serde_json::json;
use treza_store::{CreateOutcome, NewExecution, Store, StoreError};

fn new_execution(name: &str, enclave: &str, input: serde_json::Value) -> NewExecution {
    NewExecution {
        name: name.to_string(),
        state_machine: "deployment".to_string(),
        enclave_id: Some(enclave.to_string()),
        input,
        snapshot: json!({"state": "Validate"}),
        started_at: "2025-01-01T00:00:00.000Z".to_string(),
    }
}

#[test]
fn same_name_same_input_is_existing_different_input_is_refused() {
    let store = Store::open_in_memory().unwrap();
    let x = new_execution("enc_1-deploy-v1", "enc_1", json!({"a": 1, "b": [1, 2]}));
    assert_eq!(store.create_execution(&x).unwrap(), CreateOutcome::Created);

    // Same input with keys in another order is the same input.
    let again = new_execution("enc_1-deploy-v1", "enc_1", json!({"b": [1, 2], "a": 1}));
    match store.create_execution(&again).unwrap() {
        CreateOutcome::Existing(row) => {
            assert_eq!(row.name, "enc_1-deploy-v1");
            assert_eq!(row.status, "RUNNING");
            assert_eq!(row.input, x.input);
        }
        other => panic!("expected Existing, got {other:?}"),
    }

    let different = new_execution("enc_1-deploy-v1", "enc_1", json!({"a": 2}));
    let err = store.create_execution(&different).unwrap_err();
    assert!(
        matches!(err, StoreError::ExecutionAlreadyExists { ref name } if name == "enc_1-deploy-v1"),
        "{err}"
    );
    let mut other_machine = x.clone();
    other_machine.state_machine = "cleanup".into();
    assert!(matches!(
        store.create_execution(&other_machine),
        Err(StoreError::ExecutionAlreadyExists { .. })
    ));
}

#[test]
fn progress_replaces_snapshot_appends_events_and_sets_status() {
    let store = Store::open_in_memory().unwrap();
    let x = new_execution("x1", "enc_1", json!({}));
    store.create_execution(&x).unwrap();
    store
        .record_progress(
            "x1",
            &json!({"state": "Deploy"}),
            &[
                json!({"type": "ExecutionStarted"}),
                json!({"type": "TaskStateEntered"}),
            ],
            "RUNNING",
            Some("Deploy"),
        )
        .unwrap();
    store
        .record_progress(
            "x1",
            &json!({"state": null}),
            &[json!({"type": "ExecutionSucceeded"})],
            "SUCCEEDED",
            None,
        )
        .unwrap();
    let row = store.get_execution("x1").unwrap().unwrap();
    assert_eq!(row.snapshot, json!({"state": null}));
    assert_eq!(row.status, "SUCCEEDED");
    assert_eq!(row.current_step, None);
    assert!(
        row.updated_at.ends_with('Z') && row.updated_at.len() == 24,
        "{}",
        row.updated_at
    );
    let types: Vec<String> = store
        .execution_events("x1")
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["ExecutionStarted", "TaskStateEntered", "ExecutionSucceeded"]
    );
}

#[test]
fn progress_on_unknown_execution_or_bad_status_writes_nothing() {
    let store = Store::open_in_memory().unwrap();
    let err = store
        .record_progress("nope", &json!({}), &[json!(1)], "RUNNING", None)
        .unwrap_err();
    assert!(matches!(err, StoreError::ExecutionNotFound { .. }), "{err}");
    assert!(store.execution_events("nope").unwrap().is_empty());

    store
        .create_execution(&new_execution("x1", "enc_1", json!({})))
        .unwrap();
    let err = store
        .record_progress("x1", &json!({"s": 2}), &[json!(1)], "DONE", None)
        .unwrap_err();
    assert!(
        err.to_string().contains("'DONE'") && err.to_string().contains("TIMED_OUT"),
        "{err}"
    );
    assert_eq!(
        store.get_execution("x1").unwrap().unwrap().snapshot,
        json!({"state": "Validate"})
    );
    assert!(store.execution_events("x1").unwrap().is_empty());
}

#[test]
fn unfinished_and_per_enclave_listings() {
    let store = Store::open_in_memory().unwrap();
    let mut a = new_execution("a", "enc_1", json!({}));
    a.started_at = "2025-01-01T00:00:02.000Z".into();
    let b = new_execution("b", "enc_1", json!({}));
    let c = new_execution("c", "enc_2", json!({}));
    let mut d = new_execution("d", "enc_2", json!({}));
    d.enclave_id = None;
    for x in [&a, &b, &c, &d] {
        store.create_execution(x).unwrap();
    }
    store
        .record_progress("c", &json!({}), &[], "FAILED", None)
        .unwrap();

    let names =
        |rows: Vec<treza_store::ExecutionRow>| rows.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.unfinished_executions().unwrap()),
        ["b", "d", "a"]
    );
    assert_eq!(
        names(store.executions_for_enclave("enc_1").unwrap()),
        ["b", "a"]
    );
    assert_eq!(names(store.executions_for_enclave("enc_2").unwrap()), ["c"]);
    assert!(store.get_execution("zzz").unwrap().is_none());
}

#[test]
fn progress_with_logs_commits_both_or_neither() {
    let store = Store::open_in_memory().unwrap();
    store
        .create_execution(&new_execution("x1", "enc_1", json!({})))
        .unwrap();
    let entry = treza_store::LogEntry {
        timestamp: "2026-01-01T00:00:00Z".into(),
        source: "stepfunctions".into(),
        message: "TaskStateEntered: A".into(),
        fields: None,
    };
    store
        .record_progress_with_logs(
            "x1",
            &json!({"s": 1}),
            &[json!({"type": "TaskStateEntered"})],
            "RUNNING",
            Some("A"),
            "enc_1",
            std::slice::from_ref(&entry),
        )
        .unwrap();
    assert_eq!(store.logs("enc_1", None, 10).unwrap(), vec![entry.clone()]);
    assert_eq!(store.execution_events("x1").unwrap().len(), 1);
    // An unknown execution writes neither the progress nor the logs.
    assert!(store
        .record_progress_with_logs(
            "nope",
            &json!({}),
            &[],
            "RUNNING",
            None,
            "enc_1",
            std::slice::from_ref(&entry)
        )
        .is_err());
    assert_eq!(store.logs("enc_1", None, 10).unwrap().len(), 1);
}
