//! Turning Terraform's output into one error type and message.
//!
//! Rules, in order: a `treza-workload: error:` line (the supervisor's reason)
//! makes a `WorkloadFailed`; a state-lock error makes `StateLocked`; otherwise
//! the first `Error:` line (box-drawing prefix stripped) is a
//! `TerraformError`.

/// Marker the workload supervisor puts before its single error line.
pub const WORKLOAD_ERROR_MARKER: &str = "treza-workload: error:";

pub const WORKLOAD_FAILED: &str = "WorkloadFailed";
pub const TERRAFORM_ERROR: &str = "TerraformError";
pub const STATE_LOCKED: &str = "StateLocked";
pub const TIMEOUT: &str = "Timeout";

/// Collects the lines that decide a failure's type and message while a
/// phase's output streams past, so nothing needs to be buffered whole.
#[derive(Debug, Default, Clone)]
pub struct FailureScan {
    workload_error: Option<String>,
    first_error: Option<String>,
    state_locked: bool,
}

/// Strips Terraform's diagnostic box prefix (`│ `, `╷`, `╵`) and whitespace.
pub fn strip_box(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '│' || c == '╷' || c == '╵' || c.is_whitespace())
        .trim_end()
}

impl FailureScan {
    pub fn observe(&mut self, line: &str) {
        if self.workload_error.is_none() {
            if let Some(at) = line.find(WORKLOAD_ERROR_MARKER) {
                let reason = line[at + WORKLOAD_ERROR_MARKER.len()..].trim();
                if !reason.is_empty() {
                    self.workload_error = Some(reason.to_string());
                }
            }
        }
        let text = strip_box(line);
        if text.starts_with("Error: ") || text == "Error:" {
            if text.contains("Error acquiring the state lock") {
                self.state_locked = true;
            }
            if self.first_error.is_none() {
                self.first_error = Some(text.to_string());
            }
        }
    }

    /// (error type, message) for a phase that failed; `fallback` is used
    /// when Terraform printed no recognisable error.
    pub fn classify(&self, fallback: String) -> (&'static str, String) {
        if let Some(reason) = &self.workload_error {
            return (WORKLOAD_FAILED, reason.clone());
        }
        let message = self.first_error.clone().unwrap_or(fallback);
        if self.state_locked {
            (STATE_LOCKED, message)
        } else {
            (TERRAFORM_ERROR, message)
        }
    }
}

/// Classifies a whole captured output at once.
pub fn classify_output(output: &str, fallback: String) -> (&'static str, String) {
    let mut scan = FailureScan::default();
    output.lines().for_each(|l| scan.observe(l));
    scan.classify(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_error_wins_over_terraform_error() {
        let out = "\
╷
│ Error: local-exec provisioner error
│
│ Error running command 'exec \"$TREZA_SUPERVISOR\" workload start': exit status 1. Output:
│ treza-workload: error: workload exited with status 1 before becoming healthy
╵";
        let (kind, msg) = classify_output(out, "fallback".into());
        assert_eq!(kind, WORKLOAD_FAILED);
        assert_eq!(msg, "workload exited with status 1 before becoming healthy");
    }

    #[test]
    fn streamed_provisioner_prefix_is_tolerated() {
        let (kind, msg) = classify_output(
            "terraform_data.workload (local-exec): treza-workload: error: boom\nError: x",
            String::new(),
        );
        assert_eq!((kind, msg.as_str()), (WORKLOAD_FAILED, "boom"));
    }

    #[test]
    fn first_error_line_with_box_stripped() {
        let out = "│ Warning: meh\n│ Error: Unsupported argument\n│ Error: second";
        assert_eq!(
            classify_output(out, String::new()),
            (TERRAFORM_ERROR, "Error: Unsupported argument".to_string())
        );
        assert_eq!(
            classify_output("Error: Invalid value for input variable", String::new()),
            (
                TERRAFORM_ERROR,
                "Error: Invalid value for input variable".to_string()
            )
        );
    }

    #[test]
    fn state_lock_and_fallback() {
        let out = "Error: Error acquiring the state lock";
        assert_eq!(classify_output(out, String::new()).0, STATE_LOCKED);
        assert_eq!(
            classify_output("all fine", "terraform exited with status 1".into()),
            (
                TERRAFORM_ERROR,
                "terraform exited with status 1".to_string()
            )
        );
    }
}
