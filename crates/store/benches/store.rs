//! Store benchmark: enclave write throughput and change delivery latency on a
//! file database. Run with `cargo bench -p treza-store`; `TREZA_BENCH_N` sets
//! the number of enclaves/changes per scenario (default 5000).
//!
//! Prints a table and one JSON line (prefixed `BENCH_JSON `) for scripts.

use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use treza_core::{Enclave, Status};
use treza_store::{Condition, Store};

fn enclave(i: usize) -> Enclave {
    let mut config = Map::new();
    config.insert("dockerImage".into(), json!("nginx:latest"));
    config.insert("cpuCount".into(), json!("2"));
    config.insert("memoryMiB".into(), json!("1024"));
    config.insert("instanceType".into(), json!("m6i.xlarge"));
    Enclave {
        id: format!("enc_1735689600000_{i:09}"),
        name: format!("bench {i}"),
        description: "benchmark enclave".into(),
        region: "us-east-1".into(),
        wallet_address: format!("0x{:040x}", i % 64),
        provider_id: "aws-nitro".into(),
        provider_config: config,
        status: Status::PendingDeploy,
        created_at: "2025-01-01T00:00:00.000Z".into(),
        updated_at: "2025-01-01T00:00:00.000Z".into(),
        error_message: None,
        error_type: None,
        instance_id: None,
        outputs: Map::new(),
        version: 0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Writes {
    enclaves_per_s: f64,
    changes_per_s: f64,
    txn_p50_us: f64,
    txn_p99_us: f64,
}

/// (a) insert + one status update per enclave, each with its change record.
fn bench_writes(n: usize) -> Writes {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("bench.db")).expect("open");
    let mut txn_us = Vec::with_capacity(2 * n);
    let start = Instant::now();
    for i in 0..n {
        let e = enclave(i);
        let t = Instant::now();
        store.insert_enclave(&e).expect("insert");
        txn_us.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        store
            .update_enclave(
                &e.id,
                &Condition::version(1).and_status_in(&[Status::PendingDeploy]),
                "2025-01-01T00:00:01.000Z",
                |r| {
                    r.status = Status::Deploying;
                    Ok::<(), String>(())
                },
            )
            .expect("update");
        txn_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(store.latest_sequence().expect("seq"), 2 * n as u64);
    txn_us.sort_by(f64::total_cmp);
    Writes {
        enclaves_per_s: n as f64 / secs,
        changes_per_s: (2 * n) as f64 / secs,
        txn_p50_us: percentile(&txn_us, 50.0),
        txn_p99_us: percentile(&txn_us, 99.0),
    }
}

struct Delivery {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    /// Changes read before their listener call (counted as zero latency).
    early: usize,
}

/// (b) commit -> consumer thread woken by the commit listener -> `changes_after`.
/// Latency runs from the listener call (right after COMMIT) to the moment the
/// consumer holds the decoded record. `gap` paces the writer; zero is a burst.
fn bench_delivery(n: usize, gap: Duration) -> Delivery {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("bench.db")).expect("open"));
    let epoch = Instant::now();
    let committed_ns: Arc<Vec<AtomicU64>> = Arc::new((0..=n).map(|_| AtomicU64::new(0)).collect());
    let (wake, woken) = mpsc::channel::<u64>();
    {
        let committed_ns = Arc::clone(&committed_ns);
        let wake = Mutex::new(wake);
        store.set_commit_listener(Box::new(move |seq| {
            if let Some(slot) = committed_ns.get(seq as usize) {
                slot.store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
            }
            let _ = wake.lock().map(|w| w.send(seq));
        }));
    }
    let consumer = {
        let store = Arc::clone(&store);
        let committed_ns = Arc::clone(&committed_ns);
        std::thread::spawn(move || {
            let mut latencies = Vec::with_capacity(n);
            let mut cursor = 0u64;
            let mut early = 0usize;
            while latencies.len() < n {
                // Coalesce wake-ups: one read serves every commit so far.
                if woken.recv_timeout(Duration::from_millis(100)).is_err() {
                    continue;
                }
                while woken.try_recv().is_ok() {}
                loop {
                    let batch = store.changes_after(cursor, 1024).expect("changes_after");
                    let now = epoch.elapsed().as_nanos() as u64;
                    if batch.is_empty() {
                        break;
                    }
                    for c in &batch {
                        let at = committed_ns[c.sequence as usize].load(Ordering::Acquire);
                        if at == 0 {
                            // Committed, but read (by an earlier wake-up) before its
                            // own listener call stamped it: delivered with no delay.
                            early += 1;
                            latencies.push(0.0);
                        } else {
                            latencies.push(now.saturating_sub(at) as f64 / 1e3);
                        }
                    }
                    cursor = batch[batch.len() - 1].sequence;
                }
            }
            (latencies, early)
        })
    };
    for i in 0..n {
        store.insert_enclave(&enclave(i)).expect("insert");
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
    let (mut latencies, early) = consumer.join().expect("consumer thread");
    latencies.sort_by(f64::total_cmp);
    Delivery {
        p50_us: percentile(&latencies, 50.0),
        p99_us: percentile(&latencies, 99.0),
        max_us: latencies.last().copied().unwrap_or(f64::NAN),
        early,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this
    // binary only proves it builds.
    if !std::env::args().any(|a| a == "--bench") {
        println!("store benchmark: run it with `cargo bench -p treza-store`");
        return;
    }
    let n: usize = std::env::var("TREZA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let w = bench_writes(n);
    let burst = bench_delivery(n, Duration::ZERO);
    let paced = bench_delivery(n, Duration::from_micros(200));

    println!("treza-store benchmark (file DB, WAL, synchronous=NORMAL), n = {n}");
    println!("{:<44} {:>12}", "metric", "value");
    println!(
        "{:<44} {:>12.0}",
        "enclave writes/s (insert + status update)", w.enclaves_per_s
    );
    println!("{:<44} {:>12.0}", "change records/s", w.changes_per_s);
    println!("{:<44} {:>12.1}", "write txn p50 (us)", w.txn_p50_us);
    println!("{:<44} {:>12.1}", "write txn p99 (us)", w.txn_p99_us);
    println!(
        "{:<44} {:>12.1}",
        "delivery p50, burst writer (us)", burst.p50_us
    );
    println!(
        "{:<44} {:>12.1}",
        "delivery p99, burst writer (us)", burst.p99_us
    );
    println!(
        "{:<44} {:>12.1}",
        "delivery max, burst writer (us)", burst.max_us
    );
    println!(
        "{:<44} {:>12}",
        "read before notified, burst writer", burst.early
    );
    println!(
        "{:<44} {:>12.1}",
        "delivery p50, paced writer 200us gap (us)", paced.p50_us
    );
    println!(
        "{:<44} {:>12.1}",
        "delivery p99, paced writer 200us gap (us)", paced.p99_us
    );
    println!(
        "{:<44} {:>12.1}",
        "delivery max, paced writer 200us gap (us)", paced.max_us
    );
    println!(
        "{:<44} {:>12}",
        "read before notified, paced writer", paced.early
    );

    let report: Value = json!({
        "bench": "treza-store",
        "n": n,
        "enclave_writes_per_s": w.enclaves_per_s.round(),
        "change_records_per_s": w.changes_per_s.round(),
        "write_txn_p50_us": (w.txn_p50_us * 10.0).round() / 10.0,
        "write_txn_p99_us": (w.txn_p99_us * 10.0).round() / 10.0,
        "delivery_burst_p50_us": (burst.p50_us * 10.0).round() / 10.0,
        "delivery_burst_p99_us": (burst.p99_us * 10.0).round() / 10.0,
        "delivery_paced_p50_us": (paced.p50_us * 10.0).round() / 10.0,
        "delivery_burst_max_us": burst.max_us.round(),
        "delivery_paced_p99_us": (paced.p99_us * 10.0).round() / 10.0,
        "delivery_paced_max_us": paced.max_us.round(),
    });
    println!("BENCH_JSON {report}");
}
