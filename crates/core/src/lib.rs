//! treza's domain, pure: the enclave record, the status lifecycle, validation
//! and preflight of a request, change records and their routing to a workflow,
//! error classification and secret redaction.
//!
//! Architecture invariant: this crate does no IO and has no async runtime.
//! Everything time- or randomness-dependent takes the value as an argument.

pub mod change;
pub mod record;
pub mod status;

pub use change::{route, ChangeKind, ChangeRecord, Workflow, WorkflowStart};
pub use record::Enclave;
pub use status::{IllegalTransition, Lifecycle, Status};
