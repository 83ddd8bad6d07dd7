//! `runner_main`: the runner as a process (`treza runner`), fed by
//! environment variables and speaking JSON lines on stdout.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use serde_json::json;
use treza_core::ErrorType;

use crate::driver::{run, LogLine, RunOutcome};
use crate::request::{request_from_env, RunnerDefaults};

/// Defaults for [`request_from_env`] taken from the process environment:
/// `TREZA_PROVIDERS_DIR` (default `providers`) and `TREZA_WORKSPACES_DIR`
/// (default `.treza/workspaces`).
pub fn defaults_from_env(vars: &HashMap<String, String>) -> RunnerDefaults {
    let mut d = RunnerDefaults::default();
    if let Some(p) = vars.get("TREZA_PROVIDERS_DIR").filter(|p| !p.is_empty()) {
        d.providers_dir = PathBuf::from(p);
    }
    if let Some(p) = vars.get("TREZA_WORKSPACES_DIR").filter(|p| !p.is_empty()) {
        d.workspaces_dir = PathBuf::from(p);
    }
    d
}

fn print_json_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the run: terraform still has to finish.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Reads the request from the process environment, runs it, and prints one
/// JSON object per line on stdout: `{"log": LogLine}` for each output line as
/// it comes, then `{"result": RunOutcome}`. Exit code: 0 success, 1 the run
/// failed, 2 bad input (nothing was run; the result says which variable),
/// 3 a phase timed out (terraform was interrupted; the result names the phase).
pub fn runner_main() -> i32 {
    let vars: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let req = match request_from_env(&vars, &defaults_from_env(&vars)) {
        Ok(r) => r,
        Err(e) => {
            let outcome = RunOutcome {
                success: false,
                outputs: serde_json::Map::new(),
                error_type: Some(ErrorType::InvalidInput.as_str().to_string()),
                error_message: Some(e.to_string()),
                phase: None,
            };
            print_json_line(&json!({ "result": outcome }));
            eprintln!("treza-runner: invalid input: {e}");
            return 2;
        }
    };
    install_stop_handlers();
    let outcome = run(&req, &mut |line: LogLine| {
        print_json_line(&json!({ "log": line }));
    });
    print_json_line(&json!({ "result": &outcome }));
    exit_code(&outcome)
}

/// Exit code of [`runner_main`] for an outcome of a run that started.
pub fn exit_code(outcome: &RunOutcome) -> i32 {
    if outcome.success {
        0
    } else if outcome.error_type.as_deref() == Some(ErrorType::Timeout.as_str()) {
        3
    } else {
        1
    }
}

extern "C" fn on_stop_signal(_: libc::c_int) {
    crate::driver::request_cancel();
}

/// SIGTERM (ECS stopping the task, or the local server dying: it sets this
/// runner's parent-death signal) and SIGINT interrupt terraform cleanly
/// instead of killing the runner mid-apply.
fn install_stop_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(success: bool, error_type: Option<ErrorType>) -> RunOutcome {
        RunOutcome {
            success,
            outputs: serde_json::Map::new(),
            error_type: error_type.map(|t| t.as_str().to_string()),
            error_message: None,
            phase: None,
        }
    }

    #[test]
    fn exit_codes_follow_the_outcome() {
        assert_eq!(exit_code(&outcome(true, None)), 0);
        assert_eq!(
            exit_code(&outcome(false, Some(ErrorType::TerraformError))),
            1
        );
        assert_eq!(exit_code(&outcome(false, Some(ErrorType::StateLocked))), 1);
        assert_eq!(exit_code(&outcome(false, Some(ErrorType::Timeout))), 3);
    }
}
