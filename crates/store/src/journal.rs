//! The execution journal: one row per workflow execution (its latest engine
//! snapshot) plus its append-only history events. The JSON is opaque here;
//! the ASL engine owns its meaning.

use crate::error::StoreError;
use crate::store::Store;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Statuses an execution row may hold (the Step Functions spellings).
pub const EXECUTION_STATUSES: [&str; 5] =
    ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

/// A request to start an execution. It starts in status RUNNING.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewExecution {
    pub name: String,
    /// Which definition it runs, e.g. "deployment" or "cleanup".
    pub state_machine: String,
    pub enclave_id: Option<String>,
    pub input: Value,
    /// The engine's initial snapshot.
    pub snapshot: Value,
    pub started_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRow {
    pub name: String,
    pub state_machine: String,
    pub enclave_id: Option<String>,
    pub input: Value,
    pub snapshot: Value,
    /// One of [`EXECUTION_STATUSES`].
    pub status: String,
    pub current_step: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

/// What [`Store::create_execution`] did.
// Returned once per execution start; boxing the row would only cost callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created,
    /// An execution with this name, state machine and input already exists
    /// (whatever its status); nothing was written. Unlike Step Functions, a
    /// finished execution also counts, so a redelivered change is a no-op.
    Existing(ExecutionRow),
}

const ROW_COLUMNS: &str =
    "name, state_machine, enclave_id, input, snapshot, status, current_step, started_at, updated_at";

impl Store {
    /// Starts journaling an execution, idempotently by name: the same name
    /// with the same state machine and input yields `Existing`; with anything
    /// else it fails with `ExecutionAlreadyExists`.
    pub fn create_execution(&self, x: &NewExecution) -> Result<CreateOutcome, StoreError> {
        let input = json_text(&x.input, &x.name, "input")?;
        let snapshot = json_text(&x.snapshot, &x.name, "snapshot")?;
        let mut conn = self.write_conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = load_row(&tx, &x.name)? {
            // Compared as JSON values, so key order and spacing do not matter.
            return if existing.state_machine == x.state_machine && existing.input == x.input {
                Ok(CreateOutcome::Existing(existing))
            } else {
                Err(StoreError::ExecutionAlreadyExists {
                    name: x.name.clone(),
                })
            };
        }
        tx.prepare_cached(
            "INSERT INTO executions
             (name, state_machine, enclave_id, input, snapshot, status, current_step, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'RUNNING', NULL, ?6, ?6)",
        )?
        .execute(params![
            x.name,
            x.state_machine,
            x.enclave_id,
            input,
            snapshot,
            x.started_at
        ])?;
        tx.commit()?;
        Ok(CreateOutcome::Created)
    }

    /// In one transaction: replaces the snapshot, appends `events` (numbered
    /// after the ones already there), sets status and current step. The row's
    /// `updated_at` is the database clock (UTC, ISO-8601, milliseconds).
    pub fn record_progress(
        &self,
        name: &str,
        snapshot: &Value,
        events: &[Value],
        status: &str,
        current_step: Option<&str>,
    ) -> Result<(), StoreError> {
        self.record_progress_with_logs(name, snapshot, events, status, current_step, "", &[])
    }

    /// [`Store::record_progress`] plus `logs` appended to `enclave_id`'s
    /// log, all in the same transaction (one commit per workflow step).
    #[allow(clippy::too_many_arguments)]
    pub fn record_progress_with_logs(
        &self,
        name: &str,
        snapshot: &Value,
        events: &[Value],
        status: &str,
        current_step: Option<&str>,
        enclave_id: &str,
        logs: &[crate::logs::LogEntry],
    ) -> Result<(), StoreError> {
        if !EXECUTION_STATUSES.contains(&status) {
            return Err(StoreError::InvalidExecutionStatus {
                status: status.to_string(),
            });
        }
        let snapshot = json_text(snapshot, name, "snapshot")?;
        let mut texts = Vec::with_capacity(events.len());
        for e in events {
            texts.push(json_text(e, name, "event")?);
        }
        let mut conn = self.write_conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx
            .prepare_cached(
                "UPDATE executions
                 SET snapshot = ?2, status = ?3, current_step = ?4,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE name = ?1",
            )?
            .execute(params![name, snapshot, status, current_step])?;
        if updated == 0 {
            return Err(StoreError::ExecutionNotFound {
                name: name.to_string(),
            });
        }
        let mut next: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM execution_events WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO execution_events (name, seq, event) VALUES (?1, ?2, ?3)",
            )?;
            for text in &texts {
                next += 1;
                insert.execute(params![name, next, text])?;
            }
        }
        if !logs.is_empty() {
            crate::logs::insert_logs(&tx, enclave_id, logs)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_execution(&self, name: &str) -> Result<Option<ExecutionRow>, StoreError> {
        let conn = self.read_conn();
        load_row(&conn, name)
    }

    /// Every execution of one enclave, oldest first.
    pub fn executions_for_enclave(
        &self,
        enclave_id: &str,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let conn = self.read_conn();
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM executions WHERE enclave_id = ?1 ORDER BY started_at, name"
        );
        query_rows(&conn, &sql, enclave_id)
    }

    /// Executions still RUNNING, oldest first: what to resume after a restart.
    pub fn unfinished_executions(&self) -> Result<Vec<ExecutionRow>, StoreError> {
        let conn = self.read_conn();
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM executions WHERE status = ?1 ORDER BY started_at, name"
        );
        query_rows(&conn, &sql, "RUNNING")
    }

    /// The execution's history events in the order they were appended.
    pub fn execution_events(&self, name: &str) -> Result<Vec<Value>, StoreError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, event FROM execution_events WHERE name = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([name], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, text) = row?;
            out.push(serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("execution {name}: event {seq} is not JSON: {e}"))
            })?);
        }
        Ok(out)
    }
}

fn json_text(v: &Value, name: &str, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::Corrupt(format!("execution {name}: cannot serialize {what}: {e}")))
}

fn load_row(conn: &Connection, name: &str) -> Result<Option<ExecutionRow>, StoreError> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM executions WHERE name = ?1");
    let raw = conn
        .prepare_cached(&sql)?
        .query_row([name], RawRow::read)
        .optional()?;
    raw.map(RawRow::parse).transpose()
}

fn query_rows(conn: &Connection, sql: &str, arg: &str) -> Result<Vec<ExecutionRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([arg], RawRow::read)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.parse()?);
    }
    Ok(out)
}

/// A row as SQLite returns it, before its JSON columns are parsed.
struct RawRow {
    name: String,
    state_machine: String,
    enclave_id: Option<String>,
    input: String,
    snapshot: String,
    status: String,
    current_step: Option<String>,
    started_at: String,
    updated_at: String,
}

impl RawRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<RawRow> {
        Ok(RawRow {
            name: r.get(0)?,
            state_machine: r.get(1)?,
            enclave_id: r.get(2)?,
            input: r.get(3)?,
            snapshot: r.get(4)?,
            status: r.get(5)?,
            current_step: r.get(6)?,
            started_at: r.get(7)?,
            updated_at: r.get(8)?,
        })
    }

    fn parse(self) -> Result<ExecutionRow, StoreError> {
        let json = |text: &str, what: &str| -> Result<Value, StoreError> {
            serde_json::from_str(text).map_err(|e| {
                StoreError::Corrupt(format!("execution {}: {what} is not JSON: {e}", self.name))
            })
        };
        let input = json(&self.input, "input")?;
        let snapshot = json(&self.snapshot, "snapshot")?;
        Ok(ExecutionRow {
            name: self.name,
            state_machine: self.state_machine,
            enclave_id: self.enclave_id,
            input,
            snapshot,
            status: self.status,
            current_step: self.current_step,
            started_at: self.started_at,
            updated_at: self.updated_at,
        })
    }
}
