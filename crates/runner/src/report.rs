//! The port through which a run's result reaches the enclave record:
//! the store in the local server, a DynamoDB `UpdateItem` in production (the
//! AWS adapter implements the same trait). What a result means for the record
//! is decided here, once, as data; adapters only apply it.

use serde_json::{Map, Value};

use crate::driver::RunOutcome;
use crate::request::Action;

/// The change a run's result makes to the enclave record. It is applied only
/// while the record is still in the run's in-progress status (DEPLOYING or
/// DESTROYING), so a stale run never writes over a newer state.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordUpdate {
    /// Deploy succeeded: `instanceId` and `outputs` from `terraform output`.
    Provisioned {
        instance_id: Option<String>,
        outputs: Map<String, Value>,
    },
    /// Destroy succeeded: nothing is provisioned any more.
    Released,
    /// The run failed: the classified error and its first meaningful line.
    Failed {
        error_type: String,
        error_message: String,
    },
    /// A plan changes nothing on the record.
    Nothing,
}

impl RecordUpdate {
    /// What `outcome` of `action` does to the record.
    pub fn from_outcome(action: Action, outcome: &RunOutcome) -> RecordUpdate {
        match (outcome.success, action) {
            (true, Action::Plan) => RecordUpdate::Nothing,
            (true, Action::Destroy) => RecordUpdate::Released,
            (true, Action::Deploy) => RecordUpdate::Provisioned {
                instance_id: outcome
                    .outputs
                    .get("instance_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                outputs: outcome.outputs.clone(),
            },
            (false, _) => RecordUpdate::Failed {
                error_type: outcome
                    .error_type
                    .clone()
                    .unwrap_or_else(|| "TerraformError".to_string()),
                error_message: outcome.error_message.clone().unwrap_or_else(|| {
                    "the Terraform run failed without an error message".to_string()
                }),
            },
        }
    }
}

/// Records a run's result on its enclave.
pub trait ResultPort {
    type Error: std::fmt::Display;

    /// Applies `update` to the enclave if it is still in the in-progress
    /// status of `action`; returns whether it was applied.
    fn record_result(
        &self,
        enclave_id: &str,
        action: Action,
        update: &RecordUpdate,
    ) -> Result<bool, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(success: bool) -> RunOutcome {
        let mut outputs = Map::new();
        outputs.insert("instance_id".into(), json!("i-123"));
        outputs.insert("log_group".into(), json!("/aws/ec2/enclave/e"));
        RunOutcome {
            success,
            outputs,
            error_type: (!success).then(|| "Capacity".to_string()),
            error_message: (!success).then(|| "InsufficientInstanceCapacity".to_string()),
            phase: None,
        }
    }

    #[test]
    fn results_map_to_record_updates() {
        match RecordUpdate::from_outcome(Action::Deploy, &outcome(true)) {
            RecordUpdate::Provisioned {
                instance_id,
                outputs,
            } => {
                assert_eq!(instance_id.as_deref(), Some("i-123"));
                assert_eq!(outputs.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            RecordUpdate::from_outcome(Action::Destroy, &outcome(true)),
            RecordUpdate::Released
        );
        assert_eq!(
            RecordUpdate::from_outcome(Action::Plan, &outcome(true)),
            RecordUpdate::Nothing
        );
        assert_eq!(
            RecordUpdate::from_outcome(Action::Destroy, &outcome(false)),
            RecordUpdate::Failed {
                error_type: "Capacity".into(),
                error_message: "InsufficientInstanceCapacity".into()
            }
        );
    }
}
