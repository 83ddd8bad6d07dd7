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
    let (error_type, message) = if name == "ValidationFailed" {
        ("ValidationFailed".to_string(), cause.to_string())
    } else if let Some((t, m)) =
        enclave.and_then(|e| Some((e.error_type.clone()?, e.error_message.clone()?)))
    {
        (t, m)
    } else if name == "DynamoDB.ConditionalCheckFailedException" {
        (
            "Conflict".to_string(),
            "the enclave's status changed while the workflow ran (conditional write refused)"
                .to_string(),
        )
    } else if name == "States.TaskFailed" || name == "States.Timeout" {
        let exit = serde_json::from_str::<Value>(cause)
            .ok()
            .and_then(|d| d.pointer("/Containers/0/ExitCode").cloned());
        let t = if name == "States.Timeout" {
            "Timeout"
        } else {
            "TerraformError"
        };
        let m = match exit {
            Some(code) => format!(
                "the Terraform runner stopped with exit code {code} without reporting an error"
            ),
            None if !cause.is_empty() => truncate(cause, 1000),
            None => name.to_string(),
        };
        (t.to_string(), m)
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
