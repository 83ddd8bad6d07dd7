//! [`Store`]: connections, the enclave table and the change feed.

use crate::condition::Condition;
use crate::error::{StoreError, UpdateError};
use crate::schema;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use treza_core::{ChangeKind, ChangeRecord, Enclave, Lifecycle, Status};

/// How long a write waits for another process's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL size (in pages) that triggers a checkpoint on a connection that does
/// its own (SQLite's default is 1000; measured with benches/store.rs: 1000 ->
/// write p99 6.6 ms, 8000 -> 0.3 ms). File stores turn it off on the writer
/// and checkpoint from a background thread instead: the pipeline benchmark's
/// one-at-a-time p99 fell from 87 ms to 19 ms, the fsync no longer landing
/// on a request's path.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 8000;

type CommitListener = Arc<dyn Fn(u64) + Send + Sync>;

/// The SQLite store. One handle per process is enough; it is `Send + Sync`
/// and serializes its own writes. Several handles (or processes) on the same
/// file are safe: every write is an IMMEDIATE transaction, so SQLite orders
/// them, and change sequences are assigned in commit order.
pub struct Store {
    writer: Mutex<Connection>,
    /// A second connection for reads on file databases, so readers never wait
    /// behind a writer (WAL). `None` in memory: a second connection would see
    /// another database.
    reader: Option<Mutex<Connection>>,
    listener: RwLock<Option<CommitListener>>,
    /// Dropping it stops the background checkpointer (file databases only).
    _checkpointer: Option<mpsc::Sender<()>>,
}

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// A WAL this many frames long gets a RESTART checkpoint, which briefly
/// waits for writers, so a constant write load cannot grow it forever.
const WAL_RESTART_FRAMES: i64 = 50_000;

/// Checkpoints (the only fsyncs under synchronous=NORMAL) run on their own
/// connection and thread, so no committing writer ever waits for the disk.
fn start_checkpointer(path: &Path) -> Result<mpsc::Sender<()>, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("treza-store-checkpoint".into())
        .spawn(move || loop {
            let stop = matches!(
                rx.recv_timeout(CHECKPOINT_INTERVAL),
                Err(mpsc::RecvTimeoutError::Disconnected)
            );
            let mode = if stop { "TRUNCATE" } else { "PASSIVE" };
            let frames = conn
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                    r.get::<_, i64>(1)
                })
                .unwrap_or(0);
            if stop {
                return;
            }
            if frames > WAL_RESTART_FRAMES {
                let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(tx)
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic mid-transaction drops the Transaction, which rolls back; the
    // connection itself is still sound, so poisoning is not fatal here.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Returns the resulting mode as a row; in memory it stays "memory".
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints (the only fsyncs under synchronous=NORMAL) stall the
    // committing writer; spacing them out lets each copy a hot page once.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database file and migrates its schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        schema::migrate(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.pragma_update(None, "query_only", true)?;
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = start_checkpointer(path)?;
        Ok(Store {
            writer: Mutex::new(writer),
            reader: Some(Mutex::new(reader)),
            listener: RwLock::new(None),
            _checkpointer: Some(checkpointer),
        })
    }

    /// A private in-memory database (tests, dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut writer = Connection::open_in_memory()?;
        configure(&writer)?;
        schema::migrate(&mut writer)?;
        Ok(Store {
            writer: Mutex::new(writer),
            reader: None,
            listener: RwLock::new(None),
            _checkpointer: None,
        })
    }

    /// Called with the new latest sequence after every committed write of
    /// this handle that appended change records, outside any lock (it may
    /// call back into the store). Writes by other handles or processes do
    /// not call it: consumers should also poll [`Store::latest_sequence`].
    pub fn set_commit_listener(&self, f: Box<dyn Fn(u64) + Send + Sync>) {
        let mut slot = self.listener.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Arc::from(f));
    }

    pub(crate) fn write_conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    pub(crate) fn read_conn(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(r) => lock(r),
            None => lock(&self.writer),
        }
    }

    fn notify(&self, sequence: u64) {
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(f) = listener {
            f(sequence);
        }
    }

    // ---------------------------------------------------------------- enclaves

    /// Inserts a new record with `version = 1` and appends its INSERT change.
    ///
    /// The record is stored as given apart from the version: no validation,
    /// no lifecycle check. This is also the raw write path that stands in for
    /// the existing web app writing straight into the table; validation
    /// happens downstream, as it does for the app's writes.
    pub fn insert_enclave(&self, e: &Enclave) -> Result<Enclave, StoreError> {
        let mut new = e.clone();
        new.version = 1;
        let sequence = {
            let mut conn = self.write_conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM enclaves WHERE id = ?1", [&new.id], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists { id: new.id });
            }
            let json = to_json(&new)?;
            tx.prepare_cached(
                "INSERT INTO enclaves (id, wallet_address, status, version, created_at, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                new.id,
                new.wallet_address,
                new.status.as_str(),
                to_i64(new.version),
                new.created_at,
                json
            ])?;
            let seq = append_change(&tx, ChangeKind::Insert, &new.id, None, Some(&json))?;
            tx.commit()?;
            seq
        };
        self.notify(sequence);
        Ok(new)
    }

    pub fn get_enclave(&self, id: &str) -> Result<Option<Enclave>, StoreError> {
        let conn = self.read_conn();
        load_enclave(&conn, id)
    }

    /// Records filtered by wallet and/or status, ordered by `createdAt`, then `id`.
    pub fn list_enclaves(
        &self,
        wallet: Option<&str>,
        status: Option<Status>,
    ) -> Result<Vec<Enclave>, StoreError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, record FROM enclaves
             WHERE (?1 IS NULL OR wallet_address = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![wallet, status.map(Status::as_str)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            out.push(parse_enclave(&id, &json)?);
        }
        Ok(out)
    }

    /// Conditional update: loads the record, checks `cond`, applies `f`,
    /// checks the lifecycle if the status changed, bumps `version`, sets
    /// `updatedAt = now_iso`, and writes the record with its MODIFY change in
    /// one transaction. On any refusal nothing is written.
    ///
    /// `f` may not change `id`; whatever it sets `version` or `updatedAt` to
    /// is overwritten.
    pub fn update_enclave<E>(
        &self,
        id: &str,
        cond: &Condition,
        now_iso: &str,
        f: impl FnOnce(&mut Enclave) -> Result<(), E>,
    ) -> Result<Enclave, UpdateError<E>> {
        let (new, sequence) = {
            let mut conn = self.write_conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::from)?;
            let old = load_enclave(&tx, id)?
                .ok_or_else(|| StoreError::NotFound { id: id.to_string() })?;
            cond.check(&old)?;
            let mut new = old.clone();
            f(&mut new).map_err(UpdateError::Rejected)?;
            if new.id != old.id {
                return Err(StoreError::ImmutableField {
                    id: old.id,
                    field: "id",
                }
                .into());
            }
            if new.status != old.status {
                Lifecycle::transition(old.status, new.status).map_err(StoreError::from)?;
            }
            new.version = old.version + 1;
            new.updated_at = now_iso.to_string();
            let old_json = to_json(&old)?;
            let new_json = to_json(&new)?;
            let written = tx
                .prepare_cached(
                    "UPDATE enclaves
                     SET wallet_address = ?2, status = ?3, version = ?4, created_at = ?5, record = ?6
                     WHERE id = ?1 AND version = ?7",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        new.id,
                        new.wallet_address,
                        new.status.as_str(),
                        to_i64(new.version),
                        new.created_at,
                        new_json,
                        to_i64(old.version)
                    ])
                })
                .map_err(StoreError::from)?;
            if written != 1 {
                // Unreachable while writes hold the IMMEDIATE lock; kept as a guard.
                return Err(StoreError::ConditionFailed {
                    id: old.id,
                    expected: format!("version {}", old.version),
                    actual: "a concurrent write".to_string(),
                }
                .into());
            }
            let seq = append_change(
                &tx,
                ChangeKind::Modify,
                &new.id,
                Some(&old_json),
                Some(&new_json),
            )?;
            tx.commit().map_err(StoreError::from)?;
            (new, seq)
        };
        self.notify(sequence);
        Ok(new)
    }

    /// Deletes the record if `cond` holds and appends its REMOVE change.
    /// Returns the record as it was.
    pub fn delete_enclave(&self, id: &str, cond: &Condition) -> Result<Enclave, StoreError> {
        let (old, sequence) = {
            let mut conn = self.write_conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old = load_enclave(&tx, id)?
                .ok_or_else(|| StoreError::NotFound { id: id.to_string() })?;
            cond.check(&old)?;
            tx.execute("DELETE FROM enclaves WHERE id = ?1", [id])?;
            let old_json = to_json(&old)?;
            let seq = append_change(&tx, ChangeKind::Remove, id, Some(&old_json), None)?;
            tx.commit()?;
            (old, seq)
        };
        self.notify(sequence);
        Ok(old)
    }

    // ------------------------------------------------------------- change feed

    /// Up to `limit` change records with `sequence > after_sequence`, oldest first.
    pub fn changes_after(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let conn = self.read_conn();
        let mut stmt = conn.prepare_cached(
            "SELECT sequence, kind, enclave_id, old_image, new_image FROM changes
             WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![to_i64(after_sequence), limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (sequence, kind, id, old, new) = row?;
            let kind = match kind.as_str() {
                "INSERT" => ChangeKind::Insert,
                "MODIFY" => ChangeKind::Modify,
                "REMOVE" => ChangeKind::Remove,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "change {sequence}: unknown kind '{other}'"
                    )))
                }
            };
            out.push(ChangeRecord {
                kind,
                old: old.map(|j| parse_enclave(&id, &j)).transpose()?,
                new: new.map(|j| parse_enclave(&id, &j)).transpose()?,
                sequence: from_i64(sequence, "changes.sequence")?,
            });
        }
        Ok(out)
    }

    /// The sequence of the newest change record, 0 when there is none.
    pub fn latest_sequence(&self) -> Result<u64, StoreError> {
        let conn = self.read_conn();
        let seq: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM changes")?
            .query_row([], |r| r.get(0))?;
        from_i64(seq, "changes.sequence")
    }

    /// The last sequence `consumer` has finished with; 0 if never set.
    pub fn checkpoint(&self, consumer: &str) -> Result<u64, StoreError> {
        let conn = self.read_conn();
        let seq: Option<i64> = conn
            .prepare_cached("SELECT sequence FROM checkpoints WHERE consumer = ?1")?
            .query_row([consumer], |r| r.get(0))
            .optional()?;
        from_i64(seq.unwrap_or(0), "checkpoints.sequence")
    }

    /// Moves `consumer`'s checkpoint forward to `sequence`. Never moves it
    /// backwards: a late acknowledgement of an older batch is a no-op.
    pub fn set_checkpoint(&self, consumer: &str, sequence: u64) -> Result<(), StoreError> {
        let conn = self.write_conn();
        conn.prepare_cached(
            "INSERT INTO checkpoints (consumer, sequence) VALUES (?1, ?2)
             ON CONFLICT (consumer) DO UPDATE SET sequence = MAX(sequence, excluded.sequence)",
        )?
        .execute(params![consumer, to_i64(sequence)])?;
        Ok(())
    }
}

fn load_enclave(conn: &Connection, id: &str) -> Result<Option<Enclave>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT record FROM enclaves WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    json.map(|j| parse_enclave(id, &j)).transpose()
}

fn append_change(
    tx: &Transaction<'_>,
    kind: ChangeKind,
    id: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<u64, StoreError> {
    let kind = match kind {
        ChangeKind::Insert => "INSERT",
        ChangeKind::Modify => "MODIFY",
        ChangeKind::Remove => "REMOVE",
    };
    tx.prepare_cached(
        "INSERT INTO changes (kind, enclave_id, old_image, new_image) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![kind, id, old, new])?;
    from_i64(tx.last_insert_rowid(), "changes.sequence")
}

fn parse_enclave(id: &str, json: &str) -> Result<Enclave, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("enclave {id}: stored record is not valid: {e}")))
}

fn to_json(e: &Enclave) -> Result<String, StoreError> {
    serde_json::to_string(e)
        .map_err(|err| StoreError::Corrupt(format!("enclave {}: cannot serialize: {err}", e.id)))
}

/// SQLite integers are i64; versions and sequences beyond i64::MAX cannot occur
/// in practice, so they saturate rather than wrap.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_i64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}
