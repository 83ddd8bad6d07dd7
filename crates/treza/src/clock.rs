//! The one place the binary reads the wall clock.

use chrono::{SecondsFormat, Utc};

pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

/// ISO-8601 with milliseconds, as the app writes `createdAt`/`updatedAt`.
pub fn now_iso() -> String {
    now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now_millis() -> u64 {
    u64::try_from(now().timestamp_millis()).unwrap_or(0)
}
