//! The Lambda functions of the workflows (validation, error handler, notify),
//! called in-process. Each takes the `Payload` the workflow sends and returns
//! the `Payload` a Lambda would return.

use serde_json::{json, Value};
use treza_core::Enclave;

/// `ValidateDeploymentRequest` / `ValidateCleanupRequest`: re-checks the record
/// as stored (the web app may have written it without going through the API).
pub fn validate(enclave: Option<&Enclave>, action: &str) -> Value {
    let Some(e) = enclave else {
        return json!({"valid": false, "errorType": "ValidationFailed", "message": "enclave not found in the table"});
    };
    let checked = match action {
        "deploy" => treza_core::preflight_deploy(e).map(|config| json!(config)),
        // A record whose configuration has since become invalid must still be
        // destroyable: pass the typed config when it validates, else the raw one.
        "destroy" => treza_core::preflight_destroy(e).map(|provider| {
            treza_core::validate_provider_config(provider.as_str(), &e.provider_config)
                .map(|c| json!(c))
                .unwrap_or_else(|_| Value::Object(e.provider_config.clone()))
        }),
        other => {
            return json!({"valid": false, "errorType": "ValidationFailed",
                "message": format!("payload.action must be deploy or destroy, got '{other}'")})
        }
    };
    match checked {
        Ok(config) => json!({
            "valid": true,
            "message": "request is valid",
            "providerId": e.provider_id,
            "walletAddress": e.wallet_address,
            "config": config,
        }),
        Err(errors) => json!({
            "valid": false,
            "errorType": "ValidationFailed",
            "message": errors.to_string(),
            "errors": errors,
        }),
    }
}

pub fn classify_failure(enclave: Option<&Enclave>, error: &Value) -> Value {
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("States.Runtime");
    let cause = error.get("Cause").and_then(Value::as_str).unwrap_or("");
    // A runner failure's cause is the stopped ECS task's description.
    let task = serde_json::from_str::<Value>(cause)
        .ok()
        .filter(|d| d.get("Containers").is_some());
    let (error_type, message) = if name == "ValidationFailed" {
        ("ValidationFailed".to_string(), cause.to_string())
    } else if let Some(task) = &task {
        let reason = task.pointer("/Containers/0/Reason").and_then(Value::as_str);
        match reason.and_then(|r| r.split_once(": ")) {
            // The runner's own first error line, carried as the container's reason.
            Some((t, m)) => (t.to_string(), m.to_string()),
            None => match enclave.and_then(|e| Some((e.error_type.clone()?, e.error_message.clone()?))) {
                // What the runner wrote on the record during this attempt (the
                // in-progress write cleared older values before it ran).
                Some((t, m)) => (t, m),
                None => (
                    // The workflow's reading of the runner's exit code (2 -> InvalidInput, 3 -> Timeout).
                    error
                        .get("ExitClass")
                        .and_then(Value::as_str)
                        .unwrap_or("TerraformError")
                        .to_string(),
                    match task.pointer("/Containers/0/ExitCode") {
                        Some(code) => format!(
                            "the Terraform runner stopped with exit code {code} without reporting an error"
                        ),
                        None => "the Terraform runner stopped without reporting an error".to_string(),
                    },
                ),
            },
        }
    } else if name == "DynamoDB.ConditionalCheckFailedException" {
        (
            "Conflict".to_string(),
            "the enclave's status changed while the workflow ran (conditional write refused)"
                .to_string(),
        )
    } else if name == "States.Timeout" {
        (
            "Timeout".to_string(),
            format!(
                "the step timed out{}",
                if cause.is_empty() {
                    String::new()
                } else {
                    format!(": {}", truncate(cause, 1000))
                }
            ),
        )
    } else {
        let m = if cause.is_empty() {
            name.to_string()
        } else {
            format!("{name}: {}", truncate(cause, 1000))
        };
        ("Internal".to_string(), m)
    };
    json!({"errorType": error_type, "errorMessage": message})
}

/// `NotifyError`: in production an SNS publish; here the server's log.
pub fn notify(payload: &Value) -> Value {
    let field = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let (enclave, action, error_type) = (field("enclaveId"), field("action"), field("errorType"));
    tracing::warn!(%enclave, %action, %error_type, "enclave workflow failed");
    json!({"notified": true})
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::classify_failure;
    use serde_json::json;
    use treza_core::Enclave;

    fn enclave_with_error() -> Enclave {
        serde_json::from_value(json!({
            "id": "e", "name": "n", "walletAddress": "w", "providerId": "local",
            "status": "DEPLOYING", "createdAt": "t", "updatedAt": "t",
            "errorType": "TerraformError", "errorMessage": "an older attempt's error"
        }))
        .unwrap()
    }

    fn task_cause(reason: Option<&str>) -> String {
        let mut c = json!({"Name": "terraform-runner", "ExitCode": 1});
        if let Some(r) = reason {
            c["Reason"] = json!(r);
        }
        json!({"LastStatus": "STOPPED", "Containers": [c]}).to_string()
    }

    #[test]
    fn the_runners_reason_wins() {
        let e = enclave_with_error();
        let out = classify_failure(
            Some(&e),
            &json!({"Error": "States.TaskFailed", "Cause": task_cause(Some("WorkloadFailed: health check failed"))}),
        );
        assert_eq!(
            out,
            json!({"errorType": "WorkloadFailed", "errorMessage": "health check failed"})
        );
    }

    #[test]
    fn record_fields_only_for_a_runner_failure() {
        let e = enclave_with_error();
        let runner = classify_failure(
            Some(&e),
            &json!({"Error": "States.TaskFailed", "Cause": task_cause(None)}),
        );
        assert_eq!(runner["errorMessage"], "an older attempt's error");
        // A failure before the runner ran must not report a stale message.
        let lambda = classify_failure(
            Some(&e),
            &json!({"Error": "Lambda.ServiceException", "Cause": "boom"}),
        );
        assert_eq!(
            lambda,
            json!({"errorType": "Internal", "errorMessage": "Lambda.ServiceException: boom"})
        );
        let conflict = classify_failure(
            Some(&e),
            &json!({"Error": "DynamoDB.ConditionalCheckFailedException"}),
        );
        assert_eq!(conflict["errorType"], "Conflict");
    }

    #[test]
    fn exit_class_names_a_silent_runner_failure() {
        let out = classify_failure(
            None,
            &json!({"Error": "States.TaskFailed", "Cause": task_cause(None), "ExitClass": "Timeout"}),
        );
        assert_eq!(out["errorType"], "Timeout");
        assert!(
            out["errorMessage"]
                .as_str()
                .unwrap()
                .contains("exit code 1"),
            "{out}"
        );
    }

    #[test]
    fn validation_message_is_kept() {
        let out = classify_failure(
            None,
            &json!({"Error": "ValidationFailed", "Cause": "providerConfig.cpuCount must be even"}),
        );
        assert_eq!(out["errorMessage"], "providerConfig.cpuCount must be even");
    }
}
