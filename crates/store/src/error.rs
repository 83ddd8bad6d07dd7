//! Errors of the store. Every message names the record and says what was
//! expected and what was found.

use treza_core::IllegalTransition;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored data that cannot be read back (bad JSON, unknown status, newer schema).
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    #[error("enclave {id} not found")]
    NotFound { id: String },
    #[error("enclave {id} already exists")]
    AlreadyExists { id: String },
    /// A conditional write found the record in another state than the caller expected.
    #[error("conditional write on enclave {id} failed: expected {expected}, found {actual}")]
    ConditionFailed {
        id: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// An update tried to change a field that identifies the record.
    #[error("update of enclave {id} changed `{field}`, which is immutable")]
    ImmutableField { id: String, field: &'static str },
    #[error("execution {name} already exists with a different input or state machine")]
    ExecutionAlreadyExists { name: String },
    #[error("execution {name} not found")]
    ExecutionNotFound { name: String },
    #[error(
        "execution status '{status}' is not one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"
    )]
    InvalidExecutionStatus { status: String },
    /// The operating system could not provide random bytes for a key.
    #[error("no entropy for a new API key: {0}")]
    Entropy(String),
}

/// The outcome of [`crate::Store::update_enclave`]: either the store refused
/// (not found, condition, lifecycle, SQLite) or the caller's closure did.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("update rejected: {0}")]
    Rejected(E),
}

impl<E> UpdateError<E> {
    /// The store error, if the store (not the closure) refused.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            UpdateError::Store(e) => Some(e),
            UpdateError::Rejected(_) => None,
        }
    }
}
