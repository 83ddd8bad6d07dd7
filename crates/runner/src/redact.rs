//! Secret redaction for every line that leaves the runner.

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Replaces every known secret in a text. Besides each secret verbatim it
/// also matches its JSON-escaped form and, for multi-line secrets, each of
/// its lines of 4 or more characters, because Terraform may print a value
/// escaped or split across lines.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            needles.push(secret.to_string());
            if let Ok(quoted) = serde_json::to_string(secret) {
                let escaped = &quoted[1..quoted.len() - 1];
                if escaped != secret {
                    needles.push(escaped.to_string());
                }
            }
            if secret.contains('\n') {
                needles.extend(
                    secret
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.chars().count() >= 4)
                        .map(str::to_string),
                );
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_secrets_longest_first() {
        let r = Redactor::new(["abc", "abcdef", ""]);
        assert_eq!(r.redact("x abcdef y abc"), "x [REDACTED] y [REDACTED]");
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn escaped_and_split_forms_are_caught() {
        let r = Redactor::new(["line-one\nline-two \"q\""]);
        assert_eq!(
            r.redact("v = \"line-one\\nline-two \\\"q\\\"\""),
            "v = \"[REDACTED]\""
        );
        assert!(!r.redact("    line-two \"q\"").contains("line-two"));
        assert!(!r.redact("line-one").contains("line-one"));
    }

    #[test]
    fn empty_redactor_is_identity() {
        let r = Redactor::new(Vec::<String>::new());
        assert!(r.is_empty());
        assert_eq!(r.redact("a b"), "a b");
    }
}
