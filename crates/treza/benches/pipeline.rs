//! Pipeline benchmarks (run: `cargo bench -p treza --bench pipeline`).
//!
//! 1. Overhead: the in-process server with the runner replaced by an instant
//!    one (here only), N requests from POST to DEPLOYED: requests/s and
//!    per-request latency p50/p99 of treza's own work.
//! 2. One real deploy + destroy with the local provider and real Terraform:
//!    time inside the runner (Terraform) versus the rest (treza).
//!
//! Set `TREZA_BENCH_REQUESTS` (default 1000), `TREZA_BENCH_CLIENTS`
//! (default 16) and `TREZA_BENCH_SEQUENTIAL` (default 300, one client).
//! `TREZA_BENCH_SKIP_REAL=1` skips part 2.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use treza::server::{self, runner::InstantRunner, ServerConfig};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn post(url: &str, key: &str, body: &Value) -> Value {
    ureq::post(&format!("{url}/api/enclaves"))
        .set("Authorization", &format!("Bearer {key}"))
        .send_json(body.clone())
        .expect("POST")
        .into_json()
        .expect("json")
}

fn get(url: &str, key: &str, id: &str) -> Value {
    ureq::get(&format!("{url}/api/enclaves/{id}"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .expect("GET")
        .into_json()
        .expect("json")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn overhead(rt: &tokio::runtime::Runtime, label: &str, n: usize, clients: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    config.runner = Some(Arc::new(InstantRunner));
    config.max_concurrent_runs = 64;
    let handle = rt.block_on(server::start(config)).expect("server");
    let url = handle.url();
    let key = handle
        .store
        .create_api_key(
            "0xbench",
            &["enclaves:read", "enclaves:write", "logs:read"],
            "2026-01-01T00:00:00Z",
        )
        .expect("key");
    // The watcher reads through its own connections, as another process
    // would, so it does not queue behind the server's.
    let store = treza_store::Store::open(&server::database_path(
        &std::fs::canonicalize(dir.path()).expect("canonical"),
    ))
    .expect("watcher store");

    // A watcher on the change log timestamps each enclave's arrival at DEPLOYED.
    let deployed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let deployed = deployed.clone();
        let stop = stop.clone();
        let start_seq = store.latest_sequence().expect("seq");
        std::thread::spawn(move || {
            let mut after = start_seq;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch = store.changes_after(after, 1000).expect("changes");
                for c in &batch {
                    if let Some(new) = &c.new {
                        if new.status == treza_core::Status::Deployed {
                            deployed
                                .lock()
                                .expect("lock")
                                .insert(new.id.clone(), Instant::now());
                        }
                    }
                    after = c.sequence;
                }
                if batch.is_empty() {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        })
    };

    let body = json!({"name": "bench", "providerId": "local", "providerConfig": {"command": ["true"], "workloadType": "batch"}});
    let posted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let t0 = Instant::now();
    let per_client = n.div_ceil(clients);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (url, key, body, posted, deployed) = (
                url.clone(),
                key.clone(),
                body.clone(),
                posted.clone(),
                deployed.clone(),
            );
            std::thread::spawn(move || {
                for i in 0..per_client {
                    if c * per_client + i >= n {
                        break;
                    }
                    let start = Instant::now();
                    let v = post(&url, &key, &body);
                    let id = v["enclave"]["id"].as_str().expect("id").to_string();
                    posted.lock().expect("lock").insert(id.clone(), start);
                    // A single client waits for each request to settle.
                    while clients == 1 && !deployed.lock().expect("lock").contains_key(&id) {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while deployed.lock().expect("lock").len() < n {
        assert!(
            Instant::now() < deadline,
            "not all requests reached DEPLOYED"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = t0.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().expect("watcher");
    let posted = posted.lock().expect("lock");
    let deployed = deployed.lock().expect("lock");
    let mut lat: Vec<f64> = posted
        .iter()
        .map(|(id, s)| deployed[id].duration_since(*s).as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let rps = n as f64 / elapsed.as_secs_f64();
    println!("pipeline overhead, {label} (instant runner): {n} requests, {clients} clients");
    println!("  throughput      {rps:>10.1} requests/s (POST -> DEPLOYED)");
    println!("  latency p50     {:>10.2} ms", percentile(&lat, 0.50));
    println!("  latency p90     {:>10.2} ms", percentile(&lat, 0.90));
    println!("  latency p99     {:>10.2} ms", percentile(&lat, 0.99));
    println!("  latency max     {:>10.2} ms", percentile(&lat, 1.0));
    println!(
        "{}",
        json!({"bench": "pipeline_overhead", "load": label, "requests": n, "clients": clients, "requests_per_s": rps,
               "p50_ms": percentile(&lat, 0.50), "p99_ms": percentile(&lat, 0.99)})
    );
    rt.block_on(handle.shutdown());
}

fn real_deploy(rt: &tokio::runtime::Runtime) {
    // The child runner is this bench's own binary unless told otherwise: use the treza binary.
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_treza"));
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let mut config = ServerConfig::new(data.clone(), "127.0.0.1:0".parse().expect("addr"));
    config.runner = Some(Arc::new(server::runner::ChildProcessRunner::new(
        exe,
        server::default_providers_dir(),
        std::fs::canonicalize(&data).expect("canonical"),
        std::env::var_os("TREZA_TERRAFORM").map(Into::into),
    )));
    let handle = rt.block_on(server::start(config)).expect("server");
    let url = handle.url();
    let key = handle
        .store
        .create_api_key(
            "0xbench",
            &["enclaves:read", "enclaves:write", "logs:read"],
            "2026-01-01T00:00:00Z",
        )
        .expect("key");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let body = json!({"name": "bench-real", "providerId": "local", "providerConfig": {
        "command": ["python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
        "workloadType": "service", "exposePorts": [port], "healthCheckPath": "/"}});
    let wait = |id: &str, target: &str| loop {
        let v = get(&url, &key, id);
        if v["enclave"]["status"] == target && v["enclave"]["workflow"]["status"] != "RUNNING" {
            break;
        }
        assert_ne!(v["enclave"]["status"], "FAILED", "{v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let t0 = Instant::now();
    let id = post(&url, &key, &body)["enclave"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    wait(&id, "DEPLOYED");
    let deploy = t0.elapsed();
    let t1 = Instant::now();
    ureq::patch(&format!("{url}/api/enclaves/{id}"))
        .set("Authorization", &format!("Bearer {key}"))
        .send_json(json!({"action": "terminate"}))
        .expect("PATCH");
    wait(&id, "DESTROYED");
    let destroy = t1.elapsed();
    // Runner time: from each "runner task started" to its "finished" log line.
    let logs = handle.store.logs(&id, Some("ecs"), 10_000).expect("logs");
    let mut runner = Duration::ZERO;
    let mut started: Option<chrono::DateTime<chrono::FixedOffset>> = None;
    for l in logs {
        let ts = chrono::DateTime::parse_from_rfc3339(&l.timestamp).ok();
        if l.message.starts_with("runner task started") {
            started = ts;
        } else if l.message.starts_with("runner task finished") {
            if let (Some(a), Some(b)) = (started.take(), ts) {
                runner += (b - a).to_std().unwrap_or_default();
            }
        }
    }
    let total = deploy + destroy;
    let treza = total.saturating_sub(runner);
    println!("real deploy + destroy (local provider, real Terraform)");
    println!(
        "  deploy          {:>10.0} ms",
        deploy.as_secs_f64() * 1000.0
    );
    println!(
        "  destroy         {:>10.0} ms",
        destroy.as_secs_f64() * 1000.0
    );
    println!(
        "  in the runner   {:>10.0} ms (Terraform and the workload's start/stop)",
        runner.as_secs_f64() * 1000.0
    );
    println!(
        "  in treza        {:>10.0} ms ({:.1}% of the total)",
        treza.as_secs_f64() * 1000.0,
        100.0 * treza.as_secs_f64() / total.as_secs_f64()
    );
    println!(
        "{}",
        json!({"bench": "real_deploy_destroy", "deploy_ms": deploy.as_secs_f64()*1000.0, "destroy_ms": destroy.as_secs_f64()*1000.0,
               "runner_ms": runner.as_secs_f64()*1000.0, "treza_ms": treza.as_secs_f64()*1000.0})
    );
    rt.block_on(handle.shutdown());
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this
    // binary only proves it builds.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline benchmark: run it with `cargo bench -p treza --bench pipeline`");
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Throughput: many clients posting as fast as they can (latency here
    // includes queueing behind the other requests).
    let n = env_usize("TREZA_BENCH_REQUESTS", 1000);
    overhead(&rt, "saturated", n, env_usize("TREZA_BENCH_CLIENTS", 16));
    // treza's own per-request overhead: one request at a time.
    overhead(
        &rt,
        "one at a time",
        env_usize("TREZA_BENCH_SEQUENTIAL", 300),
        1,
    );
    if std::env::var_os("TREZA_BENCH_SKIP_REAL").is_none() {
        real_deploy(&rt);
    }
}
