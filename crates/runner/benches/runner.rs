//! Runner overhead: a deploy + destroy cycle of `providers/local` (a
//! `python3 -m http.server` service) through the `treza-runner` binary and
//! its environment front door, as the server runs it, against the same
//! module driven by bare terraform commands (the same init / plan -out /
//! apply plan / output -json, then init / destroy), alternating, in one run.
//!
//! Run with `scripts/bench-runner.sh` (or `cargo bench -p treza-runner`).
//! `BENCH_ITERATIONS` (default 7, at least 5) sets the cycles per side.
//! Without `--bench` (as under `cargo test --all-targets`) it only prints a hint.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const RUNNER: &str = env!("CARGO_BIN_EXE_treza-runner");
const SUPERVISOR: &str = env!("CARGO_BIN_EXE_treza-workload");

fn module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../providers/local")
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn configuration(id: &str, workload_dir: &Path, port: u16) -> serde_json::Value {
    json!({
        "enclave_id": id,
        "supervisor": SUPERVISOR,
        "workload_dir": workload_dir.to_string_lossy(),
        "workload": {
            "command": ["python3", "-m", "http.server", port.to_string(), "--bind", "127.0.0.1"],
            "workload_type": "service",
            "expose_ports": [port],
            "health_check_path": "/",
            "health_check_interval": 1,
            "startup_timeout_seconds": 60,
        },
    })
}

/// One action through the runner binary, as the server spawns it.
fn runner_action(
    terraform: &Path,
    id: &str,
    action: &str,
    config: &serde_json::Value,
    workspace: &Path,
) -> Result<(), String> {
    let mut child = Command::new(RUNNER)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("ENCLAVE_ID", id)
        .env("ACTION", action)
        .env("PROVIDER_ID", "local")
        .env("CONFIGURATION", config.to_string())
        .env("MODULE_DIR", module_dir())
        .env("WORKSPACE_DIR", workspace)
        .env("TREZA_TERRAFORM", terraform)
        .env("PHASE_TIMEOUT_SECONDS", "300")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start treza-runner: {e}"))?;
    // Read the JSON lines as the server does, as they come.
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .map_err(|e| format!("read runner output: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("wait runner: {e}"))?;
    if !status.success() {
        let tail: Vec<&str> = out.lines().rev().take(5).collect();
        return Err(format!("runner {action} failed ({status}): {tail:?}"));
    }
    Ok(())
}

/// The same module with bare terraform commands.
fn terraform(tf: &Path, dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tf)
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_CLI_CONFIG_FILE", dir.join(".terraformrc"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("start terraform: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "terraform {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn bare_cycle(tf: &Path, root: &Path, id: &str, port: u16) -> Result<Duration, String> {
    let ws = root.join("bare-ws");
    fs::create_dir_all(&ws).map_err(|e| e.to_string())?;
    let config = configuration(id, &root.join("bare-workload"), port);
    let started = Instant::now();
    for entry in fs::read_dir(module_dir()).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".tf") {
            fs::copy(entry.path(), ws.join(&name)).map_err(|e| e.to_string())?;
        }
    }
    fs::write(ws.join("terraform.tfvars.json"), config.to_string()).map_err(|e| e.to_string())?;
    fs::write(ws.join(".terraformrc"), "").map_err(|e| e.to_string())?;
    let deploy: [&[&str]; 4] = [
        &["init", "-input=false", "-no-color"],
        &["plan", "-input=false", "-no-color", "-out=tfplan"],
        &["apply", "-input=false", "-no-color", "tfplan"],
        &["output", "-json", "-no-color"],
    ];
    let destroy: [&[&str]; 2] = [
        &["init", "-input=false", "-no-color"],
        &["destroy", "-input=false", "-no-color", "-auto-approve"],
    ];
    for args in deploy.iter().chain(destroy.iter()) {
        terraform(tf, &ws, args)?;
    }
    Ok(started.elapsed())
}

fn runner_cycle(tf: &Path, root: &Path, id: &str, port: u16) -> Result<Duration, String> {
    let ws = root.join("runner-ws");
    let config = configuration(id, &root.join("runner-workload"), port);
    let started = Instant::now();
    runner_action(tf, id, "deploy", &config, &ws)?;
    runner_action(tf, id, "destroy", &config, &ws)?;
    Ok(started.elapsed())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    // Nearest rank.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(name: &str, samples: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let (median, p90) = (quantile(&ms, 0.5), quantile(&ms, 0.9));
    println!(
        "{name:<8} n={:<3} median {median:>8.0} ms   p90 {p90:>8.0} ms   min {:>8.0} ms   max {:>8.0} ms",
        ms.len(),
        ms[0],
        ms[ms.len() - 1]
    );
    (median, p90)
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("runner benchmark: run scripts/bench-runner.sh (cargo bench -p treza-runner)");
        return;
    }
    if let Err(e) = bench() {
        eprintln!("bench-runner: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Result<(), String> {
    let tf = treza_runner::find_terraform(None)?;
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(5);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "runner overhead: deploy+destroy of providers/local (python3 -m http.server), {iterations} cycles each, alternating"
    );
    println!("terraform {} | {cpus} CPUs | {}", tf.display(), cpu_model());
    let mut bare = Vec::new();
    let mut runner = Vec::new();
    // One untimed cycle of each warms the page cache and terraform.
    for i in 0..=iterations {
        let order: [bool; 2] = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for through_runner in order {
            let root = tempfile::tempdir().map_err(|e| e.to_string())?;
            let id = format!("bench_{i}");
            let port = free_port()?;
            let took = if through_runner {
                runner_cycle(&tf, root.path(), &id, port)?
            } else {
                bare_cycle(&tf, root.path(), &id, port)?
            };
            if i > 0 {
                if through_runner {
                    runner.push(took);
                } else {
                    bare.push(took);
                }
            }
        }
    }
    let (bare_median, bare_p90) = summary("bare", &bare);
    let (runner_median, runner_p90) = summary("runner", &runner);
    println!(
        "runner overhead: median {:+.1}%  p90 {:+.1}%  (runner/bare - 1; target <= 10%)",
        (runner_median / bare_median - 1.0) * 100.0,
        (runner_p90 / bare_p90 - 1.0) * 100.0
    );
    Ok(())
}
