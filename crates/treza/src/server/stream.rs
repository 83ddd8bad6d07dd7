//! The stream processor: reads the change feed from its checkpoint, routes
//! each change, and starts workflows. Plays the role of the Lambda on the
//! DynamoDB stream. Delivery is at least once; starts are idempotent.

use super::engine::Engine;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use treza_store::{Condition, Store};

pub const CONSUMER: &str = "workflow-router";

/// Handles every change after the checkpoint; returns how many it read.
pub fn process_batch(store: &Store, engine: &Arc<Engine>) -> anyhow::Result<usize> {
    let after = store.checkpoint(CONSUMER)?;
    let batch = store.changes_after(after, 256)?;
    for change in &batch {
        if let Some(start) = treza_core::route(change) {
            let Some(new) = &change.new else { continue };
            let input = json!({
                "enclaveId": new.id,
                "walletAddress": new.wallet_address,
                "action": start.workflow.action(),
                "version": new.version,
            });
            if let Err(e) = engine.start(&start, input) {
                // A name taken by different input can never start: skip it
                // rather than block the feed behind it.
                match e.downcast_ref::<treza_store::StoreError>() {
                    Some(treza_store::StoreError::ExecutionAlreadyExists { .. }) => {
                        tracing::warn!(execution = %start.execution_name, error = %e, "change skipped");
                        let cond = Condition::status_in(&[new.status]).and_version(new.version);
                        let msg = format!(
                            "execution {} already exists with different input; the request was not started",
                            start.execution_name
                        );
                        let _ =
                            store.update_enclave(&new.id, &cond, &crate::clock::now_iso(), |r| {
                                r.status = treza_core::Status::Failed;
                                r.error_type = Some("Conflict".into());
                                r.error_message = Some(msg.clone());
                                Ok::<(), std::convert::Infallible>(())
                            });
                    }
                    _ => return Err(e),
                }
            }
        }
    }
    if let Some(last) = batch.last() {
        store.set_checkpoint(CONSUMER, last.sequence)?;
    }
    Ok(batch.len())
}

/// Runs until the task is dropped. Woken by commits in this process, and
/// polls for writes made by other processes (the web app, `treza keys`).
pub async fn run(store: Arc<Store>, engine: Arc<Engine>, wake: Arc<Notify>) {
    loop {
        match process_batch(&store, &engine) {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "stream processor"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
