mod common;

use common::{enclave, set_status, T0, T1, T2};
use treza_core::{ChangeKind, Status};
use treza_store::{Condition, Store, StoreError, UpdateError};

#[test]
fn insert_sets_version_one_and_get_returns_it() {
    let store = Store::open_in_memory().unwrap();
    let mut e = enclave("enc_1", "0xabc", T0);
    e.version = 42;
    let stored = store.insert_enclave(&e).unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(store.get_enclave("enc_1").unwrap(), Some(stored));
    assert_eq!(store.get_enclave("enc_missing").unwrap(), None);
}

#[test]
fn insert_of_existing_id_fails_and_appends_nothing() {
    let store = Store::open_in_memory().unwrap();
    store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let err = store
        .insert_enclave(&enclave("enc_1", "0xdef", T1))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { ref id } if id == "enc_1"),
        "{err}"
    );
    assert_eq!(store.latest_sequence().unwrap(), 1);
    assert_eq!(
        store.get_enclave("enc_1").unwrap().unwrap().wallet_address,
        "0xabc"
    );
}

#[test]
fn list_filters_by_wallet_and_status_ordered_by_created_at_then_id() {
    let store = Store::open_in_memory().unwrap();
    store.insert_enclave(&enclave("enc_c", "0xa", T1)).unwrap();
    store.insert_enclave(&enclave("enc_b", "0xa", T1)).unwrap();
    store.insert_enclave(&enclave("enc_a", "0xa", T2)).unwrap();
    store.insert_enclave(&enclave("enc_z", "0xb", T0)).unwrap();
    store
        .update_enclave(
            "enc_b",
            &Condition::any(),
            T2,
            set_status(Status::Deploying),
        )
        .unwrap();

    let ids = |v: Vec<treza_core::Enclave>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_enclaves(None, None).unwrap()),
        ["enc_z", "enc_b", "enc_c", "enc_a"]
    );
    assert_eq!(
        ids(store.list_enclaves(Some("0xa"), None).unwrap()),
        ["enc_b", "enc_c", "enc_a"]
    );
    assert_eq!(
        ids(store
            .list_enclaves(Some("0xa"), Some(Status::PendingDeploy))
            .unwrap()),
        ["enc_c", "enc_a"]
    );
    assert_eq!(
        ids(store.list_enclaves(None, Some(Status::Deploying)).unwrap()),
        ["enc_b"]
    );
    assert!(store
        .list_enclaves(Some("0xnobody"), None)
        .unwrap()
        .is_empty());
}

#[test]
fn change_records_carry_old_and_new_images_in_strictly_increasing_order() {
    let store = Store::open_in_memory().unwrap();
    let inserted = store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let deploying = store
        .update_enclave(
            "enc_1",
            &Condition::version(1),
            T1,
            set_status(Status::Deploying),
        )
        .unwrap();
    assert_eq!(deploying.version, 2);
    assert_eq!(deploying.updated_at, T1);
    let failed = store
        .update_enclave("enc_1", &Condition::any(), T2, set_status(Status::Failed))
        .unwrap();
    let removed = store
        .delete_enclave(
            "enc_1",
            &Condition::status_in(&[Status::Failed, Status::Destroyed]),
        )
        .unwrap();
    assert_eq!(removed, failed);
    assert_eq!(store.get_enclave("enc_1").unwrap(), None);

    let changes = store.changes_after(0, 100).unwrap();
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Insert,
            ChangeKind::Modify,
            ChangeKind::Modify,
            ChangeKind::Remove
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(changes[0].old, None);
    assert_eq!(changes[0].new.as_ref(), Some(&inserted));
    assert_eq!(changes[1].old.as_ref(), Some(&inserted));
    assert_eq!(changes[1].new.as_ref(), Some(&deploying));
    assert_eq!(changes[2].old.as_ref(), Some(&deploying));
    assert_eq!(changes[2].new.as_ref(), Some(&failed));
    assert_eq!(changes[3].old.as_ref(), Some(&failed));
    assert_eq!(changes[3].new, None);
    assert_eq!(store.latest_sequence().unwrap(), changes[3].sequence);

    // Paging: limit and `after` cut the same sequence.
    let page = store.changes_after(changes[1].sequence, 1).unwrap();
    assert_eq!(page, vec![changes[2].clone()]);
    assert!(store
        .changes_after(changes[3].sequence, 10)
        .unwrap()
        .is_empty());
    assert!(store.changes_after(0, 0).unwrap().is_empty());
}

/// Asserts the record and the feed are exactly as before a refused write.
fn assert_untouched(store: &Store, before: &treza_core::Enclave, seq_before: u64) {
    assert_eq!(
        store.get_enclave(&before.id).unwrap().as_ref(),
        Some(before)
    );
    assert_eq!(store.latest_sequence().unwrap(), seq_before);
}

#[test]
fn wrong_version_is_refused_with_expected_and_found() {
    let store = Store::open_in_memory().unwrap();
    let e = store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let err = store
        .update_enclave(
            "enc_1",
            &Condition::version(7),
            T1,
            set_status(Status::Deploying),
        )
        .unwrap_err();
    match &err {
        UpdateError::Store(StoreError::ConditionFailed {
            id,
            expected,
            actual,
        }) => {
            assert_eq!(id, "enc_1");
            assert_eq!(expected, "version 7");
            assert_eq!(actual, "version 1");
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("expected version 7") && msg.contains("found version 1"),
        "{msg}"
    );
    assert_untouched(&store, &e, 1);
}

#[test]
fn wrong_status_is_refused_and_names_the_allowed_statuses() {
    let store = Store::open_in_memory().unwrap();
    let e = store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let cond = Condition::status_in(&[Status::Deployed, Status::Paused]);
    let err = store
        .update_enclave("enc_1", &cond, T1, set_status(Status::PendingDestroy))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("status in [DEPLOYED, PAUSED]") && msg.contains("found status PENDING_DEPLOY"),
        "{msg}"
    );
    assert_untouched(&store, &e, 1);

    let err = store.delete_enclave("enc_1", &cond).unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed { .. }), "{err}");
    assert_untouched(&store, &e, 1);
}

#[test]
fn illegal_transition_writes_nothing() {
    let store = Store::open_in_memory().unwrap();
    let e = store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let err = store
        .update_enclave(
            "enc_1",
            &Condition::any(),
            T1,
            set_status(Status::Destroyed),
        )
        .unwrap_err();
    match &err {
        UpdateError::Store(StoreError::IllegalTransition(t)) => {
            assert_eq!((t.from, t.to), (Status::PendingDeploy, Status::Destroyed));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_untouched(&store, &e, 1);
}

#[test]
fn closure_rejection_and_id_change_write_nothing() {
    let store = Store::open_in_memory().unwrap();
    let e = store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let err = store
        .update_enclave("enc_1", &Condition::any(), T1, |e| {
            e.name = "half applied".into();
            Err("name is taken")
        })
        .unwrap_err();
    assert!(matches!(err, UpdateError::Rejected("name is taken")));
    assert_untouched(&store, &e, 1);

    let err = store
        .update_enclave("enc_1", &Condition::any(), T1, |e| {
            e.id = "enc_2".into();
            Ok::<(), String>(())
        })
        .unwrap_err();
    assert!(
        matches!(
            err.store_error(),
            Some(StoreError::ImmutableField { field: "id", .. })
        ),
        "{err}"
    );
    assert_untouched(&store, &e, 1);
    assert_eq!(store.get_enclave("enc_2").unwrap(), None);
}

#[test]
fn update_or_delete_of_missing_record_is_not_found() {
    let store = Store::open_in_memory().unwrap();
    let err = store
        .update_enclave(
            "enc_x",
            &Condition::any(),
            T1,
            set_status(Status::Deploying),
        )
        .unwrap_err();
    assert!(matches!(err.store_error(), Some(StoreError::NotFound { id }) if id == "enc_x"));
    let err = store
        .delete_enclave("enc_x", &Condition::any())
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert_eq!(store.latest_sequence().unwrap(), 0);
}

#[test]
fn non_status_update_bumps_version_and_skips_lifecycle() {
    let store = Store::open_in_memory().unwrap();
    store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let renamed = store
        .update_enclave("enc_1", &Condition::version(1), T1, |e| {
            e.name = "renamed".into();
            e.version = 999; // ignored: the store owns the version
            Ok::<(), String>(())
        })
        .unwrap();
    assert_eq!((renamed.version, renamed.name.as_str()), (2, "renamed"));
    let change = store.changes_after(1, 10).unwrap().remove(0);
    assert_eq!(change.old.unwrap().status, Status::PendingDeploy);
    assert_eq!(change.new.unwrap().status, Status::PendingDeploy);
}

#[test]
fn corrupt_record_json_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    let store = Store::open(&path).unwrap();
    store
        .insert_enclave(&enclave("enc_1", "0xabc", T0))
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE enclaves SET record = '{\"id\": 3' WHERE id = 'enc_1'",
        [],
    )
    .unwrap();
    let err = store.get_enclave("enc_1").unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("enc_1")),
        "{err}"
    );
}
