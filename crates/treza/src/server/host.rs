//! The engine's host: maps each Task resource of the workflow files to an
//! in-process integration with the request and result shapes of the AWS
//! service (DESIGN.md, "Workflows").

use super::dynamo::{self, UpdateRequest};
use super::functions;
use super::runner::{RunnerBackend, RunnerInvocation};
use crate::clock;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use treza_asl::{TaskFailure, TaskRequest};
use treza_core::Status;
use treza_runner::{RecordUpdate, ResultPort};
use treza_store::{Condition, LogEntry, Store, UpdateError};

pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
pub const DYNAMODB_UPDATE_ITEM: &str = "arn:aws:states:::dynamodb:updateItem";
pub const ECS_RUN_TASK_SYNC: &str = "arn:aws:states:::ecs:runTask.sync";

/// Names the workflow placeholders resolve to in embedded mode.
pub struct LocalNames {
    pub table: String,
    pub validation_function: String,
    pub error_handler_function: String,
    pub notify_function: String,
}

impl Default for LocalNames {
    fn default() -> Self {
        LocalNames {
            table: "treza-enclaves".into(),
            validation_function: "arn:aws:lambda:local:000000000000:function:treza-validation"
                .into(),
            error_handler_function:
                "arn:aws:lambda:local:000000000000:function:treza-error-handler".into(),
            notify_function: "arn:aws:lambda:local:000000000000:function:treza-notify".into(),
        }
    }
}

impl LocalNames {
    /// Values for the `${...}` placeholders of `workflows/*.asl.json`.
    pub fn placeholders(&self) -> Vec<(&'static str, String)> {
        vec![
            ("enclaves_table_name", self.table.clone()),
            ("validation_function_arn", self.validation_function.clone()),
            (
                "error_handler_function_arn",
                self.error_handler_function.clone(),
            ),
            ("notify_function_arn", self.notify_function.clone()),
            (
                "ecs_cluster_arn",
                "arn:aws:ecs:local:000000000000:cluster/treza".into(),
            ),
            (
                "runner_task_definition_arn",
                "arn:aws:ecs:local:000000000000:task-definition/treza-runner:1".into(),
            ),
            ("runner_subnet_id", "subnet-local".into()),
            ("runner_security_group_id", "sg-local".into()),
        ]
    }
}

pub struct Host {
    pub store: Arc<Store>,
    pub names: LocalNames,
    runner: Arc<dyn RunnerBackend>,
    runs: Semaphore,
    per_enclave: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn failure(error: impl Into<String>, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.into(),
        cause: Some(cause.into()),
    }
}

impl Host {
    pub fn new(
        store: Arc<Store>,
        runner: Arc<dyn RunnerBackend>,
        max_concurrent_runs: usize,
    ) -> Self {
        Host {
            store,
            names: LocalNames::default(),
            runner,
            runs: Semaphore::new(max_concurrent_runs.max(1)),
            per_enclave: Mutex::new(HashMap::new()),
        }
    }

    pub async fn invoke(&self, task: &TaskRequest) -> Result<Value, TaskFailure> {
        match task.resource.as_str() {
            LAMBDA_INVOKE => self.lambda_invoke(&task.parameters),
            DYNAMODB_UPDATE_ITEM => self.dynamodb_update_item(&task.parameters),
            ECS_RUN_TASK_SYNC => self.ecs_run_task_sync(&task.parameters).await,
            other => Err(failure(
                "States.Runtime",
                format!("resource '{other}' has no local integration"),
            )),
        }
    }

    fn lambda_invoke(&self, p: &Value) -> Result<Value, TaskFailure> {
        let function = p
            .get("FunctionName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let payload = p.get("Payload").cloned().unwrap_or(Value::Null);
        let enclave_id = payload
            .get("enclaveId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let load = || {
            self.store
                .get_enclave(enclave_id)
                .map_err(|e| failure("Lambda.ServiceException", e.to_string()))
        };
        let result = if function == self.names.validation_function {
            let action = payload
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or_default();
            functions::validate(load()?.as_ref(), action)
        } else if function == self.names.error_handler_function {
            let error = payload.get("error").cloned().unwrap_or(Value::Null);
            functions::classify_failure(load()?.as_ref(), &error)
        } else if function == self.names.notify_function {
            functions::notify(&payload)
        } else {
            return Err(failure(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function}"),
            ));
        };
        self.log(
            enclave_id,
            "lambda",
            format!("{} returned", short_function(function)),
            Some(redacted(&result)),
        );
        Ok(json!({"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": result}))
    }

    fn dynamodb_update_item(&self, p: &Value) -> Result<Value, TaskFailure> {
        let validation = |m: String| failure("DynamoDB.ValidationException", m);
        let table = p
            .get("TableName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if table != self.names.table {
            return Err(failure(
                "DynamoDB.ResourceNotFoundException",
                format!("Requested resource not found: table '{table}'"),
            ));
        }
        let id_value = p
            .pointer("/Key/id")
            .ok_or_else(|| validation("Key.id is required".into()))?;
        let id = dynamo::from_attribute_value(id_value).map_err(|e| validation(e.to_string()))?;
        let id = id
            .as_str()
            .ok_or_else(|| validation("Key.id must be a string".into()))?;
        let req = UpdateRequest::from_parameters(p)
            .map_err(|e| failure(e.error_name(), e.to_string()))?;
        let now = clock::now_iso();
        let result = self.store.update_enclave(id, &Condition::any(), &now, |e| {
            let mut item = match serde_json::to_value(&*e) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(dynamo::DynamoError::Validation(
                        "record is not an object".into(),
                    ))
                }
            };
            dynamo::apply(&mut item, &req)?;
            *e = serde_json::from_value(Value::Object(item)).map_err(|err| {
                dynamo::DynamoError::Validation(format!("update makes the record invalid: {err}"))
            })?;
            Ok(())
        });
        match result {
            // The change itself is the record of it (the change feed, the workflow's step log).
            Ok(_) => Ok(json!({"SdkHttpMetadata": {"HttpStatusCode": 200}})),
            Err(UpdateError::Rejected(e)) => Err(failure(e.error_name(), e.to_string())),
            Err(UpdateError::Store(e)) => Err(store_failure(e)),
        }
    }

    async fn ecs_run_task_sync(&self, p: &Value) -> Result<Value, TaskFailure> {
        let overrides = p
            .pointer("/Overrides/ContainerOverrides/0")
            .ok_or_else(|| {
                failure(
                    "ECS.InvalidParameterException",
                    "Overrides.ContainerOverrides[0] is required",
                )
            })?;
        let container = overrides
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("terraform-runner")
            .to_string();
        let mut env = BTreeMap::new();
        for pair in overrides
            .get("Environment")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(k), Some(v)) = (
                pair.get("Name").and_then(Value::as_str),
                pair.get("Value").and_then(Value::as_str),
            ) {
                env.insert(k.to_string(), v.to_string());
            }
        }
        let enclave_id = env.get("ENCLAVE_ID").cloned().ok_or_else(|| {
            failure(
                "ECS.InvalidParameterException",
                "container environment ENCLAVE_ID is required",
            )
        })?;
        // One run at a time per enclave, and a bounded number overall.
        let lock = {
            let mut map = self.per_enclave.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(enclave_id.clone()).or_default().clone()
        };
        let one = lock.lock().await;
        let slot = self
            .runs
            .acquire()
            .await
            .map_err(|e| failure("ECS.ServerException", e.to_string()))?;
        let action = env.get("ACTION").cloned().unwrap_or_default();
        self.log(
            &enclave_id,
            "ecs",
            format!("runner task started (action {action})"),
            None,
        );

        let store = self.store.clone();
        let log_id = enclave_id.clone();
        let sink: super::runner::LogSink = Arc::new(move |entries: Vec<LogEntry>| {
            if let Err(e) = store.append_logs(&log_id, &entries) {
                tracing::error!(error = %e, "cannot store runner log lines");
            }
        });
        let outcome = self
            .runner
            .run(
                RunnerInvocation {
                    enclave_id: enclave_id.clone(),
                    env,
                },
                sink,
            )
            .await;
        let task_arn = format!(
            "arn:aws:ecs:local:000000000000:task/treza/{}",
            outcome.task_id
        );
        let error_type = outcome
            .error_type
            .clone()
            .unwrap_or_else(|| "TerraformError".into());
        let error_message = outcome.error_message.clone().unwrap_or_else(|| {
            format!(
                "the Terraform runner exited with code {}",
                outcome.exit_code
            )
        });
        let mut container =
            json!({"Name": container, "LastStatus": "STOPPED", "ExitCode": outcome.exit_code});
        if outcome.exit_code != 0 {
            // ECS's container `Reason`: where the failure handler finds the
            // runner's own error first, so no stale message can stand in.
            container["Reason"] = json!(format!("{error_type}: {error_message}"));
        }
        let description = json!({
            "TaskArn": task_arn,
            "LastStatus": "STOPPED",
            "DesiredStatus": "STOPPED",
            "StopCode": "EssentialContainerExited",
            "StoppedReason": "Essential container in task exited",
            "Containers": [container],
        });
        // The runner's result reaches the record through the result port.
        let run_action: treza_runner::Action =
            action.parse().unwrap_or(treza_runner::Action::Deploy);
        let update = RecordUpdate::from_outcome(
            run_action,
            &treza_runner::RunOutcome {
                success: outcome.exit_code == 0,
                outputs: outcome.outputs.clone(),
                error_type: Some(error_type.clone()),
                error_message: Some(error_message.clone()),
                phase: None,
            },
        );
        match StoreResults(&self.store).record_result(&enclave_id, run_action, &update) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(enclave = %enclave_id, "runner result not recorded: the enclave moved on")
            }
            Err(e) => {
                tracing::error!(enclave = %enclave_id, error = %e, "cannot record the runner's result")
            }
        }
        drop((one, slot));
        {
            // Forget the enclave's lock unless another run holds or awaits it.
            let mut map = self.per_enclave.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::strong_count(&lock) == 2 {
                map.remove(&enclave_id);
            }
        }
        if outcome.exit_code == 0 {
            self.log(
                &enclave_id,
                "ecs",
                "runner task finished successfully".into(),
                None,
            );
            Ok(description)
        } else {
            let msg = outcome.error_message.clone().unwrap_or_default();
            self.log(&enclave_id, "errors", format!("runner failed: {msg}"), None);
            Err(failure("States.TaskFailed", description.to_string()))
        }
    }

    pub fn log(&self, enclave_id: &str, source: &str, message: String, fields: Option<Value>) {
        if enclave_id.is_empty() {
            return;
        }
        let entry = LogEntry {
            timestamp: clock::now_iso(),
            source: source.to_string(),
            message,
            fields,
        };
        if let Err(e) = self.store.append_logs(enclave_id, &[entry]) {
            tracing::error!(error = %e, "cannot store a log entry");
        }
    }
}

fn store_failure(e: treza_store::StoreError) -> TaskFailure {
    use treza_store::StoreError as S;
    match e {
        S::ConditionFailed { .. } | S::IllegalTransition(_) => {
            failure("DynamoDB.ConditionalCheckFailedException", e.to_string())
        }
        S::NotFound { .. } => failure("DynamoDB.ConditionalCheckFailedException", e.to_string()),
        other => failure("DynamoDB.InternalServerErrorException", other.to_string()),
    }
}

fn short_function(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Copies `v` with secret-looking values masked, for logs.
pub fn redacted(v: &Value) -> Value {
    let mut v = v.clone();
    treza_core::redact_json_secrets(&mut v);
    v
}

/// The local result port: applies a run's result to the record in the store,
/// only while the enclave is in the run's in-progress status.
pub struct StoreResults<'a>(pub &'a Store);

impl ResultPort for StoreResults<'_> {
    type Error = treza_store::StoreError;

    fn record_result(
        &self,
        enclave_id: &str,
        action: treza_runner::Action,
        update: &RecordUpdate,
    ) -> Result<bool, Self::Error> {
        let in_progress = match action {
            treza_runner::Action::Destroy => Status::Destroying,
            _ => Status::Deploying,
        };
        if *update == RecordUpdate::Nothing {
            return Ok(false);
        }
        let written = self.0.update_enclave(
            enclave_id,
            &Condition::status_in(&[in_progress]),
            &clock::now_iso(),
            |e| {
                match update {
                    RecordUpdate::Provisioned {
                        instance_id,
                        outputs,
                    } => {
                        if instance_id.is_some() {
                            e.instance_id = instance_id.clone();
                        }
                        e.outputs = outputs.clone();
                    }
                    RecordUpdate::Released => {
                        e.instance_id = None;
                        e.outputs.clear();
                    }
                    RecordUpdate::Failed {
                        error_type,
                        error_message,
                    } => {
                        e.error_type = Some(error_type.clone());
                        e.error_message = Some(error_message.clone());
                    }
                    RecordUpdate::Nothing => {}
                }
                Ok::<(), std::convert::Infallible>(())
            },
        );
        match written {
            Ok(_) => Ok(true),
            Err(UpdateError::Store(treza_store::StoreError::ConditionFailed { .. })) => Ok(false),
            Err(UpdateError::Store(e)) => Err(e),
            Err(UpdateError::Rejected(never)) => match never {},
        }
    }
}
