//! Preconditions for conditional writes, the SQLite counterpart of a
//! DynamoDB `ConditionExpression` on `version` and `status`.

use crate::error::StoreError;
use treza_core::{Enclave, Status};

/// What the caller expects the stored record to look like before its write.
/// All set parts must hold; an empty condition always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    pub expected_version: Option<u64>,
    pub expected_status: Option<Vec<Status>>,
}

impl Condition {
    /// No precondition: the write applies to whatever is stored.
    pub fn any() -> Condition {
        Condition::default()
    }

    /// The stored record must have exactly this version.
    pub fn version(v: u64) -> Condition {
        Condition {
            expected_version: Some(v),
            expected_status: None,
        }
    }

    /// The stored record's status must be one of these.
    pub fn status_in(statuses: &[Status]) -> Condition {
        Condition {
            expected_version: None,
            expected_status: Some(statuses.to_vec()),
        }
    }

    /// Adds a version requirement to this condition.
    pub fn and_version(mut self, v: u64) -> Condition {
        self.expected_version = Some(v);
        self
    }

    /// Adds a status requirement to this condition.
    pub fn and_status_in(mut self, statuses: &[Status]) -> Condition {
        self.expected_status = Some(statuses.to_vec());
        self
    }

    /// `Ok` when `current` satisfies the condition, else `ConditionFailed`
    /// naming what was expected and what was found.
    pub fn check(&self, current: &Enclave) -> Result<(), StoreError> {
        if let Some(v) = self.expected_version {
            if current.version != v {
                return Err(StoreError::ConditionFailed {
                    id: current.id.clone(),
                    expected: format!("version {v}"),
                    actual: format!("version {}", current.version),
                });
            }
        }
        if let Some(allowed) = &self.expected_status {
            if !allowed.contains(&current.status) {
                let list: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                return Err(StoreError::ConditionFailed {
                    id: current.id.clone(),
                    expected: format!("status in [{}]", list.join(", ")),
                    actual: format!("status {}", current.status),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn record(status: Status, version: u64) -> Enclave {
        Enclave {
            id: "enc_1".into(),
            name: "n".into(),
            description: String::new(),
            region: String::new(),
            wallet_address: "0xa".into(),
            provider_id: "local".into(),
            provider_config: Map::new(),
            status,
            created_at: String::new(),
            updated_at: String::new(),
            error_message: None,
            error_type: None,
            instance_id: None,
            outputs: Map::new(),
            version,
        }
    }

    #[test]
    fn every_set_part_must_hold() {
        let r = record(Status::Deployed, 3);
        assert!(Condition::any().check(&r).is_ok());
        assert!(Condition::version(3).check(&r).is_ok());
        assert!(Condition::status_in(&[Status::Paused, Status::Deployed])
            .check(&r)
            .is_ok());
        let both = Condition::version(3).and_status_in(&[Status::Paused]);
        let err = both.check(&r).unwrap_err().to_string();
        assert!(
            err.contains("status in [PAUSED]") && err.contains("found status DEPLOYED"),
            "{err}"
        );
        let err = Condition::status_in(&[Status::Deployed])
            .and_version(2)
            .check(&r)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected version 2, found version 3"), "{err}");
    }

    #[test]
    fn an_empty_status_list_matches_nothing() {
        assert!(Condition::status_in(&[])
            .check(&record(Status::Failed, 1))
            .is_err());
    }
}
