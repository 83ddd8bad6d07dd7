//! treza's Terraform runner, and the workload supervisor of the local provider.
//!
//! A run ([`run`]) takes a [`RunRequest`] for one enclave: it copies the
//! provider module into the enclave's own workspace directory, writes the
//! module variables to `terraform.tfvars.json` with serde, and drives the
//! terraform CLI through init / plan / apply / output (deploy) or init /
//! destroy, streaming every output line, redacted, to a sink as it arrives.
//! [`runner_main`] is the same as a process: input from the environment
//! variables ECS sets ([`request_from_env`]: each validated, named in the
//! error, exit 2 before anything runs; [`variables`] says how they merge
//! with `CONFIGURATION`), JSON lines out; exit 0 success, 1 failed, 2 bad
//! input, 3 timeout. State is local (in the workspace) or S3
//! ([`StateBackend`]: an empty `backend "s3" {}` plus `-backend-config`
//! arguments); plan/apply/destroy wait `lock_timeout` for a held lock, then
//! fail with StateLocked.
//!
//! [`workload`] is the supervisor that the `providers/local` module's
//! provisioners call (`treza workload start|stop|status`): a keeper process
//! runs the workload from its argv in its own session, logs its output
//! redacted and records its exit; `start` only reports success once the
//! workload is ready; [`workload::workload_status`] reports health and crashes.
//!
//! Invariants:
//! - User values reach Terraform only as JSON data (tfvars file, provisioner
//!   environment); never through a shell, a heredoc or HCL text.
//! - Every exit status is checked; a run succeeds only if every phase did.
//! - No line, error message or result carries a value from
//!   `RunRequest::secrets`.
//! - On a phase timeout terraform is interrupted and given time to write its
//!   state before it is killed.
//! - One workspace (and state) per enclave; the runner keeps no other state.
//!
//! Redaction ([`treza_core::Redactor`]) and failure classification
//! ([`treza_core::classify_terraform_failure`]) belong to `treza-core`; this
//! crate only feeds them.

mod backend;
mod driver;
mod input;
mod locate;
mod main_entry;
pub mod report;
mod request;
pub mod variables;
pub mod workload;
mod workspace;

pub use backend::{s3_state_key, S3Backend, StateBackend, BACKEND_FILE, S3_BACKEND_TF};

pub use driver::{
    flatten_outputs, phase_commands, run, LogLine, PhaseCommand, RunOutcome, INTERRUPT_GRACE,
};
pub use locate::{find_terraform, wrapper_location, TERRAFORM_ENV};
pub use main_entry::{defaults_from_env, exit_code, runner_main};
pub use report::{RecordUpdate, ResultPort};
pub use request::{
    request_from_env, secrets_in_configuration, Action, InputError, RunRequest, RunnerDefaults,
    UnknownAction, DEFAULT_LOCK_TIMEOUT, DEFAULT_PHASE_TIMEOUT, MAX_LOCK_TIMEOUT_SECONDS,
    MAX_PHASE_TIMEOUT_SECONDS, PHASE_TIMEOUT_VARIABLES,
};
pub use workload::workload_main;
pub use workspace::{CLI_CONFIG_FILE, STATE_FILE, TFVARS_FILE};
