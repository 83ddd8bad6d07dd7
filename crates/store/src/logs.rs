//! Log lines per enclave: the runner's Terraform output, workflow steps,
//! workload output and errors. Append-only; read newest-`limit`, oldest first.

use crate::error::StoreError;
use crate::store::Store;
use rusqlite::{params, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub timestamp: String,
    /// "ecs", "stepfunctions", "lambda", "application" or "errors" (the app's log types).
    pub source: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Value>,
}

impl Store {
    /// Appends `entries` in order, in one transaction. Callers redact secrets
    /// before this point: the store keeps what it is given.
    pub fn append_logs(&self, enclave_id: &str, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.write_conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_logs(&tx, enclave_id, entries)?;
        tx.commit()?;
        Ok(())
    }

    /// The most recent `limit` entries (of one `source`, if given), returned
    /// oldest first. Order is append order, not timestamp order.
    pub fn logs(
        &self,
        enclave_id: &str,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, timestamp, source, message, fields FROM logs
             WHERE enclave_id = ?1 AND (?2 IS NULL OR source = ?2)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![enclave_id, source, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, timestamp, source, message, fields) = row?;
            let fields = fields
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| {
                    StoreError::Corrupt(format!("log entry {id}: fields are not JSON: {e}"))
                })?;
            out.push(LogEntry {
                timestamp,
                source,
                message,
                fields,
            });
        }
        out.reverse();
        Ok(out)
    }
}

/// Inserts log entries inside the caller's transaction.
pub(crate) fn insert_logs(
    tx: &rusqlite::Transaction<'_>,
    enclave_id: &str,
    entries: &[LogEntry],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO logs (enclave_id, timestamp, source, message, fields)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in entries {
        let fields = e
            .fields
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|err| {
                StoreError::Corrupt(format!(
                    "log entry of enclave {enclave_id}: cannot serialize fields: {err}"
                ))
            })?;
        stmt.execute(params![
            enclave_id,
            e.timestamp,
            e.source,
            e.message,
            fields
        ])?;
    }
    Ok(())
}
