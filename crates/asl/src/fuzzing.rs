//! Entry points for the fuzz targets in `crates/asl/fuzz` (not a stable API).
//! Each one drives a parser and, when the text parses, its evaluator, and
//! must never panic whatever the input.

use crate::execution::run_to_completion;
use crate::intrinsic::{self, splitmix, Call};
use crate::path::{set_at, JsonPath, Selection};
use crate::{ExecutionContext, StateMachine};
use chrono::{TimeZone, Utc};
use serde_json::Value;

/// Parses a definition and, when it is valid, runs one execution in virtual
/// time with every Task echoing its parameters.
pub fn definition(text: &str) {
    let Ok(machine) = StateMachine::parse(text) else {
        return;
    };
    let Some(start) = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single() else {
        return;
    };
    let ctx = ExecutionContext {
        name: "fuzz".into(),
        id: "arn:aws:states:us-east-1:000000000000:execution:fuzz:fuzz".into(),
        state_machine_name: "fuzz".into(),
        role_arn: None,
    };
    let input = serde_json::json!({"a": [1, 2, {"b": "c"}], "n": 3, "s": "x"});
    let _ = run_to_completion(
        &machine,
        ctx,
        input,
        start,
        |t| Ok(t.parameters.clone()),
        true,
    );
}

/// Parses a JsonPath and evaluates it against `doc`; a definite path is also
/// used as a ResultPath target.
pub fn json_path(path: &str, doc: &Value) {
    let Ok(p) = JsonPath::parse(path) else {
        return;
    };
    let _ = p.bracketed();
    match p.select(doc) {
        Selection::One(_) | Selection::Missing | Selection::Many(_) => {}
    }
    if let Some(steps) = p.definite_steps() {
        let mut target = doc.clone();
        let _ = set_at(&mut target, &steps, Value::Bool(true));
    }
}

struct FuzzEnv<'a> {
    doc: &'a Value,
    rng: u64,
}

impl intrinsic::Env for FuzzEnv<'_> {
    fn resolve(&self, path: &JsonPath) -> Result<Value, String> {
        match path.select(self.doc) {
            Selection::One(v) => Ok(v),
            Selection::Many(v) => Ok(Value::Array(v)),
            Selection::Missing => Err(format!("no value at {}", path.text())),
        }
    }
    fn random(&mut self) -> u64 {
        self.rng = splitmix(self.rng);
        self.rng
    }
}

/// Parses an intrinsic function call and evaluates it with `$` = `doc`.
pub fn intrinsic(text: &str, doc: &Value) {
    let Ok(call) = Call::parse(text) else {
        return;
    };
    let _ = intrinsic::eval(&call, &mut FuzzEnv { doc, rng: 1 });
}
