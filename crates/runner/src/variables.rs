//! How `CONFIGURATION` and the individual environment variables become the
//! module's input variables (`terraform.tfvars.json`).
//!
//! `CONFIGURATION` is the base. The individual variables (`DOCKER_IMAGE`,
//! `WORKLOAD_TYPE`, `EXPOSE_PORTS`, ...) override the matching typed field,
//! or fill it in when absent:
//!
//! - **local** (`providers/local`): `CONFIGURATION` holds the module's
//!   variables (`enclave_id`, `workload`, `workload_dir`, `supervisor`), as the
//!   server builds them. `WORKLOAD_TYPE`, `HEALTH_CHECK_PATH`,
//!   `HEALTH_CHECK_INTERVAL` and `EXPOSE_PORTS` set `workload.workload_type`,
//!   `workload.health_check_path`, `workload.health_check_interval` and
//!   `workload.expose_ports`. The AWS ones (`DOCKER_IMAGE`, `AWS_SERVICES`,
//!   `VPC_ID`, `SUBNET_ID`, `SHARED_SECURITY_GROUP_ID`) and `WALLET_ADDRESS`
//!   are validated but not used: the module has no such variables.
//! - **aws-nitro** (`providers/aws-nitro`): `CONFIGURATION` is the
//!   validated `providerConfig` the workflow passes (camelCase), which becomes
//!   the module's `workload` object (`dockerImage` -> `image`, `memoryMiB` ->
//!   `memory_mib`, `environmentVariables` -> `environment`, ...; keys the
//!   module does not take, such as `command`, are dropped), or it already
//!   holds module variables (it has a `workload` key) and is used as is.
//!   `DOCKER_IMAGE`, `WORKLOAD_TYPE`, `HEALTH_CHECK_PATH`,
//!   `HEALTH_CHECK_INTERVAL`, `AWS_SERVICES` and `EXPOSE_PORTS` then set the
//!   matching `workload` fields; `WALLET_ADDRESS`, `VPC_ID`, `SUBNET_ID`,
//!   `SHARED_SECURITY_GROUP_ID` and `BOOTSTRAP_BUCKET` set the top-level
//!   variables of the same (snake_case) names.
//!
//! Both: `enclave_id` is set to `ENCLAVE_ID` (a different value in
//! `CONFIGURATION` is an error). When `CONFIGURATION` is absent (destroy
//! only), the previous run's `terraform.tfvars.json` is reused unchanged and
//! the individual variables are not applied.

use serde_json::{json, Map, Value};

use crate::request::InputError;

/// Values taken from the individual environment variables, already validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleOverrides {
    pub wallet_address: Option<String>,
    pub docker_image: Option<String>,
    pub workload_type: Option<String>,
    pub health_check_path: Option<String>,
    /// Whole seconds.
    pub health_check_interval: Option<u64>,
    pub aws_services: Option<Vec<String>>,
    pub expose_ports: Option<Vec<u16>>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub shared_security_group_id: Option<String>,
    pub bootstrap_bucket: Option<String>,
}

/// providerConfig attribute -> field of the aws-nitro module's `workload`.
const NITRO_WORKLOAD_FIELDS: &[(&str, &str)] = &[
    ("dockerImage", "image"),
    ("instanceType", "instance_type"),
    ("cpuCount", "cpu_count"),
    ("memoryMiB", "memory_mib"),
    ("imageSizeMiB", "image_size_mib"),
    ("enableDebug", "enable_debug"),
    ("environmentVariables", "environment"),
    ("workloadType", "workload_type"),
    ("exposePorts", "expose_ports"),
    ("awsServices", "aws_services"),
    ("healthCheckPath", "health_check_path"),
    ("healthCheckInterval", "health_check_interval"),
    ("startupTimeoutSeconds", "startup_timeout_seconds"),
];

fn config_error(rule: impl Into<String>) -> InputError {
    InputError {
        variable: "CONFIGURATION".to_string(),
        rule: rule.into(),
    }
}

/// The module's variables for a run; see the module documentation for the rules.
pub fn module_variables(
    provider_id: &str,
    enclave_id: &str,
    configuration: Option<Map<String, Value>>,
    overrides: &ModuleOverrides,
) -> Result<Map<String, Value>, InputError> {
    let Some(configuration) = configuration else {
        return Ok(Map::new());
    };
    let mut vars = if provider_id == "local" {
        let mut vars = configuration;
        apply_local(&mut vars, overrides)?;
        vars
    } else {
        let mut vars = if configuration.contains_key("workload") {
            configuration
        } else {
            nitro_from_provider_config(configuration)?
        };
        apply_nitro(&mut vars, overrides)?;
        vars
    };
    match vars.get("enclave_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == enclave_id => {}
        Some(_) => {
            return Err(config_error(
                "enclave_id must equal ENCLAVE_ID (or be left out)",
            ))
        }
    }
    vars.insert("enclave_id".into(), json!(enclave_id));
    Ok(vars)
}

/// The module's variables from a camelCase `providerConfig`.
fn nitro_from_provider_config(
    config: Map<String, Value>,
) -> Result<Map<String, Value>, InputError> {
    let mut workload = Map::new();
    let mut vars = Map::new();
    for (key, value) in config {
        if value.is_null() {
            continue;
        }
        if key == "enclave_id" || key == "enclaveId" {
            // Checked against ENCLAVE_ID by the caller.
            vars.insert("enclave_id".into(), value);
            continue;
        }
        let field = NITRO_WORKLOAD_FIELDS
            .iter()
            .find(|(camel, snake)| *camel == key || *snake == key)
            .map(|(_, snake)| *snake);
        if let Some(field) = field {
            if workload.insert(field.to_string(), value).is_some() {
                return Err(config_error(format!(
                    "gives workload.{field} twice; give one spelling"
                )));
            }
        }
    }
    vars.insert("workload".into(), Value::Object(workload));
    Ok(vars)
}

fn apply_nitro(vars: &mut Map<String, Value>, o: &ModuleOverrides) -> Result<(), InputError> {
    let workload = match vars.get_mut("workload") {
        Some(Value::Object(m)) => m,
        _ => return Err(config_error("workload must be an object")),
    };
    let set = |map: &mut Map<String, Value>, name: &str, value: Option<Value>| {
        if let Some(v) = value {
            map.insert(name.to_string(), v);
        }
    };
    set(workload, "image", o.docker_image.as_ref().map(|v| json!(v)));
    set(
        workload,
        "workload_type",
        o.workload_type.as_ref().map(|v| json!(v)),
    );
    set(
        workload,
        "health_check_path",
        o.health_check_path.as_ref().map(|v| json!(v)),
    );
    set(
        workload,
        "health_check_interval",
        o.health_check_interval.map(|v| json!(v)),
    );
    set(
        workload,
        "aws_services",
        o.aws_services.as_ref().map(|v| json!(v)),
    );
    set(
        workload,
        "expose_ports",
        o.expose_ports.as_ref().map(|v| json!(v)),
    );
    set(
        vars,
        "wallet_address",
        o.wallet_address.as_ref().map(|v| json!(v)),
    );
    set(vars, "vpc_id", o.vpc_id.as_ref().map(|v| json!(v)));
    set(vars, "subnet_id", o.subnet_id.as_ref().map(|v| json!(v)));
    set(
        vars,
        "shared_security_group_id",
        o.shared_security_group_id.as_ref().map(|v| json!(v)),
    );
    set(
        vars,
        "bootstrap_bucket",
        o.bootstrap_bucket.as_ref().map(|v| json!(v)),
    );
    Ok(())
}

fn apply_local(vars: &mut Map<String, Value>, o: &ModuleOverrides) -> Result<(), InputError> {
    let fields: Vec<(&str, Value)> = [
        ("workload_type", o.workload_type.as_ref().map(|v| json!(v))),
        (
            "health_check_path",
            o.health_check_path.as_ref().map(|v| json!(v)),
        ),
        (
            "health_check_interval",
            o.health_check_interval.map(|v| json!(v)),
        ),
        ("expose_ports", o.expose_ports.as_ref().map(|v| json!(v))),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    if fields.is_empty() {
        return Ok(());
    }
    let mut workload = match vars.remove("workload") {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(config_error(
                    "workload must be an object (or a JSON string of one)",
                ))
            }
        },
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(config_error(
                "workload must be an object (or a JSON string of one)",
            ))
        }
    };
    for (k, v) in fields {
        workload.insert(k.to_string(), v);
    }
    vars.insert("workload".into(), Value::Object(workload));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn all_overrides() -> ModuleOverrides {
        ModuleOverrides {
            wallet_address: Some("0xabc".into()),
            docker_image: Some("nginx:1.27".into()),
            workload_type: Some("service".into()),
            health_check_path: Some("/ready".into()),
            health_check_interval: Some(15),
            aws_services: Some(vec!["kms".into()]),
            expose_ports: Some(vec![8080]),
            vpc_id: Some("vpc-0123abcd".into()),
            subnet_id: Some("subnet-0123abcd".into()),
            shared_security_group_id: Some("sg-0123abcd".into()),
            bootstrap_bucket: Some("treza-bootstrap".into()),
        }
    }

    #[test]
    fn nitro_provider_config_becomes_the_modules_workload() {
        let config = obj(json!({
            "dockerImage": "old:1", "cpuCount": 2, "memoryMiB": 4096,
            "instanceType": "m6i.xlarge", "environmentVariables": {"A": "b"},
            "workloadType": "daemon", "exposePorts": [], "healthCheckInterval": 10,
            "healthCheckPath": null, "command": ["ignored"]
        }));
        let vars =
            module_variables("aws-nitro", "enc_1", Some(config), &all_overrides()).expect("ok");
        let w = &vars["workload"];
        assert_eq!(w["image"], json!("nginx:1.27"));
        assert_eq!(w["memory_mib"], json!(4096));
        assert_eq!(w["cpu_count"], json!(2));
        assert_eq!(w["instance_type"], json!("m6i.xlarge"));
        assert_eq!(w["environment"], json!({"A": "b"}));
        assert_eq!(w["workload_type"], json!("service"));
        assert_eq!(w["expose_ports"], json!([8080]));
        assert_eq!(w["health_check_interval"], json!(15));
        assert_eq!(w["health_check_path"], json!("/ready"));
        assert_eq!(w["aws_services"], json!(["kms"]));
        assert!(w.get("command").is_none());
        assert_eq!(vars["vpc_id"], json!("vpc-0123abcd"));
        assert_eq!(vars["subnet_id"], json!("subnet-0123abcd"));
        assert_eq!(vars["shared_security_group_id"], json!("sg-0123abcd"));
        assert_eq!(vars["bootstrap_bucket"], json!("treza-bootstrap"));
        assert_eq!(vars["wallet_address"], json!("0xabc"));
        assert_eq!(vars["enclave_id"], json!("enc_1"));
    }

    #[test]
    fn nitro_module_variables_pass_through() {
        let config = obj(json!({"workload": {"image": "app:2"}, "subnet_id": "subnet-1"}));
        let vars = module_variables("aws-nitro", "e", Some(config), &ModuleOverrides::default())
            .expect("ok");
        assert_eq!(
            Value::Object(vars),
            json!({"workload": {"image": "app:2"}, "subnet_id": "subnet-1", "enclave_id": "e"})
        );
    }

    #[test]
    fn both_spellings_of_a_workload_field_are_rejected() {
        let config = obj(json!({"dockerImage": "a:1", "image": "b:2"}));
        let err = module_variables("aws-nitro", "e", Some(config), &ModuleOverrides::default())
            .expect_err("duplicate");
        assert!(err.rule.contains("workload.image"), "{err}");
    }

    /// The variables the runner writes are the ones providers/aws-nitro declares.
    #[test]
    fn nitro_variables_match_the_module() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../providers/aws-nitro/variables.tf"
        );
        let Ok(tf) = std::fs::read_to_string(dir) else {
            eprintln!("providers/aws-nitro not found beside the crate; contract not checked");
            return;
        };
        let config = obj(json!({
            "dockerImage": "a:1", "cpuCount": 2, "memoryMiB": 4096, "instanceType": "m6i.xlarge",
            "imageSizeMiB": 100, "enableDebug": false, "environmentVariables": {}, "workloadType": "service",
            "exposePorts": [80], "awsServices": ["kms"], "healthCheckPath": "/", "healthCheckInterval": 10,
            "startupTimeoutSeconds": 60
        }));
        let vars = module_variables("aws-nitro", "e", Some(config), &all_overrides()).expect("ok");
        for name in vars.keys() {
            assert!(
                tf.contains(&format!("variable \"{name}\"")),
                "module has no variable {name}"
            );
        }
        let start = tf.find("variable \"workload\"").expect("workload variable");
        let block = &tf[start..];
        for field in vars["workload"].as_object().expect("object").keys() {
            assert!(
                block.contains(&format!("{field} ")) || block.contains(&format!("{field}=")),
                "workload object has no field {field}"
            );
        }
    }

    #[test]
    fn local_overrides_go_into_the_workload_and_aws_ones_are_ignored() {
        let workload = json!({"command": ["x"], "workload_type": "daemon"}).to_string();
        let config = obj(json!({
            "workload": workload, "workload_dir": "/w", "supervisor": "/s"
        }));
        let vars = module_variables("local", "e", Some(config), &all_overrides()).expect("ok");
        assert_eq!(
            vars["workload"],
            json!({"command": ["x"], "workload_type": "service", "health_check_path": "/ready",
                   "health_check_interval": 15, "expose_ports": [8080]})
        );
        for aws in [
            "docker_image",
            "vpc_id",
            "subnet_id",
            "shared_security_group_id",
            "aws_services",
            "wallet_address",
        ] {
            assert!(!vars.contains_key(aws), "{aws}");
        }
        assert_eq!(vars["enclave_id"], json!("e"));
        assert_eq!(vars["workload_dir"], json!("/w"));
    }

    #[test]
    fn local_without_overrides_leaves_the_workload_string_alone() {
        let workload = json!({"command": ["x"]}).to_string();
        let config = obj(json!({"workload": workload.clone(), "enclave_id": "e"}));
        let vars =
            module_variables("local", "e", Some(config), &ModuleOverrides::default()).expect("ok");
        assert_eq!(vars["workload"], json!(workload));
    }

    #[test]
    fn local_workload_that_is_not_an_object_is_rejected_when_overridden() {
        let config = obj(json!({"workload": [1, 2]}));
        let overrides = ModuleOverrides {
            workload_type: Some("batch".into()),
            ..ModuleOverrides::default()
        };
        let err = module_variables("local", "e", Some(config), &overrides).expect_err("bad");
        assert_eq!(err.variable, "CONFIGURATION");
    }

    #[test]
    fn enclave_id_must_match() {
        let config = obj(json!({"enclave_id": "other"}));
        for provider in ["local", "aws-nitro"] {
            let err = module_variables(
                provider,
                "e",
                Some(config.clone()),
                &ModuleOverrides::default(),
            )
            .expect_err("mismatch");
            assert!(err.rule.contains("ENCLAVE_ID"), "{err}");
        }
        let config = obj(json!({"enclaveId": "other"}));
        assert!(
            module_variables("aws-nitro", "e", Some(config), &ModuleOverrides::default()).is_err()
        );
    }

    #[test]
    fn absent_configuration_yields_no_variables() {
        let vars = module_variables("local", "e", None, &all_overrides()).expect("ok");
        assert!(vars.is_empty());
    }
}
