//! Evaluation of Choice rules.

use crate::definition::{parse_timestamp, Op, Operand, Rule};
use crate::intrinsic::json_eq;
use crate::path::JsonPath;
use serde_json::Value;
use std::cmp::Ordering;

/// Resolves a path for a rule: `Ok(None)` when it selects nothing.
pub(crate) trait Lookup {
    fn lookup(&self, path: &JsonPath) -> Result<Option<Value>, String>;
}

/// Evaluates a rule. `Err` is the cause of a `States.Runtime` error.
pub(crate) fn eval_rule(rule: &Rule, env: &dyn Lookup) -> Result<bool, String> {
    match rule {
        Rule::And(rs) => {
            for r in rs {
                if !eval_rule(r, env)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Or(rs) => {
            for r in rs {
                if eval_rule(r, env)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Rule::Not(r) => Ok(!eval_rule(r, env)?),
        Rule::Test {
            variable,
            op,
            operand,
        } => {
            let value = env.lookup(variable)?;
            if *op == Op::IsPresent {
                let want = matches!(operand, Operand::Value(Value::Bool(true)));
                return Ok(value.is_some() == want);
            }
            let Some(value) = value else {
                return Err(format!(
                    "Invalid path '{}': The choice state's condition path references an invalid value.",
                    variable.text()
                ));
            };
            let rhs = match operand {
                Operand::Value(v) => v.clone(),
                Operand::Path(p) => env.lookup(p)?.ok_or_else(|| {
                    format!(
                        "Invalid path '{}': The choice state's condition path references an invalid value.",
                        p.text()
                    )
                })?,
            };
            Ok(compare(*op, &value, &rhs))
        }
    }
}

fn is_type(op: Op, v: &Value) -> Option<bool> {
    Some(match op {
        Op::IsNull => v.is_null(),
        Op::IsNumeric => v.is_number(),
        Op::IsString => v.is_string(),
        Op::IsBoolean => v.is_boolean(),
        Op::IsTimestamp => v.as_str().and_then(parse_timestamp).is_some(),
        _ => return None,
    })
}

fn compare(op: Op, lhs: &Value, rhs: &Value) -> bool {
    if let Some(t) = is_type(op, lhs) {
        return rhs.as_bool().map(|want| t == want).unwrap_or(false);
    }
    let ord = |o: Option<Ordering>, accept: &[Ordering]| o.is_some_and(|o| accept.contains(&o));
    use Ordering::*;
    match op {
        Op::StringEquals => matches!((lhs, rhs), (Value::String(a), Value::String(b)) if a == b),
        Op::StringLessThan => ord(str_cmp(lhs, rhs), &[Less]),
        Op::StringGreaterThan => ord(str_cmp(lhs, rhs), &[Greater]),
        Op::StringLessThanEquals => ord(str_cmp(lhs, rhs), &[Less, Equal]),
        Op::StringGreaterThanEquals => ord(str_cmp(lhs, rhs), &[Greater, Equal]),
        Op::StringMatches => match (lhs, rhs) {
            (Value::String(a), Value::String(p)) => wildcard_match(p, a),
            _ => false,
        },
        Op::NumericEquals => lhs.is_number() && rhs.is_number() && json_eq(lhs, rhs),
        Op::NumericLessThan => ord(num_cmp(lhs, rhs), &[Less]),
        Op::NumericGreaterThan => ord(num_cmp(lhs, rhs), &[Greater]),
        Op::NumericLessThanEquals => ord(num_cmp(lhs, rhs), &[Less, Equal]),
        Op::NumericGreaterThanEquals => ord(num_cmp(lhs, rhs), &[Greater, Equal]),
        Op::BooleanEquals => matches!((lhs, rhs), (Value::Bool(a), Value::Bool(b)) if a == b),
        Op::TimestampEquals => ord(ts_cmp(lhs, rhs), &[Equal]),
        Op::TimestampLessThan => ord(ts_cmp(lhs, rhs), &[Less]),
        Op::TimestampGreaterThan => ord(ts_cmp(lhs, rhs), &[Greater]),
        Op::TimestampLessThanEquals => ord(ts_cmp(lhs, rhs), &[Less, Equal]),
        Op::TimestampGreaterThanEquals => ord(ts_cmp(lhs, rhs), &[Greater, Equal]),
        _ => false,
    }
}

fn str_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn num_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Some(x.cmp(&y));
            }
            x.as_f64()?.partial_cmp(&y.as_f64()?)
        }
        _ => None,
    }
}

fn ts_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let a = parse_timestamp(a.as_str()?)?;
    let b = parse_timestamp(b.as_str()?)?;
    Some(a.cmp(&b))
}

/// `*` matches any run of characters; `\*` is a literal star, `\\` a backslash.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Lit(char),
        Star,
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(Tok::Lit(n)),
                None => toks.push(Tok::Lit('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Lit(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic greedy wildcard match with backtracking to the last star.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.log", "a.log"));
        assert!(wildcard_match("a*b*c", "aXXbYc"));
        assert!(!wildcard_match("a*b", "aXc"));
        assert!(wildcard_match("a\\*", "a*"));
        assert!(!wildcard_match("a\\*", "ab"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn comparisons() {
        assert!(compare(Op::NumericEquals, &json!(1), &json!(1.0)));
        assert!(!compare(Op::NumericEquals, &json!(null), &json!(0)));
        assert!(!compare(Op::NumericLessThan, &json!(true), &json!(2)));
        assert!(compare(Op::StringLessThan, &json!("a"), &json!("b")));
        assert!(compare(
            Op::TimestampLessThan,
            &json!("2020-01-01T00:00:00Z"),
            &json!("2020-01-01T00:00:01+00:00")
        ));
        assert!(compare(Op::IsNull, &json!(null), &json!(true)));
        assert!(compare(Op::IsNumeric, &json!("1"), &json!(false)));
    }
}
