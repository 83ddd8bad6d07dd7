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

/// Execution names are at most 80 characters of `[A-Za-z0-9_-]` in Step Functions.
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
    let keep = 80usize.saturating_sub(suffix.len());
    let head: String = safe.chars().take(keep).collect();
    format!("{head}{suffix}")
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
