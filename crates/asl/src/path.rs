//! A small JSONPath evaluator with the ASL rules: a *definite* path (only
//! names and indexes) selects one node or nothing; an *indefinite* path
//! (wildcards, slices, recursive descent, filters, unions) selects a list.

use serde_json::{Map, Value};

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Name(String),
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Union(Vec<UnionItem>),
    Recursive(Box<Segment>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
enum UnionItem {
    Name(String),
    Index(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    /// Relative path under `@`.
    path: Vec<Segment>,
    /// `None` means an existence test.
    cmp: Option<(CmpOp, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Where a path is rooted.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    /// `$` — the state's input (or whatever document the caller supplies).
    Input,
    /// `$$` — the context object.
    Context,
    /// `$name` — a workflow variable.
    Variable(String),
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    pub root: Root,
    segments: Vec<Segment>,
    text: String,
}

/// The result of evaluating a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// A definite path found its node.
    One(Value),
    /// A definite path found nothing.
    Missing,
    /// An indefinite path: all matches, in document order.
    Many(Vec<Value>),
}

impl JsonPath {
    /// Parses `$...`, `$$...` or `$var...`.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let bytes: Vec<char> = text.chars().collect();
        if bytes.first() != Some(&'$') {
            return Err(format!("path '{text}' must start with '$'"));
        }
        let mut pos = 1;
        let root = if bytes.get(1) == Some(&'$') {
            pos = 2;
            Root::Context
        } else if bytes.get(1).is_some_and(|c| is_name_char(*c)) {
            let start = pos;
            while pos < bytes.len() && is_name_char(bytes[pos]) {
                pos += 1;
            }
            Root::Variable(bytes[start..pos].iter().collect())
        } else {
            Root::Input
        };
        let mut p = Parser {
            chars: &bytes,
            pos,
            text,
        };
        let segments = p.segments(false)?;
        Ok(JsonPath {
            root,
            segments,
            text: text.to_string(),
        })
    }

    /// The original text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the path selects at most one node.
    pub fn is_definite(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Name(_) | Segment::Index(_)))
    }

    /// Evaluates against `doc` (the document matching [`JsonPath::root`]).
    pub fn select(&self, doc: &Value) -> Selection {
        if self.is_definite() {
            let mut cur = doc;
            for seg in &self.segments {
                let next = match (seg, cur) {
                    (Segment::Name(n), Value::Object(m)) => m.get(n),
                    (Segment::Index(i), Value::Array(a)) => index(a, *i),
                    _ => None,
                };
                match next {
                    Some(v) => cur = v,
                    None => return Selection::Missing,
                }
            }
            return Selection::One(cur.clone());
        }
        let mut nodes: Vec<&Value> = vec![doc];
        for seg in &self.segments {
            let mut out = Vec::new();
            for n in nodes {
                apply(seg, n, &mut out);
            }
            nodes = out;
        }
        Selection::Many(nodes.into_iter().cloned().collect())
    }

    /// Names of the path's segments when it is a plain chain of names
    /// (used by ResultPath, which may only be a definite path).
    pub fn definite_steps(&self) -> Option<Vec<Step>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Name(n) => Some(Step::Name(n.clone())),
                Segment::Index(i) => Some(Step::Index(*i)),
                _ => None,
            })
            .collect()
    }

    /// Renders the path in bracket notation, as AWS does in error causes.
    pub fn bracketed(&self) -> String {
        let mut s = String::from("$");
        for seg in &self.segments {
            match seg {
                Segment::Name(n) => s.push_str(&format!("['{n}']")),
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
                _ => return self.text.clone(),
            }
        }
        s
    }
}

/// A step of a definite path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Name(String),
    Index(i64),
}

fn index(a: &[Value], i: i64) -> Option<&Value> {
    let idx = if i < 0 { a.len() as i64 + i } else { i };
    if idx < 0 {
        None
    } else {
        a.get(idx as usize)
    }
}

fn apply<'a>(seg: &Segment, node: &'a Value, out: &mut Vec<&'a Value>) {
    match (seg, node) {
        (Segment::Name(n), Value::Object(m)) => out.extend(m.get(n)),
        (Segment::Index(i), Value::Array(a)) => out.extend(index(a, *i)),
        (Segment::Wildcard, Value::Object(m)) => out.extend(m.values()),
        (Segment::Wildcard, Value::Array(a)) => out.extend(a.iter()),
        (Segment::Slice(start, end, step), Value::Array(a)) => {
            let len = a.len() as i64;
            let norm = |v: i64| {
                if v < 0 {
                    (len.saturating_add(v)).max(0)
                } else {
                    v.min(len)
                }
            };
            let step = step.unwrap_or(1);
            if step > 0 {
                let s = start.map(norm).unwrap_or(0);
                let e = end.map(norm).unwrap_or(len);
                let mut i = s;
                while i < e {
                    out.push(&a[i as usize]);
                    i = i.saturating_add(step);
                }
            }
        }
        (Segment::Union(items), _) => {
            for it in items {
                match (it, node) {
                    (UnionItem::Name(n), Value::Object(m)) => out.extend(m.get(n)),
                    (UnionItem::Index(i), Value::Array(a)) => out.extend(index(a, *i)),
                    _ => {}
                }
            }
        }
        (Segment::Recursive(inner), _) => descend(inner, node, out),
        (Segment::Filter(f), Value::Array(a)) => {
            out.extend(a.iter().filter(|v| filter_matches(f, v)));
        }
        (Segment::Filter(f), Value::Object(m)) => {
            out.extend(m.values().filter(|v| filter_matches(f, v)));
        }
        _ => {}
    }
}

fn descend<'a>(inner: &Segment, node: &'a Value, out: &mut Vec<&'a Value>) {
    apply(inner, node, out);
    match node {
        Value::Object(m) => m.values().for_each(|v| descend(inner, v, out)),
        Value::Array(a) => a.iter().for_each(|v| descend(inner, v, out)),
        _ => {}
    }
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let mut cur = item;
    for seg in &f.path {
        let next = match (seg, cur) {
            (Segment::Name(n), Value::Object(m)) => m.get(n),
            (Segment::Index(i), Value::Array(a)) => index(a, *i),
            _ => None,
        };
        match next {
            Some(v) => cur = v,
            None => return false,
        }
    }
    let Some((op, rhs)) = &f.cmp else {
        return true;
    };
    let ord = match (cur, rhs) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) => {
            if a == b {
                Some(std::cmp::Ordering::Equal)
            } else {
                return *op == CmpOp::Ne;
            }
        }
    };
    let Some(ord) = ord else { return false };
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Eq => ord == Equal,
        CmpOp::Ne => ord != Equal,
        CmpOp::Lt => ord == Less,
        CmpOp::Le => ord != Greater,
        CmpOp::Gt => ord == Greater,
        CmpOp::Ge => ord != Less,
    }
}

fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '.' | '[' | ']' | ' ' | '(' | ')' | ',' | '\'' | '"' | '=' | '<' | '>' | '!' | '@'
    )
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "invalid path '{}': {what} at offset {}",
            self.text, self.pos
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Parses segments until the end, or (inside a filter) until `)` or an operator.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, String> {
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                None => return Ok(segs),
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        let inner = if self.peek() == Some('[') {
                            self.bracket()?
                        } else if self.eat('*') {
                            Segment::Wildcard
                        } else {
                            Segment::Name(self.name()?)
                        };
                        segs.push(Segment::Recursive(Box::new(inner)));
                    } else if self.eat('*') {
                        segs.push(Segment::Wildcard);
                    } else {
                        segs.push(Segment::Name(self.name()?));
                    }
                }
                Some('[') => segs.push(self.bracket()?),
                Some(_) if in_filter => return Ok(segs),
                Some(_) => return Err(self.err("unexpected character")),
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a field name"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn skip_ws(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = self.peek().ok_or_else(|| self.err("expected a quote"))?;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                // Only an escaped quote is an escape; other backslashes are literal.
                Some('\\') if self.chars.get(self.pos + 1) == Some(&q) => {
                    s.push(q);
                    self.pos += 2;
                }
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Option<i64> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        if s.is_empty() || s == "-" {
            self.pos = start;
            None
        } else {
            s.parse().ok()
        }
    }

    fn bracket(&mut self) -> Result<Segment, String> {
        self.pos += 1; // '['
        self.skip_ws();
        let seg = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                if !self.eat('(') {
                    return Err(self.err("expected '(' after '?'"));
                }
                self.skip_ws();
                if !self.eat('@') {
                    return Err(self.err("filter must start with '@'"));
                }
                let path = self.segments(true)?;
                self.skip_ws();
                let cmp = if self.peek() == Some(')') {
                    None
                } else {
                    let op = self.op()?;
                    self.skip_ws();
                    let v = self.literal()?;
                    Some((op, v))
                };
                self.skip_ws();
                if !self.eat(')') {
                    return Err(self.err("expected ')' closing the filter"));
                }
                Segment::Filter(Filter { path, cmp })
            }
            Some('\'') | Some('"') => {
                let mut names = vec![UnionItem::Name(self.quoted()?)];
                self.skip_ws();
                while self.eat(',') {
                    self.skip_ws();
                    names.push(UnionItem::Name(self.quoted()?));
                    self.skip_ws();
                }
                if names.len() == 1 {
                    match names.pop() {
                        Some(UnionItem::Name(n)) => Segment::Name(n),
                        _ => return Err(self.err("bad name")),
                    }
                } else {
                    Segment::Union(names)
                }
            }
            _ => {
                let first = self.int();
                self.skip_ws();
                if self.eat(':') {
                    let end = self.int();
                    let step = if self.eat(':') { self.int() } else { None };
                    Segment::Slice(first, end, step)
                } else if self.peek() == Some(',') {
                    let mut items = vec![UnionItem::Index(
                        first.ok_or_else(|| self.err("expected an index"))?,
                    )];
                    while self.eat(',') {
                        self.skip_ws();
                        items.push(UnionItem::Index(
                            self.int().ok_or_else(|| self.err("expected an index"))?,
                        ));
                        self.skip_ws();
                    }
                    Segment::Union(items)
                } else {
                    Segment::Index(first.ok_or_else(|| self.err("expected an index"))?)
                }
            }
        };
        self.skip_ws();
        if !self.eat(']') {
            return Err(self.err("expected ']'"));
        }
        Ok(seg)
    }

    fn op(&mut self) -> Result<CmpOp, String> {
        let two: String = self.chars[self.pos..(self.pos + 2).min(self.chars.len())]
            .iter()
            .collect();
        let (op, n) = match two.as_str() {
            "==" => (CmpOp::Eq, 2),
            "!=" => (CmpOp::Ne, 2),
            "<=" => (CmpOp::Le, 2),
            ">=" => (CmpOp::Ge, 2),
            _ if two.starts_with('<') => (CmpOp::Lt, 1),
            _ if two.starts_with('>') => (CmpOp::Gt, 1),
            _ => return Err(self.err("expected a comparison operator")),
        };
        self.pos += n;
        Ok(op)
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('\'') | Some('"') => Ok(Value::String(self.quoted()?)),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ')' && c != ' ') {
                    self.pos += 1;
                }
                let s: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str(&s).map_err(|_| self.err("expected a literal"))
            }
        }
    }
}

/// Writes `value` at a definite path inside `doc`, creating objects on the way.
/// Fails when an intermediate node is not an object (or array for indexes).
pub fn set_at(doc: &mut Value, steps: &[Step], value: Value) -> Result<(), String> {
    let Some((first, rest)) = steps.split_first() else {
        *doc = value;
        return Ok(());
    };
    match first {
        Step::Name(n) => {
            let Value::Object(m) = doc else {
                return Err(format!(
                    "cannot set field '{n}' on a non-object value {}",
                    doc
                ));
            };
            let slot = m
                .entry(n.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !rest.is_empty() && !slot.is_object() && !slot.is_array() {
                *slot = Value::Object(Map::new());
            }
            set_at(slot, rest, value)
        }
        Step::Index(i) => {
            let Value::Array(a) = doc else {
                return Err(format!("cannot index a non-array value with [{i}]"));
            };
            let len = a.len() as i64;
            let idx = if *i < 0 { len + i } else { *i };
            match usize::try_from(idx).ok().and_then(|i| a.get_mut(i)) {
                Some(slot) => set_at(slot, rest, value),
                None => Err(format!("index [{i}] is out of bounds")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(p: &str, doc: &Value) -> Selection {
        JsonPath::parse(p).expect("parse").select(doc)
    }

    #[test]
    fn definite_paths() {
        let doc = json!({"a": {"b": [10, 20, {"c": "x"}]}, "we ird": 1});
        assert_eq!(sel("$", &doc), Selection::One(doc.clone()));
        assert_eq!(sel("$.a.b[1]", &doc), Selection::One(json!(20)));
        assert_eq!(sel("$.a.b[-1].c", &doc), Selection::One(json!("x")));
        assert_eq!(sel("$['we ird']", &doc), Selection::One(json!(1)));
        assert_eq!(sel("$.a.nope", &doc), Selection::Missing);
        assert_eq!(sel("$.a.b[9]", &doc), Selection::Missing);
    }

    #[test]
    fn indefinite_paths() {
        let doc = json!({"items": [{"v": 1}, {"v": 2}, {"v": 3}, {"w": 4}]});
        assert_eq!(
            sel("$.items[*].v", &doc),
            Selection::Many(vec![json!(1), json!(2), json!(3)])
        );
        assert_eq!(
            sel("$.items[1:3].v", &doc),
            Selection::Many(vec![json!(2), json!(3)])
        );
        assert_eq!(
            sel("$..v", &doc),
            Selection::Many(vec![json!(1), json!(2), json!(3)])
        );
        assert_eq!(
            sel("$.items[?(@.v >= 2)].v", &doc),
            Selection::Many(vec![json!(2), json!(3)])
        );
        assert_eq!(sel("$.missing[*]", &doc), Selection::Many(vec![]));
    }

    #[test]
    fn extreme_slices_do_not_overflow() {
        let doc = json!([1, 2, 3]);
        assert_eq!(
            sel("$[0:3:9223372036854775807]", &doc),
            Selection::Many(vec![json!(1)])
        );
        assert_eq!(
            sel("$[-9223372036854775808:2]", &doc),
            Selection::Many(vec![json!(1), json!(2)])
        );
        assert_eq!(sel("$[-9223372036854775808]", &doc), Selection::Missing);
    }

    #[test]
    fn roots() {
        assert_eq!(
            JsonPath::parse("$$.Execution.Id").expect("p").root,
            Root::Context
        );
        assert_eq!(
            JsonPath::parse("$myVar.x").expect("p").root,
            Root::Variable("myVar".into())
        );
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
    }

    #[test]
    fn set_creates_objects() {
        let mut doc = json!({"a": 1});
        set_at(
            &mut doc,
            &[Step::Name("b".into()), Step::Name("c".into())],
            json!(2),
        )
        .expect("set");
        assert_eq!(doc, json!({"a": 1, "b": {"c": 2}}));
        let mut s = json!("str");
        assert!(set_at(&mut s, &[Step::Name("x".into())], json!(1)).is_err());
    }
}
