#![allow(dead_code)] // each test binary uses a different part

use serde_json::{json, Map, Value};
use treza_core::{Enclave, Status};

pub fn enclave(id: &str, wallet: &str, created_at: &str) -> Enclave {
    let config: Map<String, Value> = match json!({
        "dockerImage": "nginx:latest",
        "cpuCount": "2",
        "memoryMiB": "1024",
        "instanceType": "m6i.xlarge"
    }) {
        Value::Object(m) => m,
        _ => unreachable!("literal is an object"),
    };
    Enclave {
        id: id.to_string(),
        name: format!("name of {id}"),
        description: String::new(),
        region: "us-east-1".to_string(),
        wallet_address: wallet.to_string(),
        provider_id: "aws-nitro".to_string(),
        provider_config: config,
        status: Status::PendingDeploy,
        created_at: created_at.to_string(),
        updated_at: created_at.to_string(),
        error_message: None,
        error_type: None,
        instance_id: None,
        outputs: Map::new(),
        version: 0,
    }
}

pub const T0: &str = "2025-01-01T00:00:00.000Z";
pub const T1: &str = "2025-01-01T00:00:01.000Z";
pub const T2: &str = "2025-01-01T00:00:02.000Z";

/// A closure for `update_enclave` that only sets the status.
pub fn set_status(s: Status) -> impl FnOnce(&mut Enclave) -> Result<(), String> {
    move |e| {
        e.status = s;
        Ok(())
    }
}
