mod common;

use common::{enclave, set_status, T0, T1};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use treza_core::{ChangeKind, Status};
use treza_store::{Condition, Store, StoreError, SCHEMA_VERSION};

#[test]
fn checkpoint_is_zero_until_set_and_never_moves_backwards() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.checkpoint("router").unwrap(), 0);
    store.set_checkpoint("router", 5).unwrap();
    store.set_checkpoint("router", 3).unwrap();
    assert_eq!(store.checkpoint("router").unwrap(), 5);
    store.set_checkpoint("router", 9).unwrap();
    assert_eq!(store.checkpoint("router").unwrap(), 9);
    assert_eq!(store.checkpoint("other").unwrap(), 0);
}

#[test]
fn consumer_resumes_from_its_checkpoint_after_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    {
        let store = Store::open(&path).unwrap();
        for i in 0..5 {
            store
                .insert_enclave(&enclave(&format!("enc_{i}"), "0xa", T0))
                .unwrap();
        }
        let batch = store
            .changes_after(store.checkpoint("router").unwrap(), 3)
            .unwrap();
        assert_eq!(batch.len(), 3);
        store.set_checkpoint("router", batch[2].sequence).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let from = store.checkpoint("router").unwrap();
    assert_eq!(from, 3);
    let rest = store.changes_after(from, 100).unwrap();
    let ids: Vec<String> = rest
        .iter()
        .filter_map(|c| c.new.as_ref())
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(ids, ["enc_3", "enc_4"]);
    // New writes continue the sequence; nothing is reused.
    store.insert_enclave(&enclave("enc_5", "0xa", T0)).unwrap();
    assert_eq!(store.latest_sequence().unwrap(), 6);
}

#[test]
fn sequences_are_not_reused_after_the_newest_change_row_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    let store = Store::open(&path).unwrap();
    store.insert_enclave(&enclave("enc_1", "0xa", T0)).unwrap();
    store.insert_enclave(&enclave("enc_2", "0xa", T0)).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM changes WHERE sequence = 2", [])
        .unwrap();
    store.insert_enclave(&enclave("enc_3", "0xa", T0)).unwrap();
    let seqs: Vec<u64> = store
        .changes_after(0, 10)
        .unwrap()
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(seqs, [1, 3]);
}

#[test]
fn commit_listener_hears_each_committed_change_and_not_refusals() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let reader = Arc::clone(&store);
    store.set_commit_listener(Box::new(move |seq| {
        // The listener runs outside the store's locks: reading back must not deadlock.
        let latest = reader.latest_sequence().unwrap();
        sink.lock().unwrap().push((seq, latest));
    }));
    store.insert_enclave(&enclave("enc_1", "0xa", T0)).unwrap();
    store
        .update_enclave(
            "enc_1",
            &Condition::any(),
            T1,
            set_status(Status::Deploying),
        )
        .unwrap();
    let _ = store.update_enclave(
        "enc_1",
        &Condition::version(1),
        T1,
        set_status(Status::Failed),
    );
    let _ = store.insert_enclave(&enclave("enc_1", "0xa", T0));
    store.set_checkpoint("router", 1).unwrap();
    store.delete_enclave("enc_1", &Condition::any()).unwrap();
    assert_eq!(*heard.lock().unwrap(), [(1, 1), (2, 2), (3, 3)]);
}

#[test]
fn writes_from_another_handle_are_seen_by_polling_not_by_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    let server = Store::open(&path).unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    server.set_commit_listener(Box::new(move |seq| sink.lock().unwrap().push(seq)));

    // Stands in for the web app (or `treza keys create`) in another process.
    let app = Store::open(&path).unwrap();
    app.insert_enclave(&enclave("enc_app", "0xa", T0)).unwrap();
    assert!(heard.lock().unwrap().is_empty());
    assert_eq!(server.latest_sequence().unwrap(), 1);
    let change = server.changes_after(0, 10).unwrap().remove(0);
    assert_eq!(change.kind, ChangeKind::Insert);
    assert_eq!(change.new.unwrap().id, "enc_app");

    server
        .update_enclave(
            "enc_app",
            &Condition::version(1),
            T1,
            set_status(Status::Deploying),
        )
        .unwrap();
    assert_eq!(*heard.lock().unwrap(), [2]);
}

#[test]
fn two_handles_on_one_file_lose_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    let a = Arc::new(Store::open(&path).unwrap());
    let b = Arc::new(Store::open(&path).unwrap());
    a.insert_enclave(&enclave("enc_shared", "0xa", T0)).unwrap();
    let base = a.latest_sequence().unwrap();

    const THREADS_PER_HANDLE: usize = 2;
    const PER_THREAD: u64 = 100;
    let counted = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (h, store) in [&a, &b].into_iter().enumerate() {
        for t in 0..THREADS_PER_HANDLE {
            let store = Arc::clone(store);
            let counted = Arc::clone(&counted);
            threads.push(std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    // Read-modify-write of one counter on a shared record: a lost
                    // update would show as a counter below the number of writes.
                    store
                        .update_enclave("enc_shared", &Condition::any(), T1, |e| {
                            let n = e.outputs.get("n").and_then(|v| v.as_u64()).unwrap_or(0);
                            e.outputs.insert("n".into(), (n + 1).into());
                            Ok::<(), String>(())
                        })
                        .unwrap();
                    store
                        .insert_enclave(&enclave(&format!("enc_{h}_{t}_{i}"), "0xa", T0))
                        .unwrap();
                    counted.fetch_add(2, Ordering::Relaxed);
                }
            }));
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    let writers = (2 * THREADS_PER_HANDLE) as u64;
    let shared = b.get_enclave("enc_shared").unwrap().unwrap();
    assert_eq!(shared.outputs["n"], writers * PER_THREAD);
    assert_eq!(shared.version, 1 + writers * PER_THREAD);
    assert_eq!(
        a.list_enclaves(None, None).unwrap().len() as u64,
        1 + writers * PER_THREAD
    );

    let changes = a.changes_after(base, usize::MAX).unwrap();
    assert_eq!(changes.len() as u64, counted.load(Ordering::Relaxed));
    assert!(changes.windows(2).all(|w| w[0].sequence < w[1].sequence));
    // MODIFY images chain: each old version is the previous new version.
    let versions: Vec<u64> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Modify)
        .map(|c| c.new.as_ref().unwrap().version)
        .collect();
    assert_eq!(versions, (2..=1 + writers * PER_THREAD).collect::<Vec<_>>());
    let inserted: HashSet<&str> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Insert)
        .map(|c| c.new.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(inserted.len() as u64, writers * PER_THREAD);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = Store::open(&path)
        .err()
        .expect("newer schema must be refused");
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("newer")),
        "{err}"
    );
}

#[test]
fn reopening_keeps_records_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("treza.db");
    let e = Store::open(&path)
        .unwrap()
        .insert_enclave(&enclave("enc_1", "0xa", T0))
        .unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get_enclave("enc_1").unwrap(), Some(e));
    let v: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}
