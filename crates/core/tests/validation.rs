//! Data-driven validation tests: `tests/cases/provider_config.json` holds
//! requests and either the expected typed config or the expected errors
//! (`[field, rule, message substring]`, exactly these, in any order).

use serde_json::{json, Map, Value};
use treza_core::record::{MAX_DESCRIPTION_LEN, MAX_NAME_LEN};
use treza_core::validate::{
    instance_type, preflight_deploy, preflight_destroy, provider_config_schema,
    validate_new_enclave, validate_provider_config, NewEnclave, Provider, ProviderConfig,
    INSTANCE_TYPES,
};
use treza_core::{Enclave, Status};

fn cases() -> Vec<Value> {
    serde_json::from_str(include_str!("cases/provider_config.json")).expect("cases parse")
}

#[test]
fn provider_config_cases() {
    let mut failures = Vec::new();
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let provider = case["providerId"].as_str().unwrap();
        let raw = case["providerConfig"].as_object().unwrap();
        let result = validate_provider_config(provider, raw);
        match (case.get("expect"), case.get("errors"), result) {
            (Some(expect), None, Ok(cfg)) => {
                let got = serde_json::to_value(&cfg).unwrap();
                if &got != expect {
                    failures.push(format!("{name}: config\n  got  {got}\n  want {expect}"));
                }
            }
            (None, Some(want), Err(errs)) => {
                let mut left: Vec<_> = errs.0.clone();
                for w in want.as_array().unwrap() {
                    let (f, r, m) = (
                        w[0].as_str().unwrap(),
                        w[1].as_str().unwrap(),
                        w[2].as_str().unwrap(),
                    );
                    match left
                        .iter()
                        .position(|e| e.field == f && e.rule == r && e.message.contains(m))
                    {
                        Some(i) => {
                            left.remove(i);
                        }
                        None => failures.push(format!(
                            "{name}: missing error [{f}, {r}, ..{m}..]; got {:#?}",
                            errs.0
                        )),
                    }
                }
                for e in left {
                    failures.push(format!("{name}: unexpected error {e:?}"));
                }
            }
            (_, _, Ok(cfg)) => failures.push(format!("{name}: expected errors, got {cfg:?}")),
            (_, _, Err(errs)) => failures.push(format!("{name}: expected success, got {errs}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn nitro_ok() -> Map<String, Value> {
    obj(
        json!({"dockerImage": "nginx", "cpuCount": "2", "memoryMiB": "1024", "instanceType": "m6i.xlarge"}),
    )
}

#[test]
fn every_app_offered_combination_that_fits_is_accepted() {
    // The app offers cpuCount 2..16, memoryMiB 1024..16384 and these instance types.
    let app_types = [
        "m6i.xlarge",
        "m6i.2xlarge",
        "m6i.4xlarge",
        "m6i.8xlarge",
        "c6i.xlarge",
        "c6i.2xlarge",
        "c6i.4xlarge",
    ];
    for t in app_types {
        let it = instance_type(t).expect("app type is allowed");
        for cpu in [2u32, 4, 8, 16] {
            for mem in [1024u32, 2048, 4096, 8192, 16384] {
                let mut raw = nitro_ok();
                raw.insert("cpuCount".into(), json!(cpu.to_string()));
                raw.insert("memoryMiB".into(), json!(mem.to_string()));
                raw.insert("instanceType".into(), json!(t));
                let fits = cpu + 2 <= it.vcpus && mem + 2048 <= it.memory_mib && mem >= 512 * cpu;
                let r = validate_provider_config("aws-nitro", &raw);
                assert_eq!(r.is_ok(), fits, "{t} cpu={cpu} mem={mem}: {r:?}");
            }
        }
    }
    assert!(INSTANCE_TYPES.iter().all(|t| t.vcpus >= 4));
}

#[test]
fn numbers_as_strings_and_numbers_agree() {
    let as_strings = validate_provider_config("aws-nitro", &nitro_ok()).unwrap();
    let mut raw = nitro_ok();
    raw.insert("cpuCount".into(), json!(2));
    raw.insert("memoryMiB".into(), json!(1024));
    let as_numbers = validate_provider_config("aws-nitro", &raw).unwrap();
    assert_eq!(as_strings, as_numbers);
}

#[test]
fn too_many_environment_variables() {
    let mut env = Map::new();
    for i in 0..101 {
        env.insert(format!("V{i}"), json!("x"));
    }
    let mut raw = nitro_ok();
    raw.insert("environmentVariables".into(), Value::Object(env.clone()));
    let errs = validate_provider_config("aws-nitro", &raw).unwrap_err();
    assert!(
        errs.has("providerConfig.environmentVariables", "length"),
        "{errs:?}"
    );
    assert!(
        errs.to_string().contains("at most 100 entries, got 101"),
        "{errs}"
    );

    env.remove("V100");
    raw.insert("environmentVariables".into(), Value::Object(env));
    assert_eq!(
        validate_provider_config("aws-nitro", &raw)
            .unwrap()
            .environment_variables
            .len(),
        100
    );
}

#[test]
fn environment_value_too_long_is_reported_without_the_value() {
    let secret = "s3cr3t-".repeat(600); // 4200 chars
    let mut raw = nitro_ok();
    raw.insert(
        "environmentVariables".into(),
        json!({ "TOKEN": secret, "OK": "x".repeat(4096) }),
    );
    let errs = validate_provider_config("aws-nitro", &raw).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs.has("providerConfig.environmentVariables.TOKEN", "length"));
    assert!(errs
        .to_string()
        .contains("at most 4096 characters, got 4200"));
    let all = serde_json::to_string(&errs).unwrap();
    assert!(!all.contains("s3cr3t"), "secret leaked: {all}");
}

#[test]
fn command_argument_too_long() {
    let raw = obj(json!({"command": ["echo", "a".repeat(4097)]}));
    let errs = validate_provider_config("local", &raw).unwrap_err();
    assert!(errs.has("providerConfig.command[1]", "length"), "{errs:?}");
}

#[test]
fn unknown_keys_are_ignored() {
    let mut raw = nitro_ok();
    raw.insert("instanceId".into(), json!("i-123"));
    assert!(validate_provider_config("aws-nitro", &raw).is_ok());
}

#[test]
fn provider_config_serializes_camel_case_and_round_trips() {
    let mut raw = nitro_ok();
    raw.insert("environmentVariables".into(), json!({"K": "v"}));
    let cfg = validate_provider_config("aws-nitro", &raw).unwrap();
    let v = serde_json::to_value(&cfg).unwrap();
    for k in [
        "dockerImage",
        "cpuCount",
        "memoryMiB",
        "instanceType",
        "enableDebug",
        "environmentVariables",
        "workloadType",
        "exposePorts",
        "awsServices",
        "healthCheckInterval",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    let back: ProviderConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back, cfg);
    // Debug output never shows variable values.
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("\"K\": \"***\""), "{dbg}");
}

#[test]
fn provider_ids_round_trip() {
    for p in Provider::ALL {
        assert_eq!(Provider::parse(p.as_str()), Some(p));
        assert_eq!(serde_json::to_value(p).unwrap(), json!(p.to_string()));
    }
    assert_eq!(Provider::parse("AWS-NITRO"), None);
}

#[test]
fn schemas_are_exposed_per_provider() {
    for p in Provider::ALL {
        let s = provider_config_schema(p);
        assert!(s["properties"]["cpuCount"].is_object());
        assert!(!s["required"].as_array().unwrap().is_empty());
    }
}

fn new_enclave() -> NewEnclave {
    NewEnclave {
        name: "My enclave\twith tab".into(),
        description: "line one\nline two; $(rm -rf /) ${HOME} `id` <script>".into(),
        region: String::new(),
        wallet_address: "0x4b20993Bc481177ec7E8f571ceCaE8A9e22C02db".into(),
        provider_id: "aws-nitro".into(),
        provider_config: nitro_ok(),
    }
}

#[test]
fn new_enclave_accepts_free_text_and_defaults_region() {
    let req = new_enclave();
    assert!(validate_new_enclave(&req).is_ok());
    assert_eq!(req.region_or_default(), "us-east-1");
    let req: NewEnclave = serde_json::from_value(json!({
        "name": "n", "walletAddress": "w", "providerId": "local",
        "providerConfig": {"command": ["true"]}, "region": "eu-central-1"
    }))
    .unwrap();
    assert!(validate_new_enclave(&req).is_ok());
}

#[test]
fn new_enclave_reports_every_error() {
    let req: NewEnclave = serde_json::from_value(json!({
        "description": "x".repeat(MAX_DESCRIPTION_LEN + 1),
        "region": "Mars-1",
        "providerId": "aws-nitro",
        "providerConfig": {"cpuCount": "3"}
    }))
    .unwrap();
    let errs = validate_new_enclave(&req).unwrap_err();
    for (field, rule) in [
        ("name", "required"),
        ("description", "length"),
        ("walletAddress", "required"),
        ("region", "format"),
        ("providerConfig.dockerImage", "required"),
        ("providerConfig.memoryMiB", "required"),
        ("providerConfig.instanceType", "required"),
        ("providerConfig.cpuCount", "range"),
    ] {
        assert!(errs.has(field, rule), "missing {field}/{rule} in {errs:#?}");
    }
    assert_eq!(errs.len(), 8, "{errs:#?}");
    // Display joins every message.
    assert_eq!(errs.to_string().matches("; ").count(), 7);
}

#[test]
fn new_enclave_name_rules() {
    let mut req = new_enclave();
    req.name = "é".repeat(MAX_NAME_LEN); // counted in characters, not bytes
    assert!(validate_new_enclave(&req).is_ok());
    req.name = "x".repeat(MAX_NAME_LEN + 1);
    let errs = validate_new_enclave(&req).unwrap_err();
    assert!(errs.has("name", "length"));
    assert!(errs.to_string().contains(&format!(
        "at most {MAX_NAME_LEN} characters, got {}",
        MAX_NAME_LEN + 1
    )));
    req.name = "bad\u{0}name".into();
    assert!(validate_new_enclave(&req)
        .unwrap_err()
        .has("name", "format"));
    req.name = "bell\u{7}".into();
    assert!(validate_new_enclave(&req)
        .unwrap_err()
        .to_string()
        .contains("U+0007"));
    req.name = "   ".into();
    assert!(validate_new_enclave(&req)
        .unwrap_err()
        .has("name", "required"));
}

#[test]
fn new_enclave_wallet_and_provider() {
    let mut req = new_enclave();
    req.wallet_address = "0x12 34".into();
    assert!(validate_new_enclave(&req)
        .unwrap_err()
        .has("walletAddress", "format"));
    let mut req = new_enclave();
    req.provider_id = "azure".into();
    let errs = validate_new_enclave(&req).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs.has("providerId", "enum"));
}

#[test]
fn errors_serialize_as_a_list_of_field_rule_message() {
    let mut req = new_enclave();
    req.region = "nowhere".into();
    let errs = validate_new_enclave(&req).unwrap_err();
    let v = serde_json::to_value(&errs).unwrap();
    assert_eq!(v[0]["field"], "region");
    assert_eq!(v[0]["rule"], "format");
    assert!(v[0]["message"].as_str().unwrap().contains("\"nowhere\""));
}

fn record(status: Status) -> Enclave {
    serde_json::from_value(json!({
        "id": "enc_1700000000000_abc123xyz",
        "name": "n", "description": "", "region": "us-east-1",
        "walletAddress": "0xabc", "providerId": "aws-nitro",
        "providerConfig": {"dockerImage": "nginx", "cpuCount": "2", "memoryMiB": "1024", "instanceType": "m6i.xlarge"},
        "status": status, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z",
        "version": 1
    }))
    .unwrap()
}

#[test]
fn preflight_deploy_requires_pending_deploy() {
    for st in Status::ALL {
        let r = preflight_deploy(&record(st));
        if st == Status::PendingDeploy {
            assert_eq!(r.unwrap().cpu_count, 2);
        } else {
            let errs = r.unwrap_err();
            assert!(errs.has("status", "status"), "{st}: {errs:?}");
            assert!(errs.to_string().contains(st.as_str()));
        }
    }
}

#[test]
fn preflight_deploy_rechecks_the_record() {
    let mut e = record(Status::PendingDeploy);
    e.provider_config.insert("cpuCount".into(), json!("5"));
    e.wallet_address.clear();
    let errs = preflight_deploy(&e).unwrap_err();
    assert!(errs.has("providerConfig.cpuCount", "range"));
    assert!(errs.has("walletAddress", "required"));
}

#[test]
fn preflight_destroy_requires_pending_destroy_but_not_a_valid_config() {
    for st in Status::ALL {
        let mut e = record(st);
        e.provider_config.insert("cpuCount".into(), json!("bogus"));
        let r = preflight_destroy(&e);
        if st == Status::PendingDestroy {
            assert_eq!(r.unwrap(), Provider::AwsNitro);
        } else {
            assert!(r.unwrap_err().has("status", "status"), "{st}");
        }
    }
    let mut e = record(Status::PendingDestroy);
    e.provider_id = "nope".into();
    assert!(preflight_destroy(&e).unwrap_err().has("providerId", "enum"));
}
