//! A small blocking HTTP client for the API.

use anyhow::{anyhow, Context};
use serde_json::Value;
use std::time::Duration;

pub struct Client {
    base: String,
    key: String,
    agent: ureq::Agent,
}

/// Percent-encodes one path or query segment.
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(base: String, key: String) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent,
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.key));
        let res = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match res {
            Ok(r) => r
                .into_json()
                .context("the server sent a response that is not JSON"),
            Err(ureq::Error::Status(code, r)) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                let msg = v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("request failed");
                Err(anyhow!("{msg} (HTTP {code})"))
            }
            Err(e) => Err(anyhow!(
                "cannot reach the treza server at {}: {e}; is `treza up` running?",
                self.base
            )),
        }
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("POST", path, Some(body))
    }
    pub fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send("PATCH", path, Some(body))
    }
    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send("DELETE", path, None)
    }
}
