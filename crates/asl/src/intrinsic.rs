//! Intrinsic functions (`States.Format(...)` and friends): a parser that runs
//! when the definition is loaded, and an evaluator that runs per state.

use crate::path::JsonPath;
use base64::Engine as _;
use serde_json::{Map, Number, Value};
use sha2::Digest;

/// A parsed intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Literal(Value),
    Path(JsonPath),
    Call(Call),
}

const FUNCTIONS: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// Most intrinsic calls one field may hold, nested ones included (AWS: 10).
pub const MAX_CALLS_PER_FIELD: usize = 10;

/// Longest string States.Base64Encode, States.Base64Decode and States.Hash accept.
pub const MAX_STRING_ARG_CHARS: usize = 10_000;

/// Most items States.ArrayRange may produce.
pub const MAX_RANGE_ITEMS: usize = 1000;

/// True when `s` looks like an intrinsic call (`States.X(`).
pub fn looks_like_call(s: &str) -> bool {
    s.trim_start().starts_with("States.") && s.contains('(')
}

impl Call {
    /// Parses a whole call; the text must contain exactly one call.
    pub fn parse(text: &str) -> Result<Call, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = CallParser {
            chars: &chars,
            pos: 0,
            text,
            calls: 0,
        };
        p.ws();
        let call = p.call()?;
        p.ws();
        if p.pos != chars.len() {
            return Err(format!(
                "unexpected text after the intrinsic function call in '{text}'"
            ));
        }
        Ok(call)
    }
}

struct CallParser<'a> {
    chars: &'a [char],
    pos: usize,
    text: &'a str,
    /// Calls seen so far; also bounds the parser's recursion.
    calls: usize,
}

impl CallParser<'_> {
    fn err(&self, what: &str) -> String {
        format!(
            "invalid intrinsic function '{}': {what} at offset {}",
            self.text, self.pos
        )
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(format!("unknown intrinsic function '{name}'"));
        }
        self.calls += 1;
        if self.calls > MAX_CALLS_PER_FIELD {
            return Err(format!(
                "'{}' holds more than {MAX_CALLS_PER_FIELD} intrinsic function calls (the limit for one field, nested calls included)",
                self.text
            ));
        }
        self.ws();
        if self.peek() != Some('(') {
            return Err(self.err("expected '('"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Call { name, args });
        }
        loop {
            self.ws();
            args.push(self.arg()?);
            self.ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                _ => return Err(self.err("expected ',' or ')'")),
            }
        }
    }

    fn arg(&mut self) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.err("unterminated string literal")),
                        Some('\\') => {
                            self.pos += 1;
                            match self.peek() {
                                // Keep `\{`/`\}` escaped: States.Format interprets them.
                                Some(c @ ('{' | '}')) => {
                                    s.push('\\');
                                    s.push(c);
                                }
                                Some(c) => s.push(c),
                                None => return Err(self.err("dangling escape")),
                            }
                            self.pos += 1;
                        }
                        Some('\'') => {
                            self.pos += 1;
                            return Ok(Arg::Literal(Value::String(s)));
                        }
                        Some(c) => {
                            s.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some('$') => {
                let start = self.pos;
                let mut depth = 0i32;
                let mut quote: Option<char> = None;
                while let Some(c) = self.peek() {
                    if let Some(q) = quote {
                        if c == q {
                            quote = None;
                        }
                    } else {
                        match c {
                            '\'' | '"' => quote = Some(c),
                            '[' | '(' => depth += 1,
                            ']' => depth -= 1,
                            ')' if depth == 0 => break,
                            ')' => depth -= 1,
                            ',' if depth == 0 => break,
                            _ => {}
                        }
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                Ok(Arg::Path(JsonPath::parse(text.trim_end())?))
            }
            Some('S') => Ok(Arg::Call(self.call()?)),
            Some(_) => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c != ',' && c != ')' && !c.is_whitespace())
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                        Ok(Arg::Literal(v))
                    }
                    _ => Err(self.err(&format!("invalid argument '{text}'"))),
                }
            }
            None => Err(self.err("expected an argument")),
        }
    }
}

/// Everything an intrinsic may need from its surroundings.
pub trait Env {
    /// Resolves a path argument; `Err` is a runtime error message.
    fn resolve(&self, path: &JsonPath) -> Result<Value, String>;
    /// Next pseudo-random 64 bits (deterministic per execution).
    fn random(&mut self) -> u64;
}

/// Evaluates a call. `Err` holds the cause for `States.Runtime`.
pub fn eval(call: &Call, env: &mut dyn Env) -> Result<Value, String> {
    let mut args = Vec::with_capacity(call.args.len());
    for a in &call.args {
        args.push(match a {
            Arg::Literal(v) => v.clone(),
            Arg::Path(p) => env.resolve(p)?,
            Arg::Call(c) => eval(c, env)?,
        });
    }
    let name = call.name.as_str();
    let arity = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "The function {name} takes exactly {n} argument(s) but received {}",
                args.len()
            ))
        }
    };
    let bad = |what: &str| format!("{name}: {what}");
    let limited = |s: &str| -> Result<(), String> {
        let n = s.chars().count();
        if n > MAX_STRING_ARG_CHARS {
            Err(format!(
                "{name}: the input string has {n} characters; the limit is {MAX_STRING_ARG_CHARS}"
            ))
        } else {
            Ok(())
        }
    };
    match name {
        "States.Format" => {
            let Some(Value::String(tpl)) = args.first() else {
                return Err(bad("the first argument must be a string template"));
            };
            format(tpl, &args[1..])
                .map(Value::String)
                .map_err(|e| bad(&e))
        }
        "States.StringToJson" => {
            arity(1)?;
            let s = str_arg(&args[0]).ok_or_else(|| bad("expects a string"))?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(s).map_err(|e| bad(&format!("invalid JSON text: {e}")))
        }
        "States.JsonToString" => {
            arity(1)?;
            serde_json::to_string(&args[0])
                .map(Value::String)
                .map_err(|e| bad(&e.to_string()))
        }
        "States.Array" => Ok(Value::Array(args)),
        "States.ArrayPartition" => {
            arity(2)?;
            let arr = args[0].as_array().ok_or_else(|| bad("expects an array"))?;
            let size = int_arg(&args[1]).ok_or_else(|| bad("chunk size must be an integer"))?;
            if size <= 0 {
                return Err(bad("chunk size must be greater than 0"));
            }
            Ok(Value::Array(
                arr.chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "States.ArrayContains" => {
            arity(2)?;
            let arr = args[0].as_array().ok_or_else(|| bad("expects an array"))?;
            Ok(Value::Bool(arr.iter().any(|v| json_eq(v, &args[1]))))
        }
        "States.ArrayRange" => {
            arity(3)?;
            let (Some(start), Some(end), Some(step)) =
                (int_arg(&args[0]), int_arg(&args[1]), int_arg(&args[2]))
            else {
                return Err(bad("arguments must be integers"));
            };
            if step == 0 {
                return Err(bad("step must not be 0"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                out.push(Value::from(i));
                if out.len() > MAX_RANGE_ITEMS {
                    return Err(bad(&format!(
                        "the range has more than {MAX_RANGE_ITEMS} items"
                    )));
                }
                // Stepping past i64's range ends the range (found by fuzzing).
                match i.checked_add(step) {
                    Some(n) => i = n,
                    None => break,
                }
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            arity(2)?;
            let arr = args[0].as_array().ok_or_else(|| bad("expects an array"))?;
            let idx = int_arg(&args[1]).ok_or_else(|| bad("index must be an integer"))?;
            usize::try_from(idx)
                .ok()
                .and_then(|i| arr.get(i))
                .cloned()
                .ok_or_else(|| bad(&format!("index {idx} is out of bounds")))
        }
        "States.ArrayLength" => {
            arity(1)?;
            let arr = args[0].as_array().ok_or_else(|| bad("expects an array"))?;
            Ok(Value::from(arr.len()))
        }
        "States.ArrayUnique" => {
            arity(1)?;
            let arr = args[0].as_array().ok_or_else(|| bad("expects an array"))?;
            let mut out: Vec<Value> = Vec::new();
            for v in arr {
                if !out.iter().any(|o| json_eq(o, v)) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            arity(1)?;
            let s = str_arg(&args[0]).ok_or_else(|| bad("expects a string"))?;
            limited(s)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            ))
        }
        "States.Base64Decode" => {
            arity(1)?;
            let s = str_arg(&args[0]).ok_or_else(|| bad("expects a string"))?;
            limited(s)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| bad(&format!("invalid base64: {e}")))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| bad("decoded bytes are not UTF-8"))
        }
        "States.Hash" => {
            arity(2)?;
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                Value::Null => return Err(bad("data must not be null")),
                other => other.to_string(),
            };
            limited(&data)?;
            let alg = str_arg(&args[1]).ok_or_else(|| bad("algorithm must be a string"))?;
            let hex = match alg {
                "MD5" => to_hex(&md5::Md5::digest(data.as_bytes())),
                "SHA-1" => to_hex(&sha1::Sha1::digest(data.as_bytes())),
                "SHA-256" => to_hex(&sha2::Sha256::digest(data.as_bytes())),
                "SHA-384" => to_hex(&sha2::Sha384::digest(data.as_bytes())),
                "SHA-512" => to_hex(&sha2::Sha512::digest(data.as_bytes())),
                other => {
                    return Err(bad(&format!(
                    "unknown algorithm '{other}' (allowed: MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
                )))
                }
            };
            Ok(Value::String(hex))
        }
        "States.JsonMerge" => {
            arity(3)?;
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err(bad("the first two arguments must be objects"));
            };
            if args[2] != Value::Bool(false) {
                return Err(bad("only shallow merge (false) is supported"));
            }
            let mut out: Map<String, Value> = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        "States.MathRandom" => {
            if args.len() != 2 && args.len() != 3 {
                return Err(bad("takes 2 or 3 arguments"));
            }
            let (Some(start), Some(end)) = (int_arg(&args[0]), int_arg(&args[1])) else {
                return Err(bad("start and end must be integers"));
            };
            if end <= start {
                return Err(bad("end must be greater than start"));
            }
            let span = end.abs_diff(start);
            let r = match args.get(2) {
                Some(seed) => {
                    let s = int_arg(seed).ok_or_else(|| bad("seed must be an integer"))?;
                    splitmix(s as u64)
                }
                None => env.random(),
            };
            Ok(Value::from(start.wrapping_add((r % span) as i64)))
        }
        "States.MathAdd" => {
            arity(2)?;
            let (Some(a), Some(b)) = (args[0].as_f64(), args[1].as_f64()) else {
                return Err(bad("arguments must be numbers"));
            };
            java_round(a)
                .checked_add(java_round(b))
                .map(Value::from)
                .ok_or_else(|| bad("the sum is out of the integer range"))
        }
        "States.StringSplit" => {
            arity(2)?;
            let (Some(s), Some(d)) = (str_arg(&args[0]), str_arg(&args[1])) else {
                return Err(bad("arguments must be strings"));
            };
            let parts = s
                .split(|c: char| d.contains(c))
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_string()))
                .collect();
            Ok(Value::Array(parts))
        }
        "States.UUID" => {
            arity(0)?;
            let hi = env.random();
            let lo = env.random();
            Ok(Value::String(uuid_v4(hi, lo)))
        }
        other => Err(format!("unknown intrinsic function '{other}'")),
    }
}

fn str_arg(v: &Value) -> Option<&str> {
    v.as_str()
}

fn int_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

fn java_round(x: f64) -> i64 {
    (x + 0.5).floor() as i64
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One step of the splitmix64 generator.
pub fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uuid_v4(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_eq(x: &Number, y: &Number) -> bool {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => a == b,
        _ => match (x.as_u64(), y.as_u64()) {
            (Some(a), Some(b)) => a == b,
            _ => x.as_f64() == y.as_f64(),
        },
    }
}

/// Renders a value the way States.Format inserts it.
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn format(tpl: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = tpl.chars().peekable();
    let mut next = 0;
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(e) => out.push(e),
                None => out.push('\\'),
            },
            '{' if it.peek() == Some(&'}') => {
                it.next();
                let v = args.get(next).ok_or_else(|| {
                    format!(
                        "the template has more placeholders than the {} argument(s) given",
                        args.len()
                    )
                })?;
                out.push_str(&format_value(v));
                next += 1;
            }
            c => out.push(c),
        }
    }
    if next != args.len() {
        return Err(format!(
            "the template has {next} placeholder(s) but {} argument(s) were given",
            args.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Selection;
    use serde_json::json;

    struct Doc(Value, u64);
    impl Env for Doc {
        fn resolve(&self, p: &JsonPath) -> Result<Value, String> {
            match p.select(&self.0) {
                Selection::One(v) => Ok(v),
                Selection::Many(v) => Ok(Value::Array(v)),
                Selection::Missing => Err(format!("no value at {}", p.text())),
            }
        }
        fn random(&mut self) -> u64 {
            self.1 = splitmix(self.1);
            self.1
        }
    }

    fn run(text: &str, doc: Value) -> Result<Value, String> {
        let call = Call::parse(text)?;
        eval(&call, &mut Doc(doc, 7))
    }

    #[test]
    fn format_and_escapes() {
        assert_eq!(
            run(
                "States.Format('a {} b \\{\\} {}', $.x, 'it\\'s')",
                json!({"x": 1})
            ),
            Ok(json!("a 1 b {} it's"))
        );
        assert!(run("States.Format('{}')", json!({})).is_err());
    }

    #[test]
    fn arrays_and_math() {
        assert_eq!(
            run("States.ArrayRange(1, 9, 2)", json!({})),
            Ok(json!([1, 3, 5, 7, 9]))
        );
        assert_eq!(
            run("States.ArrayPartition($.a, 2)", json!({"a": [1,2,3]})),
            Ok(json!([[1, 2], [3]]))
        );
        assert_eq!(run("States.MathAdd(1.49, 1.5)", json!({})), Ok(json!(3)));
        assert_eq!(run("States.MathAdd(-2.5, 0)", json!({})), Ok(json!(-2)));
        assert_eq!(
            run("States.ArrayUnique(States.Array(1, 1.0, 2))", json!({})),
            Ok(json!([1, 2]))
        );
        assert_eq!(
            run("States.StringSplit(', , ,', ',')", json!({})),
            Ok(json!([" ", " "]))
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(
            run("States.Base64Encode('hi')", json!({})),
            Ok(json!("aGk="))
        );
        assert_eq!(
            run("States.Base64Decode('aGk=')", json!({})),
            Ok(json!("hi"))
        );
        assert_eq!(
            run("States.Hash('input data', 'SHA-256')", json!({})),
            Ok(json!(
                "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"
            ))
        );
        let u = run("States.UUID()", json!({})).expect("uuid");
        assert_eq!(u.as_str().map(str::len), Some(36));
    }

    #[test]
    fn a_field_holds_at_most_ten_calls() {
        // Nine calls, as in AWS's documented example, are fine; eleven are not.
        let nine = "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.a, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.a, '/'), 2), '.'), 1))";
        assert!(Call::parse(nine).is_ok());
        let ten = format!("{}1{}", "States.Array(".repeat(10), ")".repeat(10));
        assert!(Call::parse(&ten).is_ok());
        let eleven = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
        let e = Call::parse(&eleven).expect_err("too many calls");
        assert!(e.contains("more than 10 intrinsic function calls"), "{e}");
        // Deep nesting is refused early instead of exhausting the stack.
        let deep = format!(
            "{}1{}",
            "States.Array(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(Call::parse(&deep).is_err());
    }

    #[test]
    fn string_arguments_are_limited_to_ten_thousand_characters() {
        let ok = "a".repeat(MAX_STRING_ARG_CHARS);
        let big = "a".repeat(MAX_STRING_ARG_CHARS + 1);
        for f in ["States.Base64Encode($.s)", "States.Hash($.s, 'MD5')"] {
            assert!(run(f, json!({ "s": ok })).is_ok(), "{f}");
            let e = run(f, json!({ "s": big })).expect_err("over the limit");
            assert!(e.contains("the limit is 10000"), "{f}: {e}");
        }
        let e = run("States.Base64Decode($.s)", json!({ "s": big })).expect_err("limit");
        assert!(e.contains("the limit is 10000"), "{e}");
        let e = run("States.ArrayRange(0, 1000, 1)", json!({})).expect_err("1001 items");
        assert!(e.contains("more than 1000 items"), "{e}");
        assert!(run("States.ArrayRange(1, 1000, 1)", json!({})).is_ok());
    }

    #[test]
    fn integer_edges_do_not_overflow() {
        // Fuzzing found ArrayRange stepping past i64::MAX.
        assert_eq!(
            run(
                "States.ArrayRange($.a, $.b, $.c)",
                json!({"a": 9223372036854775806i64, "b": 9223372036854775807i64, "c": 1000})
            ),
            Ok(json!([9223372036854775806i64]))
        );
        // The fuzzer's input: a step too large for i64 saturates to i64::MAX.
        assert_eq!(
            run("States.ArrayRange(1, 9, $.c)", json!({"c": 1e65})),
            Ok(json!([1]))
        );
        assert!(run("States.MathAdd(9223372036854775807, 1)", json!({})).is_err());
        let r = run(
            "States.MathRandom(-9223372036854775808, 9223372036854775807)",
            json!({}),
        )
        .expect("full-range random");
        assert!(r.is_i64());
    }

    #[test]
    fn parse_errors() {
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.Format('x'").is_err());
        assert!(Call::parse("States.Array(1) trailing").is_err());
    }
}
