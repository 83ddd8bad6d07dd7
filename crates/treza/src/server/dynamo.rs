//! DynamoDB `UpdateItem` semantics over a JSON image of one item: the local
//! stand-in for `arn:aws:states:::dynamodb:updateItem`.
//!
//! Supports what treza's workflows use and a little more: `SET` (with `+`/`-`
//! and `if_not_exists`), `REMOVE`, `ADD` on numbers; conditions with
//! comparisons, `IN`, `BETWEEN`, `attribute_exists`, `attribute_not_exists`,
//! `AND`, `OR`, `NOT` and parentheses. Pure: no IO.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DynamoError {
    /// Step Functions surfaces this as `DynamoDB.ConditionalCheckFailedException`.
    #[error("The conditional request failed")]
    ConditionalCheckFailed,
    /// Step Functions surfaces this as `DynamoDB.ValidationException`.
    #[error("{0}")]
    Validation(String),
}

impl DynamoError {
    pub fn error_name(&self) -> &'static str {
        match self {
            DynamoError::ConditionalCheckFailed => "DynamoDB.ConditionalCheckFailedException",
            DynamoError::Validation(_) => "DynamoDB.ValidationException",
        }
    }
}

/// The parts of an UpdateItem request that act on the item.
pub struct UpdateRequest<'a> {
    pub update_expression: &'a str,
    pub condition_expression: Option<&'a str>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, Value>,
}

impl<'a> UpdateRequest<'a> {
    /// Reads the request from Step Functions' `Parameters` (typed attribute values).
    pub fn from_parameters(p: &'a Value) -> Result<Self, DynamoError> {
        let update_expression = p
            .get("UpdateExpression")
            .and_then(Value::as_str)
            .ok_or_else(|| DynamoError::Validation("UpdateExpression is required".into()))?;
        let condition_expression = p.get("ConditionExpression").and_then(Value::as_str);
        let mut names = HashMap::new();
        if let Some(m) = p.get("ExpressionAttributeNames").and_then(Value::as_object) {
            for (k, v) in m {
                let v = v.as_str().ok_or_else(|| {
                    DynamoError::Validation(format!(
                        "ExpressionAttributeNames.{k} must be a string"
                    ))
                })?;
                names.insert(k.clone(), v.to_string());
            }
        }
        let mut values = HashMap::new();
        if let Some(m) = p
            .get("ExpressionAttributeValues")
            .and_then(Value::as_object)
        {
            for (k, v) in m {
                values.insert(k.clone(), from_attribute_value(v)?);
            }
        }
        Ok(UpdateRequest {
            update_expression,
            condition_expression,
            names,
            values,
        })
    }
}

/// Converts a typed DynamoDB attribute value (`{"S": "x"}`, `{"N": "1"}`, ...) to plain JSON.
pub fn from_attribute_value(v: &Value) -> Result<Value, DynamoError> {
    let bad = || DynamoError::Validation(format!("not a DynamoDB attribute value: {v}"));
    let m = v.as_object().filter(|m| m.len() == 1).ok_or_else(bad)?;
    let (t, inner) = m.iter().next().ok_or_else(bad)?;
    Ok(match (t.as_str(), inner) {
        ("S", Value::String(s)) => Value::String(s.clone()),
        ("N", Value::String(s)) => parse_number(s)?,
        ("N", Value::Number(n)) => Value::Number(n.clone()),
        ("BOOL", Value::Bool(b)) => Value::Bool(*b),
        ("NULL", _) => Value::Null,
        ("M", Value::Object(o)) => {
            let mut out = Map::new();
            for (k, v) in o {
                out.insert(k.clone(), from_attribute_value(v)?);
            }
            Value::Object(out)
        }
        ("L", Value::Array(a)) => Value::Array(
            a.iter()
                .map(from_attribute_value)
                .collect::<Result<_, _>>()?,
        ),
        ("SS", Value::Array(a)) => Value::Array(a.clone()),
        _ => return Err(bad()),
    })
}

fn parse_number(s: &str) -> Result<Value, DynamoError> {
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::Number(i.into()));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| DynamoError::Validation(format!("invalid number '{s}'")))
}

/// Applies the request to `item` (checking the condition first). On error `item` is untouched.
pub fn apply(item: &mut Map<String, Value>, req: &UpdateRequest) -> Result<(), DynamoError> {
    if let Some(cond) = req.condition_expression {
        let mut p = Parser::new(cond, req);
        let c = p.condition()?;
        p.expect_end()?;
        if !eval_condition(&c, item) {
            return Err(DynamoError::ConditionalCheckFailed);
        }
    }
    let mut p = Parser::new(req.update_expression, req);
    let actions = p.update()?;
    p.expect_end()?;
    let mut next = item.clone();
    for a in actions {
        match a {
            Action::Set(path, op) => {
                let v = eval_set_operand(&op, item)?;
                set_path(&mut next, &path, v)?;
            }
            Action::Remove(path) => remove_path(&mut next, &path),
            Action::Add(path, v) => {
                let cur = get_path(item, &path).cloned();
                let sum = match (cur, &v) {
                    (None, _) => v.clone(),
                    (Some(Value::Number(a)), Value::Number(b)) => add_numbers(&a, b, 1.0)?,
                    _ => return Err(DynamoError::Validation("ADD needs a number".into())),
                };
                set_path(&mut next, &path, sum)?;
            }
        }
    }
    *item = next;
    Ok(())
}

type Path = Vec<String>;

#[derive(Debug)]
enum Operand {
    Path(Path),
    Value(Value),
    IfNotExists(Path, Box<Operand>),
}

#[derive(Debug)]
enum SetOperand {
    One(Operand),
    Plus(Operand, Operand),
    Minus(Operand, Operand),
}

#[derive(Debug)]
enum Action {
    Set(Path, SetOperand),
    Remove(Path),
    Add(Path, Value),
}

#[derive(Debug)]
enum Cond {
    Cmp(Operand, String, Operand),
    In(Operand, Vec<Operand>),
    Between(Operand, Operand, Operand),
    Exists(Path),
    NotExists(Path),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

struct Parser<'a, 'r> {
    src: &'a str,
    pos: usize,
    req: &'r UpdateRequest<'r>,
}

impl<'a, 'r> Parser<'a, 'r> {
    fn new(src: &'a str, req: &'r UpdateRequest<'r>) -> Self {
        Parser { src, pos: 0, req }
    }

    fn err(&self, what: &str) -> DynamoError {
        DynamoError::Validation(format!(
            "Invalid expression: {what} at position {} in \"{}\"",
            self.pos, self.src
        ))
    }

    fn skip_ws(&mut self) {
        while self.src[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.src[self.pos..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
        }
    }

    fn peek_word(&mut self) -> &'a str {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn keyword(&mut self, kw: &str) -> bool {
        let w = self.peek_word();
        if w.eq_ignore_ascii_case(kw) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn punct(&mut self, p: &str) -> bool {
        self.skip_ws();
        if self.src[self.pos..].starts_with(p) {
            self.pos += p.len();
            true
        } else {
            false
        }
    }

    fn expect_end(&mut self) -> Result<(), DynamoError> {
        self.skip_ws();
        if self.pos == self.src.len() {
            Ok(())
        } else {
            Err(self.err("unexpected trailing text"))
        }
    }

    fn name_token(&mut self) -> Result<String, DynamoError> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let (prefix, body) = if let Some(r) = rest.strip_prefix('#') {
            ("#", r)
        } else {
            ("", rest)
        };
        let len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        if len == 0 {
            return Err(self.err("expected an attribute name"));
        }
        let tok = &body[..len];
        self.pos += prefix.len() + len;
        if prefix == "#" {
            let key = format!("#{tok}");
            self.req
                .names
                .get(&key)
                .cloned()
                .ok_or_else(|| self.err(&format!("{key} is not in ExpressionAttributeNames")))
        } else {
            Ok(tok.to_string())
        }
    }

    fn path(&mut self) -> Result<Path, DynamoError> {
        let mut p = vec![self.name_token()?];
        while self.punct(".") {
            p.push(self.name_token()?);
        }
        Ok(p)
    }

    fn operand(&mut self) -> Result<Operand, DynamoError> {
        self.skip_ws();
        if self.src[self.pos..].starts_with(':') {
            self.pos += 1;
            let rest = &self.src[self.pos..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let key = format!(":{}", &rest[..len]);
            self.pos += len;
            return self
                .req
                .values
                .get(&key)
                .cloned()
                .map(Operand::Value)
                .ok_or_else(|| self.err(&format!("{key} is not in ExpressionAttributeValues")));
        }
        if self.peek_word() == "if_not_exists" {
            self.keyword("if_not_exists");
            if !self.punct("(") {
                return Err(self.err("expected '('"));
            }
            let p = self.path()?;
            if !self.punct(",") {
                return Err(self.err("expected ','"));
            }
            let fallback = self.operand()?;
            if !self.punct(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(Operand::IfNotExists(p, Box::new(fallback)));
        }
        Ok(Operand::Path(self.path()?))
    }

    fn update(&mut self) -> Result<Vec<Action>, DynamoError> {
        let mut actions = Vec::new();
        loop {
            self.skip_ws();
            if self.pos == self.src.len() {
                break;
            }
            if self.keyword("SET") {
                loop {
                    let p = self.path()?;
                    if !self.punct("=") {
                        return Err(self.err("expected '='"));
                    }
                    let a = self.operand()?;
                    let op = if self.punct("+") {
                        SetOperand::Plus(a, self.operand()?)
                    } else if self.punct("-") {
                        SetOperand::Minus(a, self.operand()?)
                    } else {
                        SetOperand::One(a)
                    };
                    actions.push(Action::Set(p, op));
                    if !self.punct(",") {
                        break;
                    }
                }
            } else if self.keyword("REMOVE") {
                loop {
                    actions.push(Action::Remove(self.path()?));
                    if !self.punct(",") {
                        break;
                    }
                }
            } else if self.keyword("ADD") {
                loop {
                    let p = self.path()?;
                    let v = match self.operand()? {
                        Operand::Value(v) => v,
                        _ => return Err(self.err("ADD takes a value")),
                    };
                    actions.push(Action::Add(p, v));
                    if !self.punct(",") {
                        break;
                    }
                }
            } else {
                return Err(self.err("expected SET, REMOVE or ADD"));
            }
        }
        if actions.is_empty() {
            return Err(self.err("empty update expression"));
        }
        Ok(actions)
    }

    fn condition(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.conjunction()?;
        while self.keyword("OR") {
            left = Cond::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Cond, DynamoError> {
        let mut left = self.negation()?;
        while self.keyword("AND") {
            left = Cond::And(Box::new(left), Box::new(self.negation()?));
        }
        Ok(left)
    }

    fn negation(&mut self) -> Result<Cond, DynamoError> {
        if self.keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.negation()?)));
        }
        if self.punct("(") {
            let c = self.condition()?;
            if !self.punct(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(c);
        }
        for (f, exists) in [("attribute_exists", true), ("attribute_not_exists", false)] {
            if self.peek_word() == f {
                self.keyword(f);
                if !self.punct("(") {
                    return Err(self.err("expected '('"));
                }
                let p = self.path()?;
                if !self.punct(")") {
                    return Err(self.err("expected ')'"));
                }
                return Ok(if exists {
                    Cond::Exists(p)
                } else {
                    Cond::NotExists(p)
                });
            }
        }
        let left = self.operand()?;
        if self.keyword("IN") {
            if !self.punct("(") {
                return Err(self.err("expected '('"));
            }
            let mut list = vec![self.operand()?];
            while self.punct(",") {
                list.push(self.operand()?);
            }
            if !self.punct(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(Cond::In(left, list));
        }
        if self.keyword("BETWEEN") {
            let lo = self.operand()?;
            if !self.keyword("AND") {
                return Err(self.err("expected AND"));
            }
            return Ok(Cond::Between(left, lo, self.operand()?));
        }
        for op in ["<>", "<=", ">=", "=", "<", ">"] {
            if self.punct(op) {
                return Ok(Cond::Cmp(left, op.to_string(), self.operand()?));
            }
        }
        Err(self.err("expected a comparison"))
    }
}

fn get_path<'v>(item: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = item.get(first)?;
    for seg in rest {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

fn set_path(item: &mut Map<String, Value>, path: &[String], v: Value) -> Result<(), DynamoError> {
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| DynamoError::Validation("empty path".into()))?;
    let mut cur = item;
    for seg in parents {
        cur = cur
            .get_mut(seg)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| {
                DynamoError::Validation(format!(
                    "The document path provided in the update expression is invalid for update: {}",
                    path.join(".")
                ))
            })?;
    }
    cur.insert(last.clone(), v);
    Ok(())
}

fn remove_path(item: &mut Map<String, Value>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = item;
    for seg in parents {
        match cur.get_mut(seg).and_then(Value::as_object_mut) {
            Some(next) => cur = next,
            None => return,
        }
    }
    cur.remove(last);
}

fn eval_operand(op: &Operand, item: &Map<String, Value>) -> Option<Value> {
    match op {
        Operand::Path(p) => get_path(item, p).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::IfNotExists(p, fallback) => get_path(item, p)
            .cloned()
            .or_else(|| eval_operand(fallback, item)),
    }
}

fn eval_set_operand(op: &SetOperand, item: &Map<String, Value>) -> Result<Value, DynamoError> {
    let missing = || {
        DynamoError::Validation(
            "The provided expression refers to an attribute that does not exist in the item".into(),
        )
    };
    match op {
        SetOperand::One(a) => eval_operand(a, item).ok_or_else(missing),
        SetOperand::Plus(a, b) | SetOperand::Minus(a, b) => {
            let sign = if matches!(op, SetOperand::Plus(..)) {
                1.0
            } else {
                -1.0
            };
            match (eval_operand(a, item), eval_operand(b, item)) {
                (Some(Value::Number(x)), Some(Value::Number(y))) => add_numbers(&x, &y, sign),
                (None, _) | (_, None) => Err(missing()),
                _ => Err(DynamoError::Validation(
                    "An operand in the update expression has an incorrect data type".into(),
                )),
            }
        }
    }
}

fn add_numbers(a: &Number, b: &Number, sign: f64) -> Result<Value, DynamoError> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let y = if sign < 0.0 { -y } else { y };
        return Ok(Value::Number((x + y).into()));
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    Number::from_f64(x + sign * y)
        .map(Value::Number)
        .ok_or_else(|| DynamoError::Validation("number out of range".into()))
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eval_condition(c: &Cond, item: &Map<String, Value>) -> bool {
    use std::cmp::Ordering::*;
    match c {
        Cond::Cmp(a, op, b) => {
            let (Some(a), Some(b)) = (eval_operand(a, item), eval_operand(b, item)) else {
                return false;
            };
            match op.as_str() {
                "=" => a == b,
                "<>" => a != b,
                "<" => compare(&a, &b) == Some(Less),
                "<=" => matches!(compare(&a, &b), Some(Less | Equal)),
                ">" => compare(&a, &b) == Some(Greater),
                ">=" => matches!(compare(&a, &b), Some(Greater | Equal)),
                _ => false,
            }
        }
        Cond::In(a, list) => match eval_operand(a, item) {
            Some(a) => list
                .iter()
                .any(|o| eval_operand(o, item).as_ref() == Some(&a)),
            None => false,
        },
        Cond::Between(a, lo, hi) => {
            match (
                eval_operand(a, item),
                eval_operand(lo, item),
                eval_operand(hi, item),
            ) {
                (Some(a), Some(lo), Some(hi)) => {
                    matches!(compare(&lo, &a), Some(Less | Equal))
                        && matches!(compare(&a, &hi), Some(Less | Equal))
                }
                _ => false,
            }
        }
        Cond::Exists(p) => get_path(item, p).is_some(),
        Cond::NotExists(p) => get_path(item, p).is_none(),
        Cond::And(a, b) => eval_condition(a, item) && eval_condition(b, item),
        Cond::Or(a, b) => eval_condition(a, item) || eval_condition(b, item),
        Cond::Not(a) => !eval_condition(a, item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Map<String, Value> {
        json!({"id": "e1", "status": "PENDING_DEPLOY", "errorMessage": "old", "version": 3, "outputs": {"a": 1}})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn params(update: &str, cond: Option<&str>) -> Value {
        let mut p = json!({
            "UpdateExpression": update,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":deploying": {"S": "DEPLOYING"},
                ":pending": {"S": "PENDING_DEPLOY"},
                ":failed": {"S": "FAILED"},
                ":one": {"N": "1"},
                ":now": {"S": "2026-01-01T00:00:00Z"}
            }
        });
        if let Some(c) = cond {
            p["ConditionExpression"] = json!(c);
        }
        p
    }

    fn run(update: &str, cond: Option<&str>) -> Result<Map<String, Value>, DynamoError> {
        let p = params(update, cond);
        let req = UpdateRequest::from_parameters(&p)?;
        let mut it = item();
        apply(&mut it, &req).map(|_| it)
    }

    #[test]
    fn set_and_remove_under_a_true_condition() {
        let it = run(
            "SET #status = :deploying, updatedAt = :now REMOVE errorMessage, errorType",
            Some("#status = :pending"),
        )
        .unwrap();
        assert_eq!(it["status"], "DEPLOYING");
        assert_eq!(it["updatedAt"], "2026-01-01T00:00:00Z");
        assert!(!it.contains_key("errorMessage"));
    }

    #[test]
    fn a_false_condition_changes_nothing() {
        let err = run("SET #status = :failed", Some("#status = :deploying")).unwrap_err();
        assert_eq!(err, DynamoError::ConditionalCheckFailed);
        assert_eq!(err.error_name(), "DynamoDB.ConditionalCheckFailedException");
    }

    #[test]
    fn in_and_boolean_operators() {
        assert!(run(
            "SET #status = :failed",
            Some("#status IN (:deploying, :pending)")
        )
        .is_ok());
        assert!(run(
            "SET #status = :failed",
            Some("NOT (#status = :deploying) AND attribute_exists(id)")
        )
        .is_ok());
        assert!(run(
            "SET #status = :failed",
            Some("attribute_not_exists(id) OR #status = :failed")
        )
        .is_err());
    }

    #[test]
    fn arithmetic_add_and_if_not_exists() {
        let it = run("SET version = version + :one ADD counter :one", None).unwrap();
        assert_eq!(it["version"], 4);
        assert_eq!(it["counter"], 1);
        let it = run("SET started = if_not_exists(started, :now)", None).unwrap();
        assert_eq!(it["started"], "2026-01-01T00:00:00Z");
        let it = run("SET outputs.b = :one", None).unwrap();
        assert_eq!(it["outputs"]["b"], 1);
    }

    #[test]
    fn unknown_placeholders_and_garbage_are_validation_errors() {
        for bad in [
            "SET #nope = :one",
            "SET a = :missing",
            "FROB a",
            "SET a = :one junk",
        ] {
            match run(bad, None) {
                Err(DynamoError::Validation(msg)) => {
                    assert!(msg.contains("Invalid expression"), "{msg}")
                }
                other => panic!("{bad}: expected a validation error, got {other:?}"),
            }
        }
    }

    #[test]
    fn attribute_values_convert_to_plain_json() {
        let v = from_attribute_value(
            &json!({"M": {"a": {"N": "1.5"}, "b": {"L": [{"BOOL": true}, {"NULL": true}]}}}),
        )
        .unwrap();
        assert_eq!(v, json!({"a": 1.5, "b": [true, null]}));
        assert!(from_attribute_value(&json!({"Q": "x"})).is_err());
    }
}
