//! Secret redaction for log lines and JSON documents.
//!
//! [`Redactor`] masks known secret strings wherever they appear in a line; it
//! finds all occurrences at once (Aho-Corasick), overlapping ones included, and
//! masks the union of their spans, so a secret is never partly revealed by
//! another one overlapping it. [`redact_json_secrets`] masks values by key.

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// What a masked secret becomes.
pub const MASK: &str = "***";

/// Shorter strings are not treated as secrets: masking `"1"` or `"yes"`
/// everywhere would destroy logs and reveal the value anyway.
pub const MIN_SECRET_LEN: usize = 4;

/// Masks a fixed set of secret strings in text.
#[derive(Clone)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    count: usize,
}

// Never prints the secrets themselves.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.count)
            .finish()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(std::iter::empty::<&str>())
    }
}

impl Redactor {
    /// Builds a redactor from secret values; those shorter than
    /// [`MIN_SECRET_LEN`] characters are ignored. A secret's JSON-escaped form
    /// is masked too, since secrets also travel inside JSON text, and so is
    /// each line of a multi-line secret.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = Vec::new();
        for s in secrets {
            let s = s.as_ref();
            if s.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            patterns.push(s.to_string());
            let quoted = serde_json::to_string(s).unwrap_or_default();
            let escaped = &quoted[1..quoted.len().saturating_sub(1).max(1)];
            if escaped != s {
                patterns.push(escaped.to_string());
            }
            // Logs are read line by line: each line of a multi-line secret (a PEM key,
            // say) must be masked on its own.
            if s.contains(['\n', '\r']) {
                patterns.extend(
                    s.lines()
                        .map(str::trim)
                        .filter(|l| l.chars().count() >= MIN_SECRET_LEN)
                        .map(str::to_string),
                );
            }
        }
        // Longest first so that, if two are found at one position, the longer one counts.
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        let count = patterns.len();
        let matcher = if patterns.is_empty() {
            None
        } else {
            // Standard match kind is required to report overlapping matches; a
            // failure to build (pattern set too large) falls back to no fast path.
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()
        };
        Redactor { matcher, count }
    }

    /// How many patterns (secrets and their escaped forms) are masked.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The line with every occurrence of every secret replaced by [`MASK`].
    /// Overlapping or adjacent occurrences become a single mask.
    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let Some(m) = &self.matcher else {
            return Cow::Borrowed(line);
        };
        // Union of all (possibly overlapping) match spans, in order of start.
        let mut spans: Vec<(usize, usize)> = m
            .find_overlapping_iter(line)
            .map(|x| (x.start(), x.end()))
            .collect();
        if spans.is_empty() {
            return Cow::Borrowed(line);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(line.len());
        let mut pos = 0;
        let mut i = 0;
        while i < spans.len() {
            let (start, mut end) = spans[i];
            i += 1;
            while i < spans.len() && spans[i].0 <= end {
                end = end.max(spans[i].1);
                i += 1;
            }
            out.push_str(&line[pos..start]);
            out.push_str(MASK);
            pos = end;
        }
        out.push_str(&line[pos..]);
        Cow::Owned(out)
    }

    /// Masks secrets inside every string of a JSON value, keys included.
    pub fn redact_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| self.redact_value(x)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut x) in old {
                    self.redact_value(&mut x);
                    map.insert(self.redact(&k).into_owned(), x);
                }
            }
            _ => {}
        }
    }
}

/// Whether a key names a secret: compared lowercase with `_` and `-` removed.
pub fn is_secret_key(key: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "authorization",
        "privatekey",
        "credential",
        "cookie",
    ];
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    NEEDLES.iter().any(|n| k.contains(n))
}

/// Whether a key holds environment variables, whose values are all secret.
fn is_environment_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "environmentvariables" || k == "environment_variables" || k == "environment" || k == "env"
}

/// Masks secret values in a JSON document by key: every value under a key
/// naming a secret (`token`, `secret`, `password`, `apiKey`, `authorization`,
/// ...) and every value of an environment map (`environmentVariables`, also
/// when written as a JSON string, and ECS-style `[{name, value}]` lists).
/// Variable names are kept; strings holding a JSON object are searched too.
pub fn redact_json_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if is_secret_key(k) {
                    if !x.is_null() {
                        *x = Value::String(MASK.to_string());
                    }
                } else if is_environment_key(k) {
                    mask_environment(x);
                } else {
                    redact_json_secrets(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json_secrets),
        Value::String(s) => {
            if let Some(mut inner) = embedded_object(s) {
                let before = inner.clone();
                redact_json_secrets(&mut inner);
                if inner != before {
                    *s = inner.to_string();
                }
            }
        }
        _ => {}
    }
}

/// Parses a string that holds a JSON object (e.g. the runner's `CONFIGURATION`).
fn embedded_object(s: &str) -> Option<Value> {
    let t = s.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(Value::is_object)
}

fn mask_environment(v: &mut Value) {
    match v {
        Value::Object(vars) => {
            for x in vars.values_mut() {
                *x = Value::String(MASK.to_string());
            }
        }
        // ECS container overrides: [{"name": N, "value": V}]
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(pair) => {
                        for (k, x) in pair.iter_mut() {
                            if k.eq_ignore_ascii_case("value") {
                                *x = Value::String(MASK.to_string());
                            }
                        }
                    }
                    other => *other = Value::String(MASK.to_string()),
                }
            }
        }
        Value::String(s) => match embedded_object(s) {
            Some(mut inner) => {
                mask_environment(&mut inner);
                *s = inner.to_string();
            }
            None if s.trim().is_empty() => {}
            None => *s = MASK.to_string(),
        },
        Value::Null => {}
        other => *other = Value::String(MASK.to_string()),
    }
}
