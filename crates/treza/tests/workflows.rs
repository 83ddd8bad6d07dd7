//! The workflow files, run by the ASL engine against scripted task results:
//! every path of the deployment and cleanup workflows, without a server.

use serde_json::{json, Value};
use treza::server::engine::render_workflow;
use treza::server::host::LocalNames;
use treza_asl::{
    run_to_completion, ExecutionContext, Outcome, StateMachine, TaskFailure, TaskRequest,
};

fn machine(file: &str) -> StateMachine {
    let path = format!("{}/../../workflows/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("workflow file");
    StateMachine::parse(&render_workflow(
        &text,
        &LocalNames::default().placeholders(),
    ))
    .expect("valid workflow")
}

/// What each task returns: `runner` is the runner's exit code (None: ECS itself errors).
struct Script {
    valid: bool,
    runner: Option<i64>,
}

/// Runs a workflow and returns its outcome and every (state, parameters) task call.
fn run(file: &str, script: &Script) -> (Outcome, Vec<(String, Value)>) {
    let names = LocalNames::default();
    let mut calls = Vec::new();
    let handler = |t: &TaskRequest| -> Result<Value, TaskFailure> {
        calls.push((t.state_name.clone(), t.parameters.clone()));
        match t.resource.as_str() {
            "arn:aws:states:::lambda:invoke" => {
                let f = t.parameters["FunctionName"].as_str().unwrap_or_default();
                let payload = if f == names.validation_function {
                    if script.valid {
                        json!({"valid": true, "message": "ok", "providerId": "local", "walletAddress": "0xw", "config": {"command": ["true"]}})
                    } else {
                        json!({"valid": false, "message": "providerConfig.cpuCount must be even"})
                    }
                } else if f == names.error_handler_function {
                    // Echo what the handler was given, so the test sees it.
                    json!({"errorType": t.parameters["Payload"]["error"]["ExitClass"].as_str().unwrap_or("none"),
                           "errorMessage": t.parameters["Payload"]["error"]["Cause"].as_str().unwrap_or("")})
                } else {
                    json!({"notified": true})
                };
                Ok(json!({"StatusCode": 200, "Payload": payload}))
            }
            "arn:aws:states:::dynamodb:updateItem" => Ok(json!({})),
            "arn:aws:states:::ecs:runTask.sync" => match script.runner {
                Some(0) => Ok(
                    json!({"LastStatus": "STOPPED", "StopCode": "EssentialContainerExited", "Containers": [{"ExitCode": 0}]}),
                ),
                Some(code) => Err(TaskFailure {
                    error: "States.TaskFailed".into(),
                    cause: Some(
                        json!({"LastStatus": "STOPPED", "Containers": [{"ExitCode": code}]})
                            .to_string(),
                    ),
                }),
                None => Err(TaskFailure {
                    error: "ECS.AmazonECSException".into(),
                    cause: Some("throttled".into()),
                }),
            },
            other => panic!("unexpected resource {other}"),
        }
    };
    let input =
        json!({"enclaveId": "enc_1", "walletAddress": "0xw", "action": "deploy", "version": 1});
    let (outcome, _) = run_to_completion(
        &machine(file),
        ExecutionContext {
            name: "enc_1-deploy-v1".into(),
            ..Default::default()
        },
        input,
        chrono::Utc::now(),
        handler,
        true,
    );
    (outcome, calls)
}

fn states(calls: &[(String, Value)]) -> Vec<&str> {
    calls.iter().map(|(s, _)| s.as_str()).collect()
}

fn status_written(calls: &[(String, Value)]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|(_, p)| {
            let values = p.get("ExpressionAttributeValues")?;
            let expr = p.get("UpdateExpression")?.as_str()?;
            let placeholder = expr.split("#status = ").nth(1)?.split([',', ' ']).next()?;
            values
                .get(placeholder)?
                .get("S")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn deployment_happy_path() {
    let (outcome, calls) = run(
        "deployment.asl.json",
        &Script {
            valid: true,
            runner: Some(0),
        },
    );
    assert!(matches!(outcome, Outcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(
        states(&calls),
        [
            "ValidateDeploymentRequest",
            "UpdateStatusToInProgress",
            "RunTerraformDeployment",
            "UpdateStatusToDeployed"
        ]
    );
    assert_eq!(status_written(&calls), ["DEPLOYING", "DEPLOYED"]);
    // The runner gets the request as container environment.
    let env = &calls[2].1["Overrides"]["ContainerOverrides"][0]["Environment"];
    let names: Vec<&str> = env
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ENCLAVE_ID",
            "ACTION",
            "PROVIDER_ID",
            "WALLET_ADDRESS",
            "CONFIGURATION"
        ]
    );
    assert_eq!(env[4]["Value"], json!("{\"command\":[\"true\"]}"));
}

#[test]
fn invalid_request_fails_with_the_validation_message() {
    let (outcome, calls) = run(
        "deployment.asl.json",
        &Script {
            valid: false,
            runner: None,
        },
    );
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(
        states(&calls),
        [
            "ValidateDeploymentRequest",
            "ClassifyFailure",
            "UpdateStatusToFailed",
            "NotifyError"
        ]
    );
    let classify = &calls[1].1["Payload"]["error"];
    assert_eq!(classify["Error"], "ValidationFailed");
    assert_eq!(classify["Cause"], "providerConfig.cpuCount must be even");
    assert_eq!(status_written(&calls), ["FAILED"]);
}

#[test]
fn runner_exit_codes_choose_the_failure_class() {
    for (file, code, class) in [
        ("deployment.asl.json", 1, "TerraformError"),
        ("deployment.asl.json", 2, "InvalidInput"),
        ("deployment.asl.json", 3, "Timeout"),
        ("cleanup.asl.json", 1, "TerraformError"),
        ("cleanup.asl.json", 3, "Timeout"),
    ] {
        let (outcome, calls) = run(
            file,
            &Script {
                valid: true,
                runner: Some(code),
            },
        );
        assert!(
            matches!(outcome, Outcome::Failed { .. }),
            "{file} {code}: {outcome:?}"
        );
        let classify = calls
            .iter()
            .find(|(s, _)| s == "ClassifyFailure")
            .expect("ClassifyFailure ran");
        assert_eq!(
            classify.1["Payload"]["error"]["ExitClass"], class,
            "{file} exit {code}"
        );
        assert_eq!(
            status_written(&calls).last().map(String::as_str),
            Some("FAILED"),
            "{file} {code}"
        );
    }
}

#[test]
fn an_ecs_service_error_still_ends_failed() {
    let (outcome, calls) = run(
        "deployment.asl.json",
        &Script {
            valid: true,
            runner: None,
        },
    );
    assert!(matches!(outcome, Outcome::Failed { .. }));
    let classify = calls
        .iter()
        .find(|(s, _)| s == "ClassifyFailure")
        .expect("ClassifyFailure ran");
    assert_eq!(
        classify.1["Payload"]["error"]["Error"],
        "ECS.AmazonECSException"
    );
    assert!(classify.1["Payload"]["error"].get("ExitClass").is_none());
    assert_eq!(status_written(&calls), ["DEPLOYING", "FAILED"]);
}

#[test]
fn cleanup_happy_path() {
    let (outcome, calls) = run(
        "cleanup.asl.json",
        &Script {
            valid: true,
            runner: Some(0),
        },
    );
    assert!(matches!(outcome, Outcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(status_written(&calls), ["DESTROYING", "DESTROYED"]);
    assert_eq!(
        calls[2].1["Overrides"]["ContainerOverrides"][0]["Environment"][1]["Value"],
        "destroy"
    );
}
