//! StartExecution semantics for a standalone host: executions of one state
//! machine keyed by name, started idempotently as Step Functions does.

use crate::definition::StateMachine;
use crate::execution::{Execution, ExecutionContext, ExecutionStatus, MAX_PAYLOAD_BYTES};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// What [`Executions::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new execution was created; poll it to run it.
    New,
    /// A running execution with this name and the same input already
    /// exists; nothing changed (StartExecution is idempotent).
    Existing,
}

/// Why StartExecution was refused, named as AWS names the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("ExecutionAlreadyExists: an execution named '{name}' already exists {why}")]
    ExecutionAlreadyExists { name: String, why: &'static str },
    #[error("InvalidName: execution name '{name}' {rule}")]
    InvalidName { name: String, rule: &'static str },
    #[error("InvalidExecutionInput: the input is {bytes} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES}")]
    InvalidExecutionInput { bytes: usize },
}

/// The executions of one state machine, by name. Follows Step Functions
/// (STANDARD): the same name and input as a *running* execution returns it;
/// a different input, or a name whose execution has closed, is refused.
/// (treza's SQLite journal deliberately also treats a closed execution with
/// the same input as `Existing`, so a redelivered change is a no-op.)
#[derive(Debug, Clone)]
pub struct Executions {
    machine: StateMachine,
    /// ARN prefix of execution ids, e.g. `arn:aws:states:local:000000000000:execution:Name`.
    machine_name: String,
    arn_prefix: String,
    by_name: BTreeMap<String, Execution>,
}

/// Checks an execution name against Step Functions' rules.
pub fn check_execution_name(name: &str) -> Result<(), &'static str> {
    let n = name.chars().count();
    if n == 0 || n > 80 {
        return Err("must be 1 to 80 characters long");
    }
    let forbidden =
        |c: char| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c);
    if name.chars().any(forbidden) {
        return Err(
            "must not contain whitespace, control characters or any of <>{}[]?*\"#%\\^|~`$&,;:/",
        );
    }
    Ok(())
}

impl Executions {
    /// A registry for `machine`, whose executions get ARNs under `machine_name`.
    pub fn new(machine: StateMachine, machine_name: &str) -> Executions {
        Executions {
            machine,
            machine_name: machine_name.to_string(),
            arn_prefix: format!("arn:aws:states:local:000000000000:execution:{machine_name}"),
            by_name: BTreeMap::new(),
        }
    }

    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }

    /// StartExecution: creates the execution or finds the identical running one.
    pub fn start(
        &mut self,
        name: &str,
        input: Value,
        now: DateTime<Utc>,
    ) -> Result<Started, StartError> {
        check_execution_name(name).map_err(|rule| StartError::InvalidName {
            name: name.to_string(),
            rule,
        })?;
        let bytes = serde_json::to_string(&input).map_or(usize::MAX, |t| t.len());
        if bytes > MAX_PAYLOAD_BYTES {
            return Err(StartError::InvalidExecutionInput { bytes });
        }
        if let Some(existing) = self.by_name.get(name) {
            let why = if existing.status() != ExecutionStatus::Running {
                "and has finished"
            } else if *existing.input() != input {
                "with a different input"
            } else {
                return Ok(Started::Existing);
            };
            return Err(StartError::ExecutionAlreadyExists {
                name: name.to_string(),
                why,
            });
        }
        let ctx = ExecutionContext {
            name: name.to_string(),
            id: format!("{}:{name}", self.arn_prefix),
            state_machine_name: self.machine_name.clone(),
            role_arn: None,
        };
        let ex = Execution::start(&self.machine, ctx, input, now);
        self.by_name.insert(name.to_string(), ex);
        Ok(Started::New)
    }

    pub fn get(&self, name: &str) -> Option<&Execution> {
        self.by_name.get(name)
    }

    /// The execution to poll or complete tasks on.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Execution> {
        self.by_name.get_mut(name)
    }

    /// Names of executions that are still running.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .iter()
            .filter(|(_, e)| e.status() == ExecutionStatus::Running)
            .map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::Poll;
    use serde_json::json;

    fn registry() -> Executions {
        let m = StateMachine::parse(
            r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:r", "End": true}}}"#,
        )
        .expect("valid");
        Executions::new(m, "demo")
    }

    #[test]
    fn same_name_and_input_while_running_is_the_same_execution() {
        let mut r = registry();
        let now = Utc::now();
        assert_eq!(r.start("a", json!({"x": 1, "y": 2}), now), Ok(Started::New));
        // Key order does not matter: inputs compare as JSON values.
        assert_eq!(
            r.start("a", json!({"y": 2, "x": 1}), now),
            Ok(Started::Existing)
        );
        assert!(matches!(
            r.start("a", json!({"x": 2}), now),
            Err(StartError::ExecutionAlreadyExists { why, .. }) if why.contains("different input")
        ));
        assert_eq!(r.running().collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            r.get("a").map(|e| e.input().clone()),
            Some(json!({"x": 1, "y": 2}))
        );
    }

    #[test]
    fn a_finished_execution_name_cannot_be_reused() {
        let mut r = registry();
        let now = Utc::now();
        r.start("done", json!({}), now).expect("start");
        let m = r.machine().clone();
        let ex = r.get_mut("done").expect("exists");
        let Poll::Tasks(ts) = ex.poll(&m, now) else {
            panic!("expected a task")
        };
        ex.complete_task(&m, ts[0].task_id, Ok(json!(1)), now);
        assert!(matches!(ex.poll(&m, now), Poll::Done(_)));
        assert!(matches!(
            r.start("done", json!({}), now),
            Err(StartError::ExecutionAlreadyExists { why, .. }) if why.contains("finished")
        ));
        assert_eq!(r.running().count(), 0);
    }

    #[test]
    fn inputs_over_256_kib_are_refused() {
        let mut r = registry();
        let now = Utc::now();
        // A JSON string adds two quote characters.
        let fits = json!("x".repeat(MAX_PAYLOAD_BYTES - 2));
        assert_eq!(r.start("fits", fits, now), Ok(Started::New));
        let big = json!("x".repeat(MAX_PAYLOAD_BYTES - 1));
        assert_eq!(
            r.start("big", big, now),
            Err(StartError::InvalidExecutionInput {
                bytes: MAX_PAYLOAD_BYTES + 1
            })
        );
        assert!(r.get("big").is_none());
    }

    #[test]
    fn names_follow_step_functions_rules() {
        let mut r = registry();
        let now = Utc::now();
        for bad in ["", "has space", "a/b", "x:y", &"n".repeat(81)] {
            assert!(
                matches!(
                    r.start(bad, json!({}), now),
                    Err(StartError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(r.start(&"n".repeat(80), json!({}), now), Ok(Started::New));
        assert_eq!(
            r.start("enc_1700000000000_abc-deploy-v3", json!({}), now),
            Ok(Started::New)
        );
    }
}
