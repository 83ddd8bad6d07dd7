//! Failure classification examples and secret redaction.

use serde_json::json;
use treza_core::redact::{is_secret_key, MASK};
use treza_core::{classify_terraform_failure, redact_json_secrets, ErrorType, Redactor};

#[test]
fn classification_examples() {
    let cases: &[(&str, ErrorType, &str)] = &[
        (
            "aws_instance.enclave: Creating...\n\
             ╷\n\
             │ Error: creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient m6i.xlarge capacity\n\
             │ \tstatus code: 500, request id: 1234\n\
             │ \n\
             │   with aws_instance.enclave,\n\
             ╵\n",
            ErrorType::Capacity,
            "creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient m6i.xlarge capacity",
        ),
        (
            "│ Error: creating EC2 Instance: VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 32 allows\n",
            ErrorType::Quota,
            "creating EC2 Instance: VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 32 allows",
        ),
        (
            "Error: Error acquiring the state lock\n\nError message: ConditionalCheckFailedException\nLock Info:\n  ID: 1\n",
            ErrorType::StateLocked,
            "Error acquiring the state lock",
        ),
        (
            "│ Error: No valid credential sources found\n│ \n│ Please see https://registry.terraform.io/providers/hashicorp/aws\n",
            ErrorType::ProviderAuth,
            "No valid credential sources found",
        ),
        (
            "│ Error: validating provider credentials: retrieving caller identity from STS: operation error STS: GetCallerIdentity, https response error StatusCode: 403, api error InvalidClientTokenId: The security token included in the request is invalid.\n",
            ErrorType::ProviderAuth,
            "validating provider credentials: retrieving caller identity from STS",
        ),
        (
            "Error: ExpiredToken: The security token included in the request is expired\n",
            ErrorType::ProviderAuth,
            "ExpiredToken: The security token included in the request is expired",
        ),
        (
            "NoCredentialProviders: no valid providers in chain\n",
            ErrorType::ProviderAuth,
            "NoCredentialProviders: no valid providers in chain",
        ),
        (
            "│ Error: creating Security Group: RulesPerSecurityGroupLimitExceeded\n",
            ErrorType::Quota,
            "creating Security Group: RulesPerSecurityGroupLimitExceeded",
        ),
        (
            "│ Error: waiting for EC2 Instance (i-0abc) create: timeout while waiting for state to become 'running' (last state: 'pending', timeout: 10m0s)\n",
            ErrorType::Timeout,
            "waiting for EC2 Instance (i-0abc) create: timeout while waiting for state to become 'running'",
        ),
        (
            "\u{1b}[31m╷\u{1b}[0m\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[0m\u{1b}[1mUnsupported argument\u{1b}[0m\n",
            ErrorType::TerraformError,
            "Unsupported argument",
        ),
        (
            "null_resource.workload (local-exec): treza-workload: starting [\"./server\"]\n\
             null_resource.workload (local-exec): treza-workload: error: health check http://127.0.0.1:8080/ failed 3 times: connection refused\n\
             │ Error: local-exec provisioner error\n",
            ErrorType::WorkloadFailed,
            "health check http://127.0.0.1:8080/ failed 3 times: connection refused",
        ),
        (
            "treza-workload: error: process exited with status 1\n│ Error: Error acquiring the state lock\n",
            ErrorType::WorkloadFailed,
            "process exited with status 1",
        ),
        (
            "Initializing the backend...\nsomething went wrong\n\n",
            ErrorType::TerraformError,
            "something went wrong",
        ),
        (
            "│ Error: reading S3 Bucket: operation error S3: HeadBucket, https response error StatusCode: 403, api error AccessDenied: Access Denied\n",
            ErrorType::ProviderAuth,
            "reading S3 Bucket: operation error S3: HeadBucket",
        ),
        (
            "│ Error: creating EC2 Instance: InstanceLimitExceeded: Your quota allows for 0 more running instance(s)\n",
            ErrorType::Quota,
            "creating EC2 Instance: InstanceLimitExceeded",
        ),
        ("", ErrorType::TerraformError, "terraform failed without printing an error"),
    ];
    for (output, want_type, want_msg) in cases {
        let (t, msg) = classify_terraform_failure(output);
        assert_eq!(t, *want_type, "type for {output:?}");
        assert!(
            msg.starts_with(want_msg),
            "message {msg:?} should start with {want_msg:?}"
        );
        assert!(!msg.contains('\u{1b}') && !msg.starts_with('│'), "{msg:?}");
    }
}

#[test]
fn first_error_line_wins_and_messages_are_bounded() {
    let out = format!("Error: first\nError: second\nError: {}\n", "x".repeat(5000));
    assert_eq!(classify_terraform_failure(&out).1, "first");
    let (_, long) = classify_terraform_failure(&format!("Error: {}", "y".repeat(5000)));
    assert!(long.chars().count() <= 1000 && long.ends_with("..."));
}

#[test]
fn error_type_serializes_pascal_case() {
    assert_eq!(
        serde_json::to_value(ErrorType::StateLocked).unwrap(),
        json!("StateLocked")
    );
    assert_eq!(
        serde_json::to_value(ErrorType::WorkloadFailed).unwrap(),
        json!("WorkloadFailed")
    );
    assert!(ErrorType::Capacity.is_transient());
    assert!(!ErrorType::ValidationFailed.is_transient());
}

#[test]
fn redacts_every_occurrence() {
    let r = Redactor::new(["hunter22", "tok_ABCDEF123"]);
    assert_eq!(
        r.redact("pw=hunter22 again hunter22 and tok_ABCDEF123."),
        "pw=*** again *** and ***."
    );
    assert!(matches!(
        r.redact("nothing here"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn short_values_are_not_secrets() {
    let r = Redactor::new(["1", "yes", "abc", ""]);
    assert!(r.is_empty());
    assert_eq!(r.redact("yes 1 abc"), "yes 1 abc");
    // Length is counted in characters: four of them make a secret.
    let r = Redactor::new(["äöü", "true"]);
    assert_eq!(r.len(), 1);
    assert_eq!(r.redact("äöü true"), "äöü ***");
}

#[test]
fn overlapping_secrets_are_fully_covered() {
    // Neither secret may leave a fragment behind, whichever is found first.
    let r = Redactor::new(["abcdef", "defghi"]);
    assert_eq!(r.redact("xx abcdefghi yy"), "xx *** yy");
    // One secret inside another.
    let r = Redactor::new(["secretvalue", "value"]);
    assert_eq!(r.redact("secretvalue value"), "*** ***");
    // Self-overlapping occurrences and adjacency.
    let r = Redactor::new(["aaaa"]);
    assert_eq!(r.redact("aaaaaa|aaaaaaaa"), "***|***");
    // Non-ASCII secrets keep the line valid UTF-8.
    let r = Redactor::new(["pässwörd", "wörd-zwei"]);
    assert_eq!(r.redact("x pässwörd-zwei y"), "x *** y");
}

#[test]
fn json_escaped_form_is_redacted_too() {
    let r = Redactor::new(["p\"w\\1"]);
    let line = serde_json::to_string(&json!({"v": "p\"w\\1"})).unwrap();
    assert_eq!(r.redact(&line), "{\"v\":\"***\"}");
    assert_eq!(format!("{r:?}"), "Redactor { secrets: 2 }");
}

#[test]
fn multi_line_secrets_are_masked_line_by_line() {
    let pem = "-----BEGIN KEY-----\nMIIBVwIBADANBgkq\n  hkiG9w0BAQEFAASC\n-----END KEY-----";
    let r = Redactor::new([pem]);
    for line in [
        "MIIBVwIBADANBgkq",
        "    hkiG9w0BAQEFAASC",
        "-----BEGIN KEY-----",
    ] {
        assert!(r.redact(line).contains(MASK), "{line}");
    }
    assert_eq!(r.redact(&format!("key={pem}")), "key=***");
    assert_eq!(r.redact(&serde_json::to_string(pem).unwrap()), "\"***\"");
}

#[test]
fn redact_value_masks_inside_json() {
    let r = Redactor::new(["s3cr3t-value"]);
    let mut v =
        json!({"msg": "token s3cr3t-value used", "list": ["s3cr3t-value"], "s3cr3t-value": 1});
    r.redact_value(&mut v);
    assert_eq!(
        v,
        json!({"msg": "token *** used", "list": ["***"], "***": 1})
    );
}

#[test]
fn secret_keys() {
    for k in [
        "token",
        "accessToken",
        "X-Api-Key",
        "api_key",
        "apiKey",
        "Authorization",
        "clientSecret",
        "DB_PASSWORD",
        "private_key",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(is_secret_key(k), "{k}");
    }
    for k in [
        "name",
        "dockerImage",
        "walletAddress",
        "keyName",
        "instanceType",
    ] {
        assert!(!is_secret_key(k), "{k}");
    }
}

#[test]
fn redact_json_by_key() {
    let mut v = json!({
        "id": "enc_1",
        "headers": {"Authorization": "Bearer abc.def", "accept": "json"},
        "accessToken": "eyJhbGciOi",
        "nested": [{"client_secret": "zzz", "apiKey": null}],
        "providerConfig": {
            "dockerImage": "nginx",
            "environmentVariables": {"DB_URL": "postgres://u:p@h/db", "MODE": "prod"}
        },
        "app": {"environmentVariables": "{\"A\":\"1\",\"B\":\"two\"}"},
        "broken": {"environmentVariables": "A=1"},
        "Overrides": {"ContainerOverrides": [{"Environment": [
            {"Name": "ENCLAVE_ID", "Value": "enc_1"},
            {"Name": "CONFIGURATION", "Value": "{\"x\":1}"}
        ]}]},
        "CONFIGURATION": "{\"dockerImage\":\"nginx\",\"environmentVariables\":{\"K\":\"v\"}}"
    });
    redact_json_secrets(&mut v);
    assert_eq!(
        v,
        json!({
            "id": "enc_1",
            "headers": {"Authorization": MASK, "accept": "json"},
            "accessToken": MASK,
            "nested": [{"client_secret": MASK, "apiKey": null}],
            "providerConfig": {
                "dockerImage": "nginx",
                "environmentVariables": {"DB_URL": MASK, "MODE": MASK}
            },
            "app": {"environmentVariables": "{\"A\":\"***\",\"B\":\"***\"}"},
            "broken": {"environmentVariables": MASK},
            "Overrides": {"ContainerOverrides": [{"Environment": [
                {"Name": "ENCLAVE_ID", "Value": MASK},
                {"Name": "CONFIGURATION", "Value": MASK}
            ]}]},
            "CONFIGURATION": "{\"dockerImage\":\"nginx\",\"environmentVariables\":{\"K\":\"***\"}}"
        })
    );
}

#[test]
fn redaction_is_fast_enough_for_every_log_line() {
    let secrets: Vec<String> = (0..200)
        .map(|i| format!("secret-value-{i:04}-xyz"))
        .collect();
    let r = Redactor::new(&secrets);
    let line =
        "2024-01-01T00:00:00Z aws_instance.enclave: Still creating... [10s elapsed] ".repeat(4);
    let start = std::time::Instant::now();
    for _ in 0..20_000 {
        std::hint::black_box(r.redact(std::hint::black_box(&line)));
    }
    // ~6 MB scanned; generous bound for an unoptimised test build on a busy machine.
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}
