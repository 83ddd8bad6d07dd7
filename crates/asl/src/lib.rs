//! `treza-asl`: an Amazon States Language (AWS Step Functions) engine, sans-IO.
//!
//! The crate owns parsing and validating definitions ([`StateMachine`]) and
//! advancing executions ([`Execution`]). The host drives it in the manner of
//! quinn-proto: call [`Execution::poll`] with the current time, run the
//! [`TaskRequest`]s it returns, report results with
//! [`Execution::complete_task`], and sleep until [`Poll::WaitUntil`] says so.
//!
//! A host that starts executions by name (StartExecution) can keep them in
//! [`Executions`], which applies Step Functions' idempotency rule: the same
//! name and input as a running execution is that execution; anything else
//! is `ExecutionAlreadyExists`.
//!
//! Limits follow AWS: a state output over [`MAX_PAYLOAD_BYTES`] fails with
//! `States.DataLimitExceeded` (which `States.ALL` does not catch) and
//! [`Executions::start`] refuses a larger input; more than [`MAX_HISTORY_EVENTS`] history
//! events fail the execution; a field may hold at most 10 intrinsic calls
//! (a definition error). A failing intrinsic (bad argument, an input over
//! its limit) raises `States.Runtime`, the name AWS reports for payload
//! template failures, rather than the spec's `States.IntrinsicFailure`.
//!
//! Architecture invariant: this crate does no IO, spawns no threads, never
//! reads the clock and never sleeps (except the opt-in real-time mode of the
//! [`run_to_completion`] convenience). Given the same definition, inputs,
//! task results and times, an execution is fully deterministic, and its whole
//! state is serializable so a host can snapshot it and resume after a crash.
//! It knows nothing of enclaves and depends on nothing else in treza.
//!
//! Only the JSONPath query language is supported; JSONata definitions are
//! rejected at parse time.

mod choice;
mod definition;
mod execution;
#[doc(hidden)]
pub mod fuzzing;
mod intrinsic;
mod path;
mod registry;

pub use definition::{DefinitionError, Diagnostic, StateMachine};
pub use execution::{
    run_to_completion, Execution, ExecutionContext, ExecutionStatus, HistoryEvent, Outcome, Poll,
    TaskFailure, TaskRequest, MAX_HISTORY_EVENTS, MAX_PAYLOAD_BYTES,
};
pub use registry::{check_execution_name, Executions, StartError, Started};
