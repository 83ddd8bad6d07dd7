//! Change records (shaped like DynamoDB Streams records) and the router that
//! turns a change into at most one workflow start.

use crate::record::Enclave;
use crate::status::Status;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// One entry of the change feed: `{kind, old, new, sequence}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub kind: ChangeKind,
    pub old: Option<Enclave>,
    pub new: Option<Enclave>,
    /// Strictly increasing position in the feed.
    pub sequence: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workflow {
    Deployment,
    Cleanup,
}

impl Workflow {
    pub fn action(self) -> &'static str {
        match self {
            Workflow::Deployment => "deploy",
            Workflow::Cleanup => "destroy",
        }
    }
}

/// The decision for one change: start this workflow under this name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowStart {
    pub workflow: Workflow,
    pub enclave_id: String,
    /// Derived from enclave id, action and record version: a redelivered
    /// change yields the same name, so it starts nothing new.
    pub execution_name: String,
}

/// Longest execution name Step Functions accepts.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;

/// The execution name for one workflow run: `<id>-<action>-v<version>`, at most
/// 80 characters of `[A-Za-z0-9_-]` as Step Functions requires. Deterministic,
/// so a redelivered change maps to the same name. When the id must be altered
/// to fit (other characters, or too long), a hash of the whole id is added so
/// that distinct ids never share a name.
pub fn execution_name(enclave_id: &str, workflow: Workflow, version: u64) -> String {
    let safe: String = enclave_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let suffix = format!("-{}-v{}", workflow.action(), version);
    if safe == enclave_id && safe.len() + suffix.len() <= MAX_EXECUTION_NAME_LEN {
        return format!("{safe}{suffix}");
    }
    let suffix = format!("-{:016x}{suffix}", fnv1a64(enclave_id.as_bytes()));
    let keep = MAX_EXECUTION_NAME_LEN.saturating_sub(suffix.len());
    let head: String = safe.chars().take(keep).collect();
    format!("{head}{suffix}")
}

/// FNV-1a: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Start a workflow only when a record *enters* a pending status.
pub fn route(change: &ChangeRecord) -> Option<WorkflowStart> {
    if change.kind == ChangeKind::Remove {
        return None;
    }
    let new = change.new.as_ref()?;
    let workflow = match new.status {
        Status::PendingDeploy => Workflow::Deployment,
        Status::PendingDestroy => Workflow::Cleanup,
        _ => return None,
    };
    if let Some(old) = &change.old {
        if old.status == new.status {
            return None;
        }
    }
    Some(WorkflowStart {
        workflow,
        enclave_id: new.id.clone(),
        execution_name: execution_name(&new.id, workflow, new.version),
    })
}
