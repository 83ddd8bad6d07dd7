//! End-to-end: the real `treza` binary, started as a server on a free port,
//! driven over HTTP, deploying with real Terraform and real processes.

use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TREZA: &str = env!("CARGO_BIN_EXE_treza");

struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Leave no workload behind, whatever the test did.
        let enclaves = self.data.path().join("enclaves");
        for entry in std::fs::read_dir(enclaves).into_iter().flatten().flatten() {
            let _ = Command::new(TREZA)
                .args(["workload", "stop"])
                .env("TREZA_WORKLOAD_DIR", entry.path().join("workload"))
                .env("TREZA_WORKLOAD_SPEC", "{}")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn start_server(extra_env: &[(&str, &Path)]) -> Server {
    start_server_in(tempfile::tempdir().expect("tempdir"), extra_env)
}

fn start_server_in(data: tempfile::TempDir, extra_env: &[(&str, &Path)]) -> Server {
    let _ = std::fs::remove_file(data.path().join("server.json"));
    let mut cmd = Command::new(TREZA);
    cmd.args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("TREZA_LOG", "warn")
        .env("TREZA_HEALTH_INTERVAL_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start treza up");
    let info = data.path().join("server.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Some(url) = std::fs::read(&info)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["url"].as_str().map(str::to_string))
        {
            break url;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    Server { child, url, data }
}

impl Server {
    fn key(&self, wallet: &str) -> String {
        let out = Command::new(TREZA)
            .args([
                "keys",
                "create",
                "--wallet",
                wallet,
                "--no-save",
                "--output",
                "json",
                "--data-dir",
            ])
            .arg(self.data.path())
            .output()
            .expect("treza keys create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("keys json");
        v["key"].as_str().expect("key").to_string()
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = ureq::request(method, &format!("{}{path}", self.url));
        if let Some(k) = key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// Waits until the enclave settles in one of `statuses` with no workflow running.
    fn wait_for(&self, key: &str, id: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (code, v) = self.call("GET", &format!("/api/enclaves/{id}"), Some(key), None);
            assert_eq!(code, 200, "{v}");
            let e = v["enclave"].clone();
            let running = e["workflow"]["status"] == "RUNNING";
            if statuses.contains(&e["status"].as_str().unwrap_or("")) && !running {
                return e;
            }
            assert!(Instant::now() < deadline, "enclave {id} stuck: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_for_step(&self, key: &str, id: &str, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = self.call("GET", &format!("/api/enclaves/{id}"), Some(key), None);
            if v["enclave"]["workflow"]["currentStep"] == step {
                return;
            }
            assert!(Instant::now() < deadline, "never reached {step}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Terminates an enclave and waits until it is DESTROYED.
    fn terminate(&self, key: &str, id: &str) {
        let (code, v) = self.call(
            "PATCH",
            &format!("/api/enclaves/{id}"),
            Some(key),
            Some(json!({"action": "terminate"})),
        );
        assert_eq!(code, 200, "{v}");
        let e = self.wait_for(key, id, &["DESTROYED", "FAILED"]);
        assert_eq!(e["status"], "DESTROYED", "{e}");
    }

    /// POSTs an enclave request that must be accepted; returns its id.
    fn create(&self, key: &str, body: Value) -> String {
        let (code, v) = self.call("POST", "/api/enclaves", Some(key), Some(body));
        assert_eq!(code, 201, "{v}");
        v["enclave"]["id"].as_str().expect("id").to_string()
    }

    fn logs(&self, key: &str, id: &str) -> Value {
        let (code, v) = self.call(
            "GET",
            &format!("/api/enclaves/{id}/logs?limit=500"),
            Some(key),
            None,
        );
        assert_eq!(code, 200, "{v}");
        v
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

fn local_request(name: &str, command: Value, port: u16, extra: Value) -> Value {
    let mut config = json!({
        "command": command,
        "workloadType": "service",
        "exposePorts": [port],
        "healthCheckPath": "/",
    });
    if let (Some(c), Some(x)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            c.insert(k.clone(), v.clone());
        }
    }
    json!({"name": name, "description": "e2e", "region": "us-east-1", "providerId": "local", "providerConfig": config})
}

fn http_server(port: u16) -> Value {
    json!([
        "python3",
        "-m",
        "http.server",
        port.to_string(),
        "--bind",
        "127.0.0.1"
    ])
}

#[test]
fn deploy_serves_then_destroy_closes_the_port() {
    let s = start_server(&[]);
    let key = s.key("0xabc");
    let port = free_port();
    let (code, v) = s.call(
        "POST",
        "/api/enclaves",
        Some(&key),
        Some(local_request("demo", http_server(port), port, json!({}))),
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["enclave"]["status"], "PENDING_DEPLOY");
    let id = v["enclave"]["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("enc_"), "{id}");

    let e = s.wait_for(&key, &id, &["DEPLOYED", "FAILED"]);
    assert_eq!(e["status"], "DEPLOYED", "{e}");
    assert!(port_open(port), "DEPLOYED but nothing listens on {port}");
    assert!(
        e["instanceId"].as_str().is_some_and(|i| !i.is_empty()),
        "{e}"
    );

    let logs = s.logs(&key, &id);
    let ecs = logs["logs"]["ecs"].as_array().expect("ecs logs");
    assert!(
        ecs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .contains("Apply complete")),
        "{logs}"
    );
    let steps = logs["logs"]["stepfunctions"].to_string();
    for state in [
        "ValidateDeploymentRequest",
        "UpdateStatusToInProgress",
        "RunTerraformDeployment",
        "UpdateStatusToDeployed",
    ] {
        assert!(steps.contains(state), "missing {state} in {steps}");
    }

    let (code, v) = s.call(
        "PATCH",
        &format!("/api/enclaves/{id}"),
        Some(&key),
        Some(json!({"action": "terminate"})),
    );
    assert_eq!(code, 200, "{v}");
    let e = s.wait_for(&key, &id, &["DESTROYED", "FAILED"]);
    assert_eq!(e["status"], "DESTROYED", "{e}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while port_open(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!port_open(port), "port {port} still open after DESTROYED");

    let (code, _) = s.call("DELETE", &format!("/api/enclaves/{id}"), Some(&key), None);
    assert_eq!(code, 200);
    let (code, _) = s.call("GET", &format!("/api/enclaves/{id}"), Some(&key), None);
    assert_eq!(code, 404);
}

#[test]
fn invalid_requests_are_refused_and_never_reach_the_table() {
    let s = start_server(&[]);
    let key = s.key("0xabc");
    let (code, v) = s.call(
        "POST",
        "/api/enclaves",
        Some(&key),
        Some(json!({"name": "x", "providerId": "aws-nitro", "providerConfig": {"dockerImage": "nginx", "cpuCount": "3", "memoryMiB": "2048", "instanceType": "m6i.xlarge"}})),
    );
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["field"], "providerConfig.cpuCount", "{v}");
    assert!(v["rule"].is_string(), "{v}");
    let (code, v) = s.call(
        "POST",
        "/api/enclaves",
        Some(&key),
        Some(json!({"name": "", "providerId": "local", "providerConfig": {}})),
    );
    assert_eq!(code, 400, "{v}");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"name") && fields.contains(&"providerConfig.command"),
        "{v}"
    );
    let (code, v) = s.call("GET", "/api/enclaves", Some(&key), None);
    assert_eq!(code, 200);
    assert_eq!(
        v["enclaves"],
        json!([]),
        "an invalid request reached the table"
    );
}

#[test]
fn requests_need_a_key_and_wallets_are_isolated() {
    let s = start_server(&[]);
    let (code, v) = s.call("GET", "/api/enclaves", None, None);
    assert_eq!(code, 401, "{v}");
    let (code, _) = s.call(
        "GET",
        "/api/enclaves",
        Some("treza_live_00000000000000000000000000000000"),
        None,
    );
    assert_eq!(code, 401);

    let alice = s.key("0xa11ce");
    let bob = s.key("0xb0b");
    // A batch workload that exits 0 is enough: isolation is about the API.
    let req = json!({"name": "alice's", "providerId": "local", "providerConfig": {"command": ["true"], "workloadType": "batch"}});
    let id = s.create(&alice, req.clone());
    let (code, _) = s.call("GET", &format!("/api/enclaves/{id}"), Some(&bob), None);
    assert_eq!(code, 404);
    let (code, _) = s.call("GET", &format!("/api/enclaves/{id}/logs"), Some(&bob), None);
    assert_eq!(code, 404);
    let (code, _) = s.call(
        "PATCH",
        &format!("/api/enclaves/{id}"),
        Some(&bob),
        Some(json!({"action": "terminate"})),
    );
    assert_eq!(code, 404);
    let (code, _) = s.call("DELETE", &format!("/api/enclaves/{id}"), Some(&bob), None);
    assert_eq!(code, 404);
    let (_, v) = s.call("GET", "/api/enclaves", Some(&bob), None);
    assert_eq!(v["enclaves"], json!([]));
    let (code, _) = s.call("GET", "/api/enclaves?wallet=0xa11ce", Some(&bob), None);
    assert_eq!(code, 403);
    let mut other = req;
    other["walletAddress"] = json!("0xa11ce");
    let (code, _) = s.call("POST", "/api/enclaves", Some(&bob), Some(other));
    assert_eq!(code, 403);
    let (_, v) = s.call("GET", "/api/enclaves", Some(&alice), None);
    assert_eq!(v["enclaves"].as_array().map(Vec::len), Some(1));
    s.wait_for(&alice, &id, &["DEPLOYED", "FAILED"]);
}

#[test]
fn a_record_written_straight_into_the_table_fails_validation_in_the_workflow() {
    let s = start_server(&[]);
    let key = s.key("0xweb");
    // The web app writes into the table without the API's validation.
    let store = treza_store::Store::open(&s.data.path().join("treza.db")).expect("open store");
    let now = "2026-01-01T00:00:00.000Z".to_string();
    let record: treza_core::Enclave = serde_json::from_value(json!({
        "id": "enc_1700000000000_webapp001", "name": "from the app", "description": "",
        "region": "us-east-1", "walletAddress": "0xweb", "providerId": "aws-nitro",
        "providerConfig": {"dockerImage": "", "cpuCount": "3", "memoryMiB": "99999", "instanceType": "t2.micro"},
        "status": "PENDING_DEPLOY", "createdAt": now, "updatedAt": now
    }))
    .expect("record");
    store.insert_enclave(&record).expect("insert");
    let e = s.wait_for(&key, "enc_1700000000000_webapp001", &["FAILED", "DEPLOYED"]);
    assert_eq!(e["status"], "FAILED", "{e}");
    assert_eq!(e["errorType"], "ValidationFailed", "{e}");
    let msg = e["errorMessage"].as_str().unwrap_or("");
    assert!(
        msg.contains("cpuCount") && msg.contains("instanceType"),
        "{msg}"
    );
    assert!(!msg.contains("is valid"), "{msg}");
}

#[test]
fn a_workload_that_fails_its_health_check_ends_failed_and_leaves_nothing_running() {
    let s = start_server(&[]);
    let key = s.key("0xabc");
    let port = free_port();
    // Listens on a different port than it claims, then the check can never pass;
    // plus one that exits at once.
    let cases = [
        (
            json!(["python3", "-c", "import sys; sys.exit(3)"]),
            "exited",
        ),
        (
            json!(["python3", "-c", "import time; time.sleep(600)"]),
            "health check",
        ),
    ];
    for (command, reason) in cases {
        let req = local_request("sick", command, port, json!({"startupTimeoutSeconds": 3}));
        let (code, v) = s.call("POST", "/api/enclaves", Some(&key), Some(req));
        assert_eq!(code, 201, "{v}");
        let id = v["enclave"]["id"].as_str().expect("id").to_string();
        let e = s.wait_for(&key, &id, &["FAILED", "DEPLOYED"]);
        assert_eq!(e["status"], "FAILED", "{e}");
        assert_eq!(e["errorType"], "WorkloadFailed", "{e}");
        let msg = e["errorMessage"].as_str().unwrap_or("");
        assert!(msg.contains(reason), "expected '{reason}' in '{msg}'");
        let pidfile = s
            .data
            .path()
            .join("enclaves")
            .join(&id)
            .join("workload/workload.pid");
        assert!(
            !pidfile.exists(),
            "a pid file remains for a failed workload"
        );
    }
    let out = Command::new("pgrep")
        .args(["-f", "time.sleep(600)"])
        .output()
        .expect("pgrep");
    assert!(
        out.stdout.is_empty(),
        "a failed workload is still running: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_terraform_failure_ends_failed_with_the_first_error_line() {
    let broken = tempfile::tempdir().expect("tempdir");
    let module = broken.path().join("local");
    std::fs::create_dir_all(&module).expect("mkdir");
    std::fs::write(
        module.join("main.tf"),
        "variable \"enclave_id\" {}\nvariable \"workload\" {}\nvariable \"workload_dir\" {}\nvariable \"supervisor\" {}\n\
         resource \"terraform_data\" \"boom\" {\n  provisioner \"local-exec\" {\n    command = \"exit 7\"\n  }\n}\n",
    )
    .expect("write module");
    let s = start_server(&[("TREZA_PROVIDERS_DIR", broken.path())]);
    let key = s.key("0xabc");
    let req = json!({"name": "tf", "providerId": "local", "providerConfig": {"command": ["true"], "workloadType": "batch"}});
    let id = s.create(&key, req);
    let e = s.wait_for(&key, &id, &["FAILED", "DEPLOYED"]);
    assert_eq!(e["status"], "FAILED", "{e}");
    assert_eq!(e["errorType"], "TerraformError", "{e}");
    let msg = e["errorMessage"].as_str().unwrap_or("");
    assert!(msg.contains("local-exec provisioner error"), "{msg}");
    let errors = s.logs(&key, &id)["logs"]["errors"].to_string();
    assert!(errors.contains("runner failed"), "{errors}");
}

#[test]
fn hostile_values_arrive_literally_and_execute_nothing() {
    let s = start_server(&[]);
    let key = s.key("0xabc");
    let marker_dir = tempfile::tempdir().expect("tempdir");
    let marker = marker_dir.path().join("pwned");
    let m = marker.display().to_string();
    let hostile = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("'; touch {m}; '"),
        format!("\"; touch {m}; \""),
        "${file(\"/etc/passwd\")}".to_string(),
        "%{ if true }x%{ endif }".to_string(),
        "line1\nline2".to_string(),
    ];
    let out = marker_dir.path().join("seen.json");
    let script = format!(
        "import json,os,sys; json.dump({{k: v for k, v in os.environ.items() if k.startswith('H')}}, open({:?}, 'w'))",
        out.display().to_string()
    );
    let mut env = serde_json::Map::new();
    for (i, h) in hostile.iter().enumerate() {
        env.insert(format!("H{i}"), json!(h));
    }
    let req = json!({
        "name": format!("$(touch {m}) ${{file(\"/etc/passwd\")}}"),
        "description": format!("`touch {m}` %{{ if true }}x%{{ endif }}"),
        "providerId": "local",
        "providerConfig": {"command": ["python3", "-c", script], "workloadType": "batch", "environmentVariables": env},
    });
    let id = s.create(&key, req.clone());
    let e = s.wait_for(&key, &id, &["DEPLOYED", "FAILED"]);
    assert_eq!(e["status"], "DEPLOYED", "{e}");
    assert_eq!(e["name"], req["name"]);
    assert_eq!(e["description"], req["description"]);
    let seen: Value = serde_json::from_slice(&std::fs::read(&out).expect("workload wrote its env"))
        .expect("json");
    for (i, h) in hostile.iter().enumerate() {
        assert_eq!(seen[format!("H{i}")], json!(h), "H{i} changed on the way");
    }
    assert!(!marker.exists(), "a hostile value executed");
    // Secret values never reach the logs.
    let logs = s.logs(&key, &id)["logs"].to_string();
    for (i, h) in hostile.iter().enumerate() {
        let encoded = serde_json::to_string(h).expect("json");
        assert!(
            !logs.contains(&encoded[1..encoded.len() - 1]),
            "H{i} leaked into the logs: {logs}"
        );
    }
}

#[test]
fn cli_create_wait_list_logs_destroy() {
    let s = start_server(&[]);
    let data = s.data.path().to_path_buf();
    let treza = |args: &[&str]| -> (bool, String, String) {
        let out = Command::new(TREZA)
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("run treza");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, key, err) = treza(&["keys", "create", "--wallet", "0xcli"]);
    assert!(ok, "{err}");
    assert!(
        key.trim().starts_with("treza_live_") && key.trim().len() == 43,
        "{key}"
    );
    let port = free_port().to_string();
    let cmd = format!("python3 -m http.server {port} --bind 127.0.0.1");
    let (ok, out, err) = treza(&[
        "enclave",
        "create",
        "--name",
        "demo",
        "--provider",
        "local",
        "--command",
        &cmd,
        "--workload",
        "service",
        "--port",
        &port,
        "--health-path",
        "/",
        "--wait",
        "--output",
        "json",
    ]);
    assert!(ok, "{out}\n{err}");
    let e: Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(e["status"], "DEPLOYED");
    let id = e["id"].as_str().expect("id").to_string();
    let (ok, out, _) = treza(&["enclave", "list"]);
    assert!(ok && out.contains(&id) && out.contains("DEPLOYED"), "{out}");
    let (ok, out, _) = treza(&["enclave", "logs", &id]);
    assert!(ok && out.contains("== ecs =="), "{out}");
    let (ok, out, err) = treza(&["enclave", "destroy", &id, "--wait"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("DESTROYED"), "{out}");
    assert!(
        err.contains("DESTROYING") || err.contains("PENDING_DESTROY"),
        "no progress shown: {err}"
    );
}

#[test]
fn a_server_killed_mid_deploy_resumes_and_the_enclave_settles() {
    let s = start_server(&[]);
    let key = s.key("0xcrash");
    let port = free_port();
    // A workload slow to become healthy keeps the runner busy when the server dies.
    let script = format!(
        "import http.server, time; time.sleep(3); http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port={port}, bind='127.0.0.1')"
    );
    let req = local_request("crash", json!(["python3", "-c", script]), port, json!({}));
    let id = s.create(&key, req);
    s.wait_for_step(&key, &id, "RunTerraformDeployment");

    // Crash: no shutdown path runs.
    let mut s = s;
    let _ = s.child.kill();
    let _ = s.child.wait();
    let data = std::mem::replace(&mut s.data, tempfile::tempdir().expect("tempdir"));
    drop(s);

    let s = start_server_in(data, &[]);
    let e = s.wait_for(&key, &id, &["DEPLOYED", "FAILED"]);
    assert_eq!(e["status"], "DEPLOYED", "{e}");
    assert!(
        port_open(port),
        "resumed deploy reports DEPLOYED but nothing listens"
    );
    let (code, _) = s.call(
        "PATCH",
        &format!("/api/enclaves/{id}"),
        Some(&key),
        Some(json!({"action": "terminate"})),
    );
    assert_eq!(code, 200);
    let e = s.wait_for(&key, &id, &["DESTROYED", "FAILED"]);
    assert_eq!(e["status"], "DESTROYED", "{e}");
}

#[test]
fn pause_stops_the_workload_and_resume_brings_it_back_healthy() {
    let s = start_server(&[]);
    let key = s.key("0xpause");
    let port = free_port();
    let id = s.create(&key, local_request("p", http_server(port), port, json!({})));
    assert_eq!(
        s.wait_for(&key, &id, &["DEPLOYED", "FAILED"])["status"],
        "DEPLOYED"
    );
    let path = format!("/api/enclaves/{id}");

    let (code, v) = s.call(
        "PATCH",
        &path,
        Some(&key),
        Some(json!({"action": "resume"})),
    );
    assert_eq!(code, 409, "resume of a DEPLOYED enclave: {v}");
    assert_eq!(v["field"], "status");

    let (code, v) = s.call("PATCH", &path, Some(&key), Some(json!({"action": "pause"})));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["enclave"]["status"], "PAUSING");
    assert_eq!(
        s.wait_for(&key, &id, &["PAUSED", "FAILED"])["status"],
        "PAUSED"
    );
    assert!(!port_open(port), "PAUSED but the workload still answers");

    let (code, v) = s.call(
        "PATCH",
        &path,
        Some(&key),
        Some(json!({"action": "resume"})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        s.wait_for(&key, &id, &["DEPLOYED", "FAILED"])["status"],
        "DEPLOYED"
    );
    assert!(port_open(port), "resumed to DEPLOYED but nothing listens");

    let (code, _) = s.call(
        "PATCH",
        &path,
        Some(&key),
        Some(json!({"action": "terminate"})),
    );
    assert_eq!(code, 200);
    assert_eq!(
        s.wait_for(&key, &id, &["DESTROYED", "FAILED"])["status"],
        "DESTROYED"
    );
    assert!(!port_open(port));
}

#[test]
fn one_server_per_data_directory_and_queries_fail_as_json() {
    let s = start_server(&[]);
    let out = Command::new(TREZA)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(s.data.path())
        .output()
        .expect("second treza up");
    assert!(
        !out.status.success(),
        "a second server started on the same data directory"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another treza server"), "{err}");

    let key = s.key("0xq");
    let (code, v) = s.call("GET", "/api/enclaves/nope/logs?limit=abc", Some(&key), None);
    // The enclave does not exist for this key either way, but a bad query must not be plain text.
    assert!(code == 400 || code == 404, "{code} {v}");
    assert!(v.is_object(), "error body is not JSON: {v}");
}

#[test]
fn a_crashed_workload_is_reported_on_its_deployed_record() {
    let s = start_server(&[]);
    let key = s.key("0xcrashy");
    let port = free_port();
    let id = s.create(&key, local_request("c", http_server(port), port, json!({})));
    assert_eq!(
        s.wait_for(&key, &id, &["DEPLOYED", "FAILED"])["status"],
        "DEPLOYED"
    );
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &format!("http.server {port}")])
        .status()
        .expect("pkill");
    assert!(killed.success(), "no workload process to kill");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = s.call("GET", &format!("/api/enclaves/{id}"), Some(&key), None);
        if v["enclave"]["errorType"] == "WorkloadCrashed" {
            assert_eq!(v["enclave"]["status"], "DEPLOYED");
            assert!(
                v["enclave"]["errorMessage"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "crash never reported: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let errors = s.logs(&key, &id)["logs"]["errors"].to_string();
    assert!(errors.contains("WorkloadCrashed"), "{errors}");
    // Terminating a crashed workload still ends DESTROYED.
    s.terminate(&key, &id);
}

#[test]
fn a_reused_id_does_not_sit_pending_forever() {
    let s = start_server(&[]);
    let key = s.key("0xreuse");
    let body = json!({"name": "r", "providerId": "local", "providerConfig": {"command": ["python3", "-c", "import sys; sys.exit(1)"], "workloadType": "batch"}});
    let id = s.create(&key, body);
    let first = s.wait_for(&key, &id, &["FAILED", "DEPLOYED"]);
    assert_eq!(first["status"], "FAILED", "{first}");
    s.terminate(&key, &id);
    let (code, v) = s.call("DELETE", &format!("/api/enclaves/{id}"), Some(&key), None);
    assert_eq!(code, 200, "{v}");
    // The web app writes a record with the same id again, straight into the table.
    let store = treza_store::Store::open(&s.data.path().join("treza.db")).expect("open store");
    let mut record: treza_core::Enclave = serde_json::from_value(first).expect("record");
    record.status = treza_core::Status::PendingDeploy;
    record.error_type = None;
    record.error_message = None;
    store.insert_enclave(&record).expect("insert");
    let e = s.wait_for(&key, &id, &["FAILED", "DEPLOYED"]);
    assert_eq!(e["status"], "FAILED", "{e}");
    assert_eq!(e["errorType"], "Conflict", "{e}");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("already ran"),
        "{e}"
    );
}
