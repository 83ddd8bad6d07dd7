//! The storage ports the rest of treza programs against. [`crate::Store`]
//! implements them on SQLite; a DynamoDB adapter can implement them later.
//! They are generic (not object safe): use them as bounds, `S: EnclaveTable`.

use crate::condition::Condition;
use crate::error::{StoreError, UpdateError};
use crate::journal::{CreateOutcome, ExecutionRow, NewExecution};
use crate::store::Store;
use serde_json::Value;
use treza_core::{ChangeRecord, Enclave, Status};

/// The enclave request table (DynamoDB: the table with `status-index` and `WalletIndex`).
pub trait EnclaveTable: Send + Sync {
    fn insert_enclave(&self, e: &Enclave) -> Result<Enclave, StoreError>;
    fn get_enclave(&self, id: &str) -> Result<Option<Enclave>, StoreError>;
    fn list_enclaves(
        &self,
        wallet: Option<&str>,
        status: Option<Status>,
    ) -> Result<Vec<Enclave>, StoreError>;
    fn update_enclave<E>(
        &self,
        id: &str,
        cond: &Condition,
        now_iso: &str,
        f: impl FnOnce(&mut Enclave) -> Result<(), E>,
    ) -> Result<Enclave, UpdateError<E>>;
    fn delete_enclave(&self, id: &str, cond: &Condition) -> Result<Enclave, StoreError>;
}

/// The table's change stream with per-consumer checkpoints (DynamoDB Streams
/// plus the event source mapping's position).
pub trait ChangeFeed: Send + Sync {
    fn changes_after(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError>;
    fn latest_sequence(&self) -> Result<u64, StoreError>;
    fn checkpoint(&self, consumer: &str) -> Result<u64, StoreError>;
    fn set_checkpoint(&self, consumer: &str, sequence: u64) -> Result<(), StoreError>;
}

/// Durable state of workflow executions, so they resume after a crash.
pub trait ExecutionJournal: Send + Sync {
    fn create_execution(&self, x: &NewExecution) -> Result<CreateOutcome, StoreError>;
    fn record_progress(
        &self,
        name: &str,
        snapshot: &Value,
        events: &[Value],
        status: &str,
        current_step: Option<&str>,
    ) -> Result<(), StoreError>;
    /// `record_progress` and the step's log lines in one write.
    #[allow(clippy::too_many_arguments)]
    fn record_progress_with_logs(
        &self,
        name: &str,
        snapshot: &Value,
        events: &[Value],
        status: &str,
        current_step: Option<&str>,
        enclave_id: &str,
        logs: &[crate::LogEntry],
    ) -> Result<(), StoreError>;
    fn get_execution(&self, name: &str) -> Result<Option<ExecutionRow>, StoreError>;
    fn executions_for_enclave(&self, enclave_id: &str) -> Result<Vec<ExecutionRow>, StoreError>;
    fn unfinished_executions(&self) -> Result<Vec<ExecutionRow>, StoreError>;
    fn execution_events(&self, name: &str) -> Result<Vec<Value>, StoreError>;
}

impl EnclaveTable for Store {
    fn insert_enclave(&self, e: &Enclave) -> Result<Enclave, StoreError> {
        Store::insert_enclave(self, e)
    }
    fn get_enclave(&self, id: &str) -> Result<Option<Enclave>, StoreError> {
        Store::get_enclave(self, id)
    }
    fn list_enclaves(
        &self,
        wallet: Option<&str>,
        status: Option<Status>,
    ) -> Result<Vec<Enclave>, StoreError> {
        Store::list_enclaves(self, wallet, status)
    }
    fn update_enclave<E>(
        &self,
        id: &str,
        cond: &Condition,
        now_iso: &str,
        f: impl FnOnce(&mut Enclave) -> Result<(), E>,
    ) -> Result<Enclave, UpdateError<E>> {
        Store::update_enclave(self, id, cond, now_iso, f)
    }
    fn delete_enclave(&self, id: &str, cond: &Condition) -> Result<Enclave, StoreError> {
        Store::delete_enclave(self, id, cond)
    }
}

impl ChangeFeed for Store {
    fn changes_after(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        Store::changes_after(self, after_sequence, limit)
    }
    fn latest_sequence(&self) -> Result<u64, StoreError> {
        Store::latest_sequence(self)
    }
    fn checkpoint(&self, consumer: &str) -> Result<u64, StoreError> {
        Store::checkpoint(self, consumer)
    }
    fn set_checkpoint(&self, consumer: &str, sequence: u64) -> Result<(), StoreError> {
        Store::set_checkpoint(self, consumer, sequence)
    }
}

impl ExecutionJournal for Store {
    fn create_execution(&self, x: &NewExecution) -> Result<CreateOutcome, StoreError> {
        Store::create_execution(self, x)
    }
    fn record_progress(
        &self,
        name: &str,
        snapshot: &Value,
        events: &[Value],
        status: &str,
        current_step: Option<&str>,
    ) -> Result<(), StoreError> {
        Store::record_progress(self, name, snapshot, events, status, current_step)
    }
    fn record_progress_with_logs(
        &self,
        name: &str,
        snapshot: &Value,
        events: &[Value],
        status: &str,
        current_step: Option<&str>,
        enclave_id: &str,
        logs: &[crate::LogEntry],
    ) -> Result<(), StoreError> {
        Store::record_progress_with_logs(
            self,
            name,
            snapshot,
            events,
            status,
            current_step,
            enclave_id,
            logs,
        )
    }
    fn get_execution(&self, name: &str) -> Result<Option<ExecutionRow>, StoreError> {
        Store::get_execution(self, name)
    }
    fn executions_for_enclave(&self, enclave_id: &str) -> Result<Vec<ExecutionRow>, StoreError> {
        Store::executions_for_enclave(self, enclave_id)
    }
    fn unfinished_executions(&self) -> Result<Vec<ExecutionRow>, StoreError> {
        Store::unfinished_executions(self)
    }
    fn execution_events(&self, name: &str) -> Result<Vec<Value>, StoreError> {
        Store::execution_events(self, name)
    }
}
