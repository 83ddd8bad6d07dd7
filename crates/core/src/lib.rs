//! treza's domain, pure: the enclave record, the status lifecycle, validation
//! and preflight of a request, change records and their routing to a workflow,
//! error classification and secret redaction.
//!
//! Code map:
//! - [`status`]: the `Status` enum and `Lifecycle`, the only table of legal transitions;
//! - [`record`]: the `Enclave` row, camelCase as the web app writes it;
//! - [`validate`]: JSON Schema + business rules for a request, deployment preflight;
//! - [`change`]: change records and `route`, which starts at most one workflow per change;
//! - [`error`]: `ErrorType` and classification of Terraform/workload failures;
//! - [`redact`]: masking secrets in log lines and JSON.
//!
//! Architecture invariant: this crate does no IO and has no async runtime. No
//! filesystem, clock, environment or randomness: values that depend on them
//! are arguments.

pub mod change;
pub mod error;
pub mod record;
pub mod redact;
pub mod status;
pub mod validate;

pub use change::{execution_name, route, ChangeKind, ChangeRecord, Workflow, WorkflowStart};
pub use error::{classify_terraform_failure, ErrorType};
pub use record::{new_enclave_id, Enclave, MAX_DESCRIPTION_LEN, MAX_NAME_LEN};
pub use redact::{redact_json_secrets, Redactor};
pub use status::{IllegalTransition, Lifecycle, Status, UnknownStatus};
pub use validate::{
    preflight_deploy, preflight_destroy, validate_new_enclave, validate_provider_config,
    FieldError, NewEnclave, Provider, ProviderConfig, ValidationErrors, WorkloadType,
};
