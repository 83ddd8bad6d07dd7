//! Failure classification: which kind of failure ended a workflow, and the one
//! line that explains it, for the record's `errorType` and `errorMessage`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of failure, as stored in `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorType {
    /// The request could not be read at all.
    InvalidInput,
    /// The request was read but broke a rule (see the field errors).
    ValidationFailed,
    /// The cloud provider refused our credentials or their permissions.
    ProviderAuth,
    /// The provider has no capacity for the instance type right now.
    Capacity,
    /// An account limit or quota was reached.
    Quota,
    /// Another run holds the Terraform state lock.
    StateLocked,
    /// The work took longer than allowed.
    Timeout,
    /// Terraform failed for another reason.
    TerraformError,
    /// The infrastructure came up but the workload failed to start or stay healthy.
    WorkloadFailed,
    /// A bug or an unexpected condition in treza.
    Internal,
}

impl ErrorType {
    pub const ALL: [ErrorType; 10] = [
        ErrorType::InvalidInput,
        ErrorType::ValidationFailed,
        ErrorType::ProviderAuth,
        ErrorType::Capacity,
        ErrorType::Quota,
        ErrorType::StateLocked,
        ErrorType::Timeout,
        ErrorType::TerraformError,
        ErrorType::WorkloadFailed,
        ErrorType::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidInput => "InvalidInput",
            ErrorType::ValidationFailed => "ValidationFailed",
            ErrorType::ProviderAuth => "ProviderAuth",
            ErrorType::Capacity => "Capacity",
            ErrorType::Quota => "Quota",
            ErrorType::StateLocked => "StateLocked",
            ErrorType::Timeout => "Timeout",
            ErrorType::TerraformError => "TerraformError",
            ErrorType::WorkloadFailed => "WorkloadFailed",
            ErrorType::Internal => "Internal",
        }
    }

    /// Whether running the same thing again later may succeed unchanged.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorType::Capacity | ErrorType::StateLocked | ErrorType::Timeout
        )
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown error type {s:?}"))
    }
}

/// Prefix the local provider's supervisor prints before a workload failure.
pub const WORKLOAD_ERROR_PREFIX: &str = "treza-workload: error:";

/// Longest message kept for `errorMessage`.
pub const MAX_ERROR_MESSAGE_LEN: usize = 1000;

/// Substrings (matched case-insensitively) that decide the type, first match wins.
const PATTERNS: &[(ErrorType, &[&str])] = &[
    (ErrorType::StateLocked, &["error acquiring the state lock"]),
    (
        ErrorType::ProviderAuth,
        &[
            "nocredentialproviders",
            "invalidclienttokenid",
            "expiredtoken",
            "no valid credential sources",
            "signaturedoesnotmatch",
            "unrecognizedclientexception",
            "authfailure",
            "unauthorizedoperation",
            "accessdenied",
        ],
    ),
    (
        ErrorType::Capacity,
        &[
            "insufficientinstancecapacity",
            "insufficient capacity",
            "insufficienthostcapacity",
        ],
    ),
    (ErrorType::Quota, &["limitexceeded", "quota"]),
    (
        ErrorType::Timeout,
        &[
            "timeout while waiting",
            "context deadline exceeded",
            "timed out",
        ],
    ),
];

/// Reads Terraform's (or the runner's) output and says what kind of failure it
/// was and which line explains it.
///
/// The supervisor's `treza-workload: error:` line wins (the workload failed,
/// not Terraform); otherwise the first `Error: <summary>` line is the message,
/// box-drawing prefixes and colour codes removed.
pub fn classify_terraform_failure(output: &str) -> (ErrorType, String) {
    let lines: Vec<String> = output.lines().map(clean_line).collect();

    if let Some(msg) = lines.iter().find_map(|l| {
        l.find(WORKLOAD_ERROR_PREFIX)
            .map(|i| l[i + WORKLOAD_ERROR_PREFIX.len()..].trim())
    }) {
        let msg = if msg.is_empty() {
            "the workload failed"
        } else {
            msg
        };
        return (ErrorType::WorkloadFailed, shorten(msg));
    }

    let lower = output.to_ascii_lowercase();
    let kind = PATTERNS
        .iter()
        .find(|(_, needles)| needles.iter().any(|n| lower.contains(n)))
        .map(|(t, _)| *t)
        .unwrap_or(ErrorType::TerraformError);

    let summary = lines.iter().find_map(|l| {
        l.strip_prefix("Error:")
            .map(str::trim)
            .filter(|s| !s.is_empty())
    });
    let message = match summary {
        Some(s) => s.to_string(),
        None => lines
            .iter()
            .rev()
            .find(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| "terraform failed without printing an error".to_string()),
    };
    (kind, shorten(&message))
}

/// Removes ANSI escapes, Terraform's diagnostic box (`╷ │ ╵`) and surrounding space.
fn clean_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte(0x40..=0x7e)
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '│' | '╷' | '╵' | '|'))
        .trim_end()
        .to_string()
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_ERROR_MESSAGE_LEN {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_ERROR_MESSAGE_LEN - 3).collect();
        t.push_str("...");
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_pascal_case() {
        for t in ErrorType::ALL {
            let s = serde_json::to_string(&t).unwrap();
            assert_eq!(s, format!("\"{}\"", t.as_str()));
            assert_eq!(t.as_str().parse::<ErrorType>(), Ok(t));
        }
    }

    #[test]
    fn strips_ansi_and_box() {
        assert_eq!(
            clean_line(
                "\u{1b}[31m│\u{1b}[0m \u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[1mboom\u{1b}[0m"
            ),
            "Error: boom"
        );
    }
}
