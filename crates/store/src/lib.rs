//! treza-store: the storage ports (enclave table, change feed, execution
//! journal) and their SQLite implementation, plus per-enclave logs and API keys.
//!
//! One SQLite file in WAL mode holds everything. The enclave record is kept
//! as JSON text with column copies of `wallet_address`, `status`, `version`
//! and `created_at` (indexed for the wallet and status listings). Every
//! enclave write is an IMMEDIATE transaction that loads, checks the
//! [`Condition`] and the lifecycle, writes, and appends its change record;
//! so several handles or processes can write the same file.
//!
//! Architecture invariants:
//! - An enclave write and its change record commit together or not at all;
//!   a refused write leaves no trace.
//! - Change sequences strictly increase in commit order (SQLite has one
//!   writer at a time), so a consumer reading `changes_after(checkpoint)`
//!   never skips a record that commits later with a smaller sequence.
//! - Status changes go through `treza_core::Lifecycle`; the store has no
//!   other domain rules and never validates a record's content.
//! - API keys are stored as SHA-256 hashes only.

mod condition;
mod error;
mod journal;
mod keys;
mod logs;
pub mod ports;
mod schema;
mod store;

pub use condition::Condition;
pub use error::{StoreError, UpdateError};
pub use journal::{CreateOutcome, ExecutionRow, NewExecution, EXECUTION_STATUSES};
pub use keys::{is_well_formed_key, ApiKey, KEY_PREFIX};
pub use logs::LogEntry;
pub use ports::{ChangeFeed, EnclaveTable, ExecutionJournal};
pub use schema::SCHEMA_VERSION;
pub use store::{Store, BUSY_TIMEOUT};

#[cfg(test)]
mod tests {
    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Store>();
    }
}
