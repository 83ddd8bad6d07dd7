//! Rendering: live progress for `--wait`/`watch`, tables and logs.

use super::client::{path_segment, Client};
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Polls the enclave until its status is one of `until`; shows status,
/// workflow step and elapsed time as they change. Exit code 1 if FAILED.
pub fn watch(
    c: &Client,
    id: &str,
    json: bool,
    timeout_seconds: u64,
    until: &[&str],
) -> anyhow::Result<u8> {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal() && !json;
    let mut last = String::new();
    let path = format!("/api/enclaves/{}", path_segment(id));
    loop {
        let v = c.get(&path)?;
        let e = &v["enclave"];
        let status = s(e, "status");
        let step = e
            .pointer("/workflow/currentStep")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let line = format!("{status:<16} step: {step}");
        let elapsed = start.elapsed().as_secs_f64();
        if !json {
            let mut err = std::io::stderr();
            if tty {
                let _ = write!(err, "\r\x1b[2K[{elapsed:>6.1}s] {id}  {line}");
            } else if line != last {
                let _ = writeln!(err, "[{elapsed:>6.1}s] {id}  {line}");
            }
            let _ = err.flush();
        }
        last = line;
        // Settled only once the workflow, if any, is no longer running.
        let wf_running = e.pointer("/workflow/status").and_then(Value::as_str) == Some("RUNNING");
        if until.contains(&status) && !wf_running {
            if tty {
                eprintln!();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(e)?);
            } else {
                println!("{id}  {status}  ({elapsed:.1}s)");
                if status == "FAILED" {
                    println!(
                        "  errorType: {}\n  errorMessage: {}",
                        s(e, "errorType"),
                        s(e, "errorMessage")
                    );
                }
            }
            return Ok(if status == "FAILED" { 1 } else { 0 });
        }
        if start.elapsed() > Duration::from_secs(timeout_seconds) {
            anyhow::bail!("gave up after {timeout_seconds}s: {id} is still {status}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn table(enclaves: &[Value]) -> String {
    let mut out = format!(
        "{:<32} {:<20} {:<16} {:<10} {}\n",
        "ID", "NAME", "STATUS", "PROVIDER", "UPDATED"
    );
    for e in enclaves {
        let name: String = s(e, "name")
            .chars()
            .filter(|c| !c.is_control())
            .take(20)
            .collect();
        out.push_str(&format!(
            "{:<32} {:<20} {:<16} {:<10} {}\n",
            s(e, "id"),
            name,
            s(e, "status"),
            s(e, "providerId"),
            s(e, "updatedAt")
        ));
    }
    out
}

pub fn describe(e: &Value) -> String {
    let mut out = String::new();
    for k in [
        "id",
        "name",
        "description",
        "status",
        "providerId",
        "region",
        "walletAddress",
        "instanceId",
        "errorType",
        "errorMessage",
        "createdAt",
        "updatedAt",
    ] {
        if let Some(v) = e.get(k).filter(|v| !v.is_null()) {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            out.push_str(&format!("{k:<14} {text}\n"));
        }
    }
    if let Some(w) = e.get("workflow") {
        out.push_str(&format!(
            "{:<14} {} ({}, step {})\n",
            "workflow",
            s(w, "execution"),
            s(w, "status"),
            s(w, "currentStep")
        ));
    }
    if let Some(o) = e.get("outputs").and_then(Value::as_object) {
        for (k, v) in o {
            out.push_str(&format!("{:<14} {v}\n", format!("output.{k}")));
        }
    }
    out
}

pub fn logs(v: &Value) -> String {
    let mut out = String::new();
    if let Some(groups) = v.get("logs").and_then(Value::as_object) {
        for (source, entries) in groups {
            let entries = entries.as_array().map(Vec::as_slice).unwrap_or(&[]);
            if entries.is_empty() {
                continue;
            }
            out.push_str(&format!("== {source} ==\n"));
            for e in entries {
                let ts = s(e, "timestamp");
                out.push_str(&format!("{ts:<24} {}\n", s(e, "message")));
            }
        }
    }
    out
}
