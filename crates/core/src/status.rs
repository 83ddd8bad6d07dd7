//! The enclave lifecycle: the only table of legal status transitions.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an enclave is in its lifecycle. Spelled as the existing table spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    PendingDeploy,
    Deploying,
    Deployed,
    Failed,
    PendingDestroy,
    Destroying,
    Destroyed,
    Pausing,
    Paused,
    Resuming,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::PendingDeploy,
        Status::Deploying,
        Status::Deployed,
        Status::Failed,
        Status::PendingDestroy,
        Status::Destroying,
        Status::Destroyed,
        Status::Pausing,
        Status::Paused,
        Status::Resuming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingDeploy => "PENDING_DEPLOY",
            Status::Deploying => "DEPLOYING",
            Status::Deployed => "DEPLOYED",
            Status::Failed => "FAILED",
            Status::PendingDestroy => "PENDING_DESTROY",
            Status::Destroying => "DESTROYING",
            Status::Destroyed => "DESTROYED",
            Status::Pausing => "PAUSING",
            Status::Paused => "PAUSED",
            Status::Resuming => "RESUMING",
        }
    }

    /// The statuses this one may move to. This is the whole lifecycle.
    pub fn successors(self) -> &'static [Status] {
        use Status::*;
        match self {
            PendingDeploy => &[Deploying, Failed],
            Deploying => &[Deployed, Failed],
            Deployed => &[PendingDestroy, Pausing],
            Failed => &[PendingDeploy, PendingDestroy],
            PendingDestroy => &[Destroying, Failed],
            Destroying => &[Destroyed, Failed],
            Destroyed => &[],
            Pausing => &[Paused, Failed],
            Paused => &[Resuming, PendingDestroy],
            Resuming => &[Deployed, Failed],
        }
    }

    pub fn can_become(self, next: Status) -> bool {
        self.successors().contains(&next)
    }

    /// No workflow is working on an enclave in this status.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Status::Deployed | Status::Failed | Status::Destroyed | Status::Paused
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status '{0}': expected one of PENDING_DEPLOY, DEPLOYING, DEPLOYED, FAILED, PENDING_DESTROY, DESTROYING, DESTROYED, PAUSING, PAUSED, RESUMING")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// A refused status change, naming both ends and what was allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal status transition {from} -> {to}: from {from} the allowed next statuses are [{allowed}]")]
pub struct IllegalTransition {
    pub from: Status,
    pub to: Status,
    pub allowed: String,
}

/// The lifecycle as a checker every writer goes through.
pub struct Lifecycle;

impl Lifecycle {
    pub fn transition(from: Status, to: Status) -> Result<Status, IllegalTransition> {
        if from.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition {
                from,
                to,
                allowed: from
                    .successors()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}
