//! Schema and migrations, keyed on SQLite's `user_version` pragma.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up; `migrate`
//! applies the missing ones inside one IMMEDIATE transaction, so two
//! processes opening a fresh file at once do not both create tables.

use crate::error::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE enclaves (
    id             TEXT PRIMARY KEY NOT NULL,
    wallet_address TEXT NOT NULL,
    status         TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    record         TEXT NOT NULL
);
CREATE INDEX enclaves_by_wallet ON enclaves (wallet_address, created_at, id);
CREATE INDEX enclaves_by_status ON enclaves (status, created_at, id);
CREATE INDEX enclaves_by_created ON enclaves (created_at, id);

-- AUTOINCREMENT: a sequence is never reused, even after the newest row is gone.
CREATE TABLE changes (
    sequence   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    enclave_id TEXT NOT NULL,
    old_image  TEXT,
    new_image  TEXT
);

CREATE TABLE checkpoints (
    consumer TEXT PRIMARY KEY NOT NULL,
    sequence INTEGER NOT NULL
);

CREATE TABLE executions (
    name          TEXT PRIMARY KEY NOT NULL,
    state_machine TEXT NOT NULL,
    enclave_id    TEXT,
    input         TEXT NOT NULL,
    snapshot      TEXT NOT NULL,
    status        TEXT NOT NULL,
    current_step  TEXT,
    started_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX executions_by_enclave ON executions (enclave_id, started_at, name);
CREATE INDEX executions_by_status ON executions (status, started_at, name);

CREATE TABLE execution_events (
    name  TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (name, seq)
) WITHOUT ROWID;

CREATE TABLE logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    enclave_id TEXT NOT NULL,
    timestamp  TEXT NOT NULL,
    source     TEXT NOT NULL,
    message    TEXT NOT NULL,
    fields     TEXT
);
CREATE INDEX logs_by_enclave ON logs (enclave_id, id);
CREATE INDEX logs_by_enclave_source ON logs (enclave_id, source, id);

-- Only the SHA-256 of a key is kept; the plaintext is shown once at creation.
CREATE TABLE api_keys (
    key_hash       TEXT PRIMARY KEY NOT NULL,
    id             TEXT NOT NULL UNIQUE,
    prefix         TEXT NOT NULL,
    wallet_address TEXT NOT NULL,
    permissions    TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
"#];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this treza understands (up to {SCHEMA_VERSION})"
        )));
    }
    if current < 0 {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is negative"
        )));
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql)?;
    }
    if current != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}
