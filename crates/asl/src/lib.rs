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
    TaskFailure, TaskRequest,
};
pub use registry::{check_execution_name, Executions, StartError, Started};
