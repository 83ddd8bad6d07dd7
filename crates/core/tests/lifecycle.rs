//! The full 10x10 transition table against the lifecycle in DESIGN.md, and
//! the change router.

use serde_json::json;
use treza_core::change::{execution_name, MAX_EXECUTION_NAME_LEN};
use treza_core::{route, ChangeKind, ChangeRecord, Enclave, Lifecycle, Status, Workflow};

/// DESIGN.md's lifecycle, written out independently of `Status::successors`.
const LEGAL: &[(&str, &str)] = &[
    ("PENDING_DEPLOY", "DEPLOYING"),
    ("PENDING_DEPLOY", "FAILED"),
    ("DEPLOYING", "DEPLOYED"),
    ("DEPLOYING", "FAILED"),
    ("DEPLOYED", "PENDING_DESTROY"),
    ("DEPLOYED", "PAUSING"),
    ("PENDING_DESTROY", "DESTROYING"),
    ("PENDING_DESTROY", "FAILED"),
    ("DESTROYING", "DESTROYED"),
    ("DESTROYING", "FAILED"),
    ("PAUSING", "PAUSED"),
    ("PAUSING", "FAILED"),
    ("PAUSED", "RESUMING"),
    ("PAUSED", "PENDING_DESTROY"),
    ("RESUMING", "DEPLOYED"),
    ("RESUMING", "FAILED"),
    ("FAILED", "PENDING_DEPLOY"),
    ("FAILED", "PENDING_DESTROY"),
];

#[test]
fn every_pair_of_the_10x10_table() {
    let mut legal = 0;
    for from in Status::ALL {
        for to in Status::ALL {
            let expected = LEGAL.contains(&(from.as_str(), to.as_str()));
            let got = Lifecycle::transition(from, to);
            match (expected, got) {
                (true, Ok(s)) => {
                    assert_eq!(s, to);
                    legal += 1;
                }
                (false, Err(e)) => {
                    assert_eq!((e.from, e.to), (from, to));
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("{from} -> {to}")), "{msg}");
                    for s in from.successors() {
                        assert!(msg.contains(s.as_str()), "{msg} should list {s}");
                    }
                }
                (true, Err(e)) => panic!("{from} -> {to} should be legal: {e}"),
                (false, Ok(_)) => panic!("{from} -> {to} should be illegal"),
            }
        }
    }
    assert_eq!(legal, LEGAL.len());
}

#[test]
fn destroyed_is_terminal_and_nothing_returns_to_itself() {
    assert!(Status::Destroyed.successors().is_empty());
    for s in Status::ALL {
        assert!(Lifecycle::transition(s, s).is_err(), "{s} -> {s}");
        assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
    }
    assert!("deployed".parse::<Status>().is_err());
}

fn enclave(id: &str, status: Status, version: u64, name: &str) -> Enclave {
    serde_json::from_value(json!({
        "id": id, "name": name, "walletAddress": "0xabc", "providerId": "local",
        "providerConfig": {"command": ["true"]}, "status": status,
        "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z",
        "version": version
    }))
    .unwrap()
}

fn change(kind: ChangeKind, old: Option<Enclave>, new: Option<Enclave>) -> ChangeRecord {
    ChangeRecord {
        kind,
        old,
        new,
        sequence: 7,
    }
}

const ID: &str = "enc_1700000000000_k3j5h2l9q";

#[test]
fn insert_into_pending_deploy_starts_deployment() {
    let c = change(
        ChangeKind::Insert,
        None,
        Some(enclave(ID, Status::PendingDeploy, 1, "a")),
    );
    let start = route(&c).expect("starts");
    assert_eq!(start.workflow, Workflow::Deployment);
    assert_eq!(start.enclave_id, ID);
    assert_eq!(start.execution_name, format!("{ID}-deploy-v1"));
}

#[test]
fn modify_entering_pending_destroy_starts_cleanup() {
    for from in [Status::Deployed, Status::Paused, Status::Failed] {
        let c = change(
            ChangeKind::Modify,
            Some(enclave(ID, from, 4, "a")),
            Some(enclave(ID, Status::PendingDestroy, 5, "a")),
        );
        let start = route(&c).expect("starts");
        assert_eq!(start.workflow, Workflow::Cleanup);
        assert_eq!(start.execution_name, format!("{ID}-destroy-v5"));
    }
}

#[test]
fn changes_that_do_not_enter_a_pending_status_start_nothing() {
    let e = |s, v, n| Some(enclave(ID, s, v, n));
    let cases = [
        // rename while pending
        change(
            ChangeKind::Modify,
            e(Status::PendingDeploy, 1, "a"),
            e(Status::PendingDeploy, 2, "b"),
        ),
        change(
            ChangeKind::Modify,
            e(Status::PendingDestroy, 3, "a"),
            e(Status::PendingDestroy, 4, "b"),
        ),
        // workflow progress
        change(
            ChangeKind::Modify,
            e(Status::PendingDeploy, 1, "a"),
            e(Status::Deploying, 2, "a"),
        ),
        change(
            ChangeKind::Modify,
            e(Status::Deploying, 2, "a"),
            e(Status::Deployed, 3, "a"),
        ),
        change(
            ChangeKind::Modify,
            e(Status::Deployed, 3, "a"),
            e(Status::Pausing, 4, "a"),
        ),
        // removal, even of a pending record
        change(ChangeKind::Remove, e(Status::PendingDeploy, 1, "a"), None),
        change(
            ChangeKind::Remove,
            e(Status::Destroyed, 9, "a"),
            e(Status::PendingDestroy, 9, "a"),
        ),
        // insert in a non-pending status
        change(ChangeKind::Insert, None, e(Status::Deployed, 1, "a")),
        // malformed: no new image
        change(ChangeKind::Modify, e(Status::Deployed, 1, "a"), None),
    ];
    for c in cases {
        assert_eq!(route(&c), None, "{c:?}");
    }
}

#[test]
fn redelivery_gives_the_same_name_and_a_retry_a_new_one() {
    let first = change(
        ChangeKind::Modify,
        Some(enclave(ID, Status::Deployed, 3, "a")),
        Some(enclave(ID, Status::PendingDestroy, 4, "a")),
    );
    let mut again = first.clone();
    again.sequence = 99;
    assert_eq!(route(&first), route(&again));

    let deploy = change(
        ChangeKind::Insert,
        None,
        Some(enclave(ID, Status::PendingDeploy, 1, "a")),
    );
    let retry = change(
        ChangeKind::Modify,
        Some(enclave(ID, Status::Failed, 3, "a")),
        Some(enclave(ID, Status::PendingDeploy, 4, "a")),
    );
    let (a, b) = (route(&deploy).unwrap(), route(&retry).unwrap());
    assert_eq!(a.workflow, b.workflow);
    assert_ne!(a.execution_name, b.execution_name);
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= MAX_EXECUTION_NAME_LEN
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[test]
fn execution_names_are_short_safe_and_distinct() {
    let long_a = format!("enc_{}a", "x".repeat(200));
    let long_b = format!("enc_{}b", "x".repeat(200));
    let ids = [
        ID, "", "a b/c:d", "a_b_c_d", "é", "enc.1", "enc_1", &long_a, &long_b,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        for wf in [Workflow::Deployment, Workflow::Cleanup] {
            for v in [0, 1, u64::MAX] {
                let n = execution_name(id, wf, v);
                assert!(valid_name(&n), "{n:?}");
                assert_eq!(n, execution_name(id, wf, v), "deterministic");
                assert!(seen.insert(n.clone()), "collision: {n}");
            }
        }
    }
    // Ordinary ids stay readable.
    assert_eq!(
        execution_name(ID, Workflow::Deployment, 12),
        format!("{ID}-deploy-v12")
    );
}
