//! Parsing and validation of a state machine definition into typed states.
//! Every problem found becomes a [`Diagnostic`] with a JSON pointer, and all
//! of them are reported together.

use crate::intrinsic::{self, Call};
use crate::path::{JsonPath, Root, Step};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// JSON pointer to the offending node, e.g. `/States/Check/Choices/0/Next`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// A definition that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DefinitionError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid state machine definition:")?;
        for d in &self.diagnostics {
            let at = if d.path.is_empty() { "/" } else { &d.path };
            write!(f, "\n  {at}: {}", d.message)?;
        }
        Ok(())
    }
}

/// A parsed, validated definition. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub(crate) def: Arc<Definition>,
}

#[derive(Debug)]
pub(crate) struct Definition {
    /// Scope 0 is the top level; Parallel branches and Map processors add more.
    pub scopes: Vec<Scope>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Scope {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub kind: Kind,
    pub input_path: PathField,
    pub output_path: PathField,
    pub result_path: ResultPath,
    pub transition: Transition,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone)]
pub(crate) enum Transition {
    Next(String),
    End,
    /// Choice, Succeed and Fail decide for themselves.
    None,
}

/// InputPath / OutputPath.
#[derive(Debug, Clone)]
pub(crate) enum PathField {
    /// Absent: `$`.
    Whole,
    /// `null`: an empty object.
    Null,
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub(crate) enum ResultPath {
    Whole,
    Discard,
    At(Vec<Step>),
}

/// A Parameters-like template, with `.$` fields precompiled.
#[derive(Debug, Clone)]
pub(crate) enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Path(JsonPath),
    Intrinsic(Call),
}

#[derive(Debug)]
pub(crate) enum Kind {
    Pass {
        parameters: Option<Template>,
        result: Option<Value>,
    },
    Task {
        resource: String,
        parameters: Option<Template>,
        result_selector: Option<Template>,
        retry: Vec<Retrier>,
        catch: Vec<Catcher>,
        timeout: Option<NumberSource>,
        heartbeat: Option<NumberSource>,
    },
    Choice {
        choices: Vec<ChoiceBranch>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<StringSource>,
        cause: Option<StringSource>,
    },
    Parallel {
        branches: Vec<usize>,
        parameters: Option<Template>,
        result_selector: Option<Template>,
        retry: Vec<Retrier>,
        catch: Vec<Catcher>,
    },
    Map(Box<MapSpec>),
}

#[derive(Debug)]
pub(crate) struct MapSpec {
    pub processor: usize,
    pub items_path: Option<JsonPath>,
    pub item_selector: Option<Template>,
    pub max_concurrency: Option<NumberSource>,
    pub tolerated_count: Option<NumberSource>,
    pub tolerated_percentage: Option<NumberSource>,
    pub result_selector: Option<Template>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// A number given literally or by a reference path.
#[derive(Debug, Clone)]
pub(crate) enum NumberSource {
    Literal(f64),
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub(crate) enum StringSource {
    Literal(String),
    Path(JsonPath),
    Intrinsic(Call),
}

#[derive(Debug, Clone)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(chrono::DateTime<chrono::Utc>),
    TimestampPath(JsonPath),
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    pub result_path: ResultPath,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone)]
pub(crate) struct ChoiceBranch {
    /// Position in the definition's Choices array (for diagnostics).
    pub index: usize,
    pub rule: Rule,
    pub next: String,
    pub assign: Option<Template>,
}

#[derive(Debug, Clone)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test {
        variable: JsonPath,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Value(Value),
    Path(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

/// Parses an ASL timestamp (RFC 3339 with an upper-case `T`).
pub(crate) fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if s.len() < 11 || s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

impl StateMachine {
    /// Parses and validates a JSON definition.
    pub fn parse(json: &str) -> Result<StateMachine, DefinitionError> {
        let value: Value = serde_json::from_str(json).map_err(|e| DefinitionError {
            diagnostics: vec![Diagnostic {
                path: String::new(),
                message: format!("the definition is not valid JSON: {e}"),
            }],
        })?;
        Self::from_value(&value)
    }

    /// Validates an already-parsed JSON definition.
    pub fn from_value(value: &Value) -> Result<StateMachine, DefinitionError> {
        let mut b = Builder {
            diags: Vec::new(),
            scopes: Vec::new(),
        };
        let timeout_seconds = b.top(value);
        if b.diags.is_empty() {
            Ok(StateMachine {
                def: Arc::new(Definition {
                    scopes: b.scopes,
                    timeout_seconds,
                }),
            })
        } else {
            Err(DefinitionError {
                diagnostics: b.diags,
            })
        }
    }

    pub(crate) fn scope(&self, id: usize) -> &Scope {
        &self.def.scopes[id]
    }
}

struct Builder {
    diags: Vec<Diagnostic>,
    scopes: Vec<Scope>,
}

fn ptr(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

const STATE_COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

impl Builder {
    fn diag(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            path: path.into(),
            message: message.into(),
        });
    }

    fn top(&mut self, value: &Value) -> Option<u64> {
        let Some(obj) = value.as_object() else {
            self.diag("", "the definition must be a JSON object");
            return None;
        };
        self.reject_jsonata(obj, "");
        self.unknown_fields(
            obj,
            "",
            &[
                "StartAt",
                "States",
                "Comment",
                "Version",
                "TimeoutSeconds",
                "QueryLanguage",
            ],
        );
        if let Some(v) = obj.get("Version") {
            if !v.is_string() {
                self.diag("/Version", "Version must be a string");
            }
        }
        let timeout = obj
            .get("TimeoutSeconds")
            .and_then(|v| self.uint(v, "/TimeoutSeconds"));
        self.scope(obj, "", false);
        timeout
    }

    fn reject_jsonata(&mut self, obj: &Map<String, Value>, at: &str) {
        match obj.get("QueryLanguage") {
            None => {}
            Some(Value::String(s)) if s == "JSONPath" => {}
            Some(Value::String(s)) if s == "JSONata" => self.diag(
                ptr(at, "QueryLanguage"),
                "JSONata is not supported; use JSONPath (the default)",
            ),
            Some(other) => self.diag(
                ptr(at, "QueryLanguage"),
                format!("QueryLanguage must be \"JSONPath\" or \"JSONata\", got {other}"),
            ),
        }
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, at: &str, allowed: &[&str]) {
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                self.diag(
                    ptr(at, k),
                    format!("unknown field '{k}' (allowed: {})", allowed.join(", ")),
                );
            }
        }
    }

    /// Builds a scope (top level, branch or item processor) and returns its id.
    fn scope(&mut self, obj: &Map<String, Value>, at: &str, nested: bool) -> usize {
        let id = self.scopes.len();
        self.scopes.push(Scope {
            start_at: String::new(),
            states: BTreeMap::new(),
        });
        if nested {
            self.unknown_fields(
                obj,
                at,
                &["StartAt", "States", "Comment", "ProcessorConfig"],
            );
        }
        let start_at = match obj.get("StartAt") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.diag(ptr(at, "StartAt"), "StartAt must be a string");
                String::new()
            }
            None => {
                self.diag(at.to_string(), "missing required field 'StartAt'");
                String::new()
            }
        };
        let states_at = ptr(at, "States");
        let mut states = BTreeMap::new();
        match obj.get("States") {
            Some(Value::Object(m)) if !m.is_empty() => {
                for (name, sv) in m {
                    let sat = ptr(&states_at, name);
                    if name.is_empty() || name.chars().count() > 80 {
                        self.diag(sat.clone(), "a state name must be 1 to 80 characters long");
                    }
                    if let Some(st) = self.state(sv, &sat) {
                        states.insert(name.clone(), st);
                    }
                }
            }
            Some(Value::Object(_)) => {
                self.diag(states_at.clone(), "States must hold at least one state")
            }
            Some(_) => self.diag(states_at.clone(), "States must be an object"),
            None => self.diag(at.to_string(), "missing required field 'States'"),
        }
        let all_names: BTreeSet<&String> = obj
            .get("States")
            .and_then(Value::as_object)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if !start_at.is_empty() && !all_names.is_empty() && !all_names.contains(&start_at) {
            self.diag(
                ptr(at, "StartAt"),
                format!("StartAt names '{start_at}', which is not a state in this scope"),
            );
        }
        // Transition targets and reachability.
        let mut edges: BTreeMap<&String, Vec<(String, String)>> = BTreeMap::new();
        for (name, st) in &states {
            let sat = ptr(&states_at, name);
            let mut out = Vec::new();
            if let Transition::Next(n) = &st.transition {
                out.push((ptr(&sat, "Next"), n.clone()));
            }
            match &st.kind {
                Kind::Choice { choices, default } => {
                    for c in choices {
                        out.push((format!("{sat}/Choices/{}/Next", c.index), c.next.clone()));
                    }
                    if let Some(d) = default {
                        out.push((ptr(&sat, "Default"), d.clone()));
                    }
                }
                Kind::Task { catch, .. } | Kind::Parallel { catch, .. } => {
                    for (i, c) in catch.iter().enumerate() {
                        out.push((format!("{sat}/Catch/{i}/Next"), c.next.clone()));
                    }
                }
                Kind::Map(m) => {
                    for (i, c) in m.catch.iter().enumerate() {
                        out.push((format!("{sat}/Catch/{i}/Next"), c.next.clone()));
                    }
                }
                _ => {}
            }
            edges.insert(name, out);
        }
        for outs in edges.values() {
            for (p, target) in outs {
                if !all_names.contains(target) {
                    self.diags.push(Diagnostic {
                        path: p.clone(),
                        message: format!("'{target}' is not a state in this scope"),
                    });
                }
            }
        }
        if all_names.contains(&start_at) && states.len() == all_names.len() {
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut todo = vec![start_at.clone()];
            while let Some(n) = todo.pop() {
                if !seen.insert(n.clone()) {
                    continue;
                }
                if let Some(outs) = edges.get(&n) {
                    todo.extend(outs.iter().map(|(_, t)| t.clone()));
                }
            }
            for name in &all_names {
                if !seen.contains(*name) {
                    self.diag(
                        ptr(&states_at, name),
                        format!("state '{name}' is unreachable from StartAt '{start_at}'"),
                    );
                }
            }
        }
        self.scopes[id] = Scope { start_at, states };
        id
    }

    fn state(&mut self, v: &Value, at: &str) -> Option<State> {
        let Some(obj) = v.as_object() else {
            self.diag(at, "a state must be an object");
            return None;
        };
        self.reject_jsonata(obj, at);
        let ty = match obj.get("Type") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                self.diag(ptr(at, "Type"), "Type must be a string");
                return None;
            }
            None => {
                self.diag(at, "missing required field 'Type'");
                return None;
            }
        };
        let extra: &[&str] = match ty {
            "Pass" => &[
                "Next",
                "End",
                "InputPath",
                "OutputPath",
                "Parameters",
                "ResultPath",
                "Result",
                "Assign",
            ],
            "Task" => &[
                "Next",
                "End",
                "InputPath",
                "OutputPath",
                "Parameters",
                "ResultSelector",
                "ResultPath",
                "Resource",
                "Retry",
                "Catch",
                "TimeoutSeconds",
                "TimeoutSecondsPath",
                "HeartbeatSeconds",
                "HeartbeatSecondsPath",
                "Credentials",
                "Assign",
            ],
            "Choice" => &["InputPath", "OutputPath", "Choices", "Default", "Assign"],
            "Wait" => &[
                "Next",
                "End",
                "InputPath",
                "OutputPath",
                "Seconds",
                "SecondsPath",
                "Timestamp",
                "TimestampPath",
                "Assign",
            ],
            "Succeed" => &["InputPath", "OutputPath"],
            "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
            "Parallel" => &[
                "Next",
                "End",
                "InputPath",
                "OutputPath",
                "Parameters",
                "ResultSelector",
                "ResultPath",
                "Retry",
                "Catch",
                "Branches",
                "Assign",
            ],
            "Map" => &[
                "Next",
                "End",
                "InputPath",
                "OutputPath",
                "Parameters",
                "ResultSelector",
                "ResultPath",
                "Retry",
                "Catch",
                "ItemsPath",
                "ItemSelector",
                "ItemProcessor",
                "Iterator",
                "MaxConcurrency",
                "MaxConcurrencyPath",
                "ToleratedFailureCount",
                "ToleratedFailureCountPath",
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentagePath",
                "Label",
                "ItemBatcher",
                "ItemReader",
                "ResultWriter",
                "Assign",
            ],
            other => {
                self.diag(
                    ptr(at, "Type"),
                    format!("unknown state type '{other}' (allowed: Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)"),
                );
                return None;
            }
        };
        let allowed: Vec<&str> = STATE_COMMON.iter().chain(extra).copied().collect();
        self.unknown_fields(obj, at, &allowed);
        for f in ["ItemReader", "ResultWriter", "ItemBatcher"] {
            if obj.contains_key(f) {
                self.diag(ptr(at, f), format!("{f} is not supported by this engine"));
            }
        }

        let transition = if matches!(ty, "Choice" | "Succeed" | "Fail") {
            Transition::None
        } else {
            match (obj.get("Next"), obj.get("End")) {
                (Some(Value::String(n)), None) => Transition::Next(n.clone()),
                (None, Some(Value::Bool(true))) => Transition::End,
                (Some(_), Some(_)) => {
                    self.diag(at, "a state cannot have both 'Next' and 'End'");
                    Transition::End
                }
                (Some(_), None) => {
                    self.diag(ptr(at, "Next"), "Next must be a string");
                    Transition::End
                }
                (None, Some(Value::Bool(false))) | (None, None) => {
                    self.diag(at, format!("a {ty} state needs 'Next' or '\"End\": true'"));
                    Transition::End
                }
                (None, Some(_)) => {
                    self.diag(ptr(at, "End"), "End must be a boolean");
                    Transition::End
                }
            }
        };
        let input_path = self.path_field(obj, "InputPath", at);
        let output_path = self.path_field(obj, "OutputPath", at);
        let result_path = self.result_path(obj.get("ResultPath"), &ptr(at, "ResultPath"));
        let assign = self.assign(obj.get("Assign"), &ptr(at, "Assign"));
        let parameters = self.template_field(obj, "Parameters", at);
        let result_selector = self.template_field(obj, "ResultSelector", at);
        let retry = self.retriers(obj.get("Retry"), &ptr(at, "Retry"));
        let catch = self.catchers(obj.get("Catch"), &ptr(at, "Catch"));

        let kind = match ty {
            "Pass" => Kind::Pass {
                parameters,
                result: obj.get("Result").cloned(),
            },
            "Task" => {
                let resource = match obj.get("Resource") {
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => {
                        self.diag(ptr(at, "Resource"), "Resource must be a string (an ARN)");
                        String::new()
                    }
                    None => {
                        self.diag(at, "missing required field 'Resource'");
                        String::new()
                    }
                };
                let timeout = self.number_or_path(obj, "TimeoutSeconds", at, true);
                let heartbeat = self.number_or_path(obj, "HeartbeatSeconds", at, true);
                if let (Some(NumberSource::Literal(t)), Some(NumberSource::Literal(h))) =
                    (&timeout, &heartbeat)
                {
                    if h >= t {
                        self.diag(
                            ptr(at, "HeartbeatSeconds"),
                            "HeartbeatSeconds must be smaller than TimeoutSeconds",
                        );
                    }
                }
                Kind::Task {
                    resource,
                    parameters,
                    result_selector,
                    retry,
                    catch,
                    timeout,
                    heartbeat,
                }
            }
            "Choice" => self.choice(obj, at),
            "Wait" => self.wait(obj, at)?,
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail {
                error: self.string_source(obj, "Error", at),
                cause: self.string_source(obj, "Cause", at),
            },
            "Parallel" => {
                let mut branches = Vec::new();
                match obj.get("Branches") {
                    Some(Value::Array(a)) if !a.is_empty() => {
                        for (i, b) in a.iter().enumerate() {
                            let bat = format!("{at}/Branches/{i}");
                            match b.as_object() {
                                Some(bo) => branches.push(self.scope(bo, &bat, true)),
                                None => self.diag(bat, "a branch must be an object"),
                            }
                        }
                    }
                    Some(_) => self.diag(ptr(at, "Branches"), "Branches must be a non-empty array"),
                    None => self.diag(at, "missing required field 'Branches'"),
                }
                Kind::Parallel {
                    branches,
                    parameters,
                    result_selector,
                    retry,
                    catch,
                }
            }
            "Map" => {
                let proc_key = if obj.contains_key("ItemProcessor") {
                    "ItemProcessor"
                } else {
                    "Iterator"
                };
                let processor = match obj.get(proc_key) {
                    Some(Value::Object(p)) => {
                        if let Some(cfg) = p.get("ProcessorConfig") {
                            self.processor_config(cfg, &format!("{at}/{proc_key}/ProcessorConfig"));
                        }
                        self.scope(p, &ptr(at, proc_key), true)
                    }
                    Some(_) => {
                        self.diag(ptr(at, proc_key), format!("{proc_key} must be an object"));
                        return None;
                    }
                    None => {
                        self.diag(at, "missing required field 'ItemProcessor'");
                        return None;
                    }
                };
                if obj.contains_key("ItemSelector") && obj.contains_key("Parameters") {
                    self.diag(at, "use either ItemSelector or Parameters, not both");
                }
                let item_selector = self.template_field(obj, "ItemSelector", at).or(parameters);
                let items_path = match obj.get("ItemsPath") {
                    None => None,
                    Some(Value::String(s)) => self.path(s, &ptr(at, "ItemsPath")),
                    Some(_) => {
                        self.diag(ptr(at, "ItemsPath"), "ItemsPath must be a path string");
                        None
                    }
                };
                Kind::Map(Box::new(MapSpec {
                    processor,
                    items_path,
                    item_selector,
                    max_concurrency: self.number_or_path(obj, "MaxConcurrency", at, false),
                    tolerated_count: self.number_or_path(obj, "ToleratedFailureCount", at, false),
                    tolerated_percentage: self.number_or_path(
                        obj,
                        "ToleratedFailurePercentage",
                        at,
                        false,
                    ),
                    result_selector,
                    retry,
                    catch,
                }))
            }
            _ => return None,
        };
        Some(State {
            kind,
            input_path,
            output_path,
            result_path,
            transition,
            assign,
        })
    }

    fn processor_config(&mut self, cfg: &Value, at: &str) {
        let Some(o) = cfg.as_object() else {
            self.diag(at, "ProcessorConfig must be an object");
            return;
        };
        self.unknown_fields(o, at, &["Mode", "ExecutionType"]);
        if let Some(m) = o.get("Mode") {
            if !matches!(m.as_str(), Some("INLINE") | Some("DISTRIBUTED")) {
                self.diag(
                    ptr(at, "Mode"),
                    "Mode must be \"INLINE\" or \"DISTRIBUTED\"",
                );
            }
        }
    }

    fn uint(&mut self, v: &Value, at: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.diag(at, format!("expected a non-negative integer, got {v}"));
                None
            }
        }
    }

    fn path(&mut self, s: &str, at: &str) -> Option<JsonPath> {
        match JsonPath::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                self.diag(at, e);
                None
            }
        }
    }

    fn path_field(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> PathField {
        match obj.get(key) {
            None => PathField::Whole,
            Some(Value::Null) => PathField::Null,
            Some(Value::String(s)) => match self.path(s, &ptr(at, key)) {
                Some(p) => PathField::Path(p),
                None => PathField::Whole,
            },
            Some(_) => {
                self.diag(ptr(at, key), format!("{key} must be a path string or null"));
                PathField::Whole
            }
        }
    }

    fn result_path(&mut self, v: Option<&Value>, at: &str) -> ResultPath {
        match v {
            None => ResultPath::Whole,
            Some(Value::Null) => ResultPath::Discard,
            Some(Value::String(s)) => {
                let Some(p) = self.path(s, at) else {
                    return ResultPath::Whole;
                };
                match (&p.root, p.definite_steps()) {
                    (Root::Input, Some(steps)) if steps.is_empty() => ResultPath::Whole,
                    (Root::Input, Some(steps)) => ResultPath::At(steps),
                    _ => {
                        self.diag(
                            at,
                            "ResultPath must be a reference path into the input (only names and indexes)",
                        );
                        ResultPath::Whole
                    }
                }
            }
            Some(_) => {
                self.diag(at, "ResultPath must be a path string or null");
                ResultPath::Whole
            }
        }
    }

    fn template_field(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Option<Template> {
        obj.get(key).map(|v| self.template(v, &ptr(at, key)))
    }

    fn template(&mut self, v: &Value, at: &str) -> Template {
        match v {
            Value::Object(m) => {
                let mut fields = Vec::new();
                for (k, fv) in m {
                    let fat = ptr(at, k);
                    if let Some(name) = k.strip_suffix(".$") {
                        match fv {
                            Value::String(s) => {
                                if let Some(t) = self.dynamic(s, &fat) {
                                    fields.push((name.to_string(), t));
                                }
                            }
                            _ => self.diag(
                                fat,
                                format!("the value of '{k}' must be a path or intrinsic function string"),
                            ),
                        }
                    } else {
                        fields.push((k.clone(), self.template(fv, &fat)));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(a) => Template::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| self.template(x, &format!("{at}/{i}")))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// The value of a `.$` field: a path or an intrinsic call.
    fn dynamic(&mut self, s: &str, at: &str) -> Option<Template> {
        if intrinsic::looks_like_call(s) {
            match Call::parse(s) {
                Ok(c) => Some(Template::Intrinsic(c)),
                Err(e) => {
                    self.diag(at, e);
                    None
                }
            }
        } else {
            self.path(s, at).map(Template::Path)
        }
    }

    fn assign(&mut self, v: Option<&Value>, at: &str) -> Option<Template> {
        let v = v?;
        let Some(m) = v.as_object() else {
            self.diag(at, "Assign must be an object of variable names");
            return None;
        };
        for k in m.keys() {
            let name = k.strip_suffix(".$").unwrap_or(k);
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !ok {
                self.diag(ptr(at, k), format!("'{name}' is not a valid variable name"));
            }
        }
        Some(self.template(v, at))
    }

    fn string_source(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Option<StringSource> {
        let pkey = format!("{key}Path");
        match (obj.get(key), obj.get(&pkey)) {
            (Some(_), Some(_)) => {
                self.diag(at, format!("use either {key} or {pkey}, not both"));
                None
            }
            (Some(Value::String(s)), None) => Some(StringSource::Literal(s.clone())),
            (Some(_), None) => {
                self.diag(ptr(at, key), format!("{key} must be a string"));
                None
            }
            (None, Some(Value::String(s))) => match self.dynamic(s, &ptr(at, &pkey))? {
                Template::Path(p) => Some(StringSource::Path(p)),
                Template::Intrinsic(c) => Some(StringSource::Intrinsic(c)),
                _ => None,
            },
            (None, Some(_)) => {
                self.diag(ptr(at, &pkey), format!("{pkey} must be a path string"));
                None
            }
            (None, None) => None,
        }
    }

    fn number_or_path(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
        positive: bool,
    ) -> Option<NumberSource> {
        let pkey = format!("{key}Path");
        match (obj.get(key), obj.get(&pkey)) {
            (Some(_), Some(_)) => {
                self.diag(at, format!("use either {key} or {pkey}, not both"));
                None
            }
            (Some(v), None) => match v.as_f64() {
                Some(n) if n >= 0.0 && (!positive || n > 0.0) => Some(NumberSource::Literal(n)),
                _ => {
                    self.diag(
                        ptr(at, key),
                        format!(
                            "{key} must be a {} number",
                            if positive { "positive" } else { "non-negative" }
                        ),
                    );
                    None
                }
            },
            (None, Some(Value::String(s))) => self.path(s, &ptr(at, &pkey)).map(NumberSource::Path),
            (None, Some(_)) => {
                self.diag(ptr(at, &pkey), format!("{pkey} must be a path string"));
                None
            }
            (None, None) => None,
        }
    }

    fn wait(&mut self, obj: &Map<String, Value>, at: &str) -> Option<Kind> {
        let keys: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if keys.len() != 1 {
            self.diag(
                at,
                "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath",
            );
            return None;
        }
        let key = keys[0];
        let v = &obj[key];
        let fat = ptr(at, key);
        let w = match key {
            "Seconds" => WaitFor::Seconds(self.uint(v, &fat)?),
            "Timestamp" => match v.as_str().and_then(parse_timestamp) {
                Some(t) => WaitFor::Timestamp(t),
                None => {
                    self.diag(
                        fat,
                        "Timestamp must be an RFC 3339 timestamp like 2024-01-01T00:00:00Z",
                    );
                    return None;
                }
            },
            _ => {
                let Some(s) = v.as_str() else {
                    self.diag(fat, format!("{key} must be a path string"));
                    return None;
                };
                let p = self.path(s, &fat)?;
                if key == "SecondsPath" {
                    WaitFor::SecondsPath(p)
                } else {
                    WaitFor::TimestampPath(p)
                }
            }
        };
        Some(Kind::Wait(w))
    }

    fn choice(&mut self, obj: &Map<String, Value>, at: &str) -> Kind {
        let mut choices = Vec::new();
        match obj.get("Choices") {
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, c) in a.iter().enumerate() {
                    let cat = format!("{at}/Choices/{i}");
                    let Some(co) = c.as_object() else {
                        self.diag(cat, "a choice rule must be an object");
                        continue;
                    };
                    let next = match co.get("Next") {
                        Some(Value::String(s)) => s.clone(),
                        Some(_) => {
                            self.diag(ptr(&cat, "Next"), "Next must be a string");
                            continue;
                        }
                        None => {
                            self.diag(cat, "a top-level choice rule needs 'Next'");
                            continue;
                        }
                    };
                    let assign = self.assign(co.get("Assign"), &ptr(&cat, "Assign"));
                    if let Some(rule) = self.rule(co, &cat, true) {
                        choices.push(ChoiceBranch {
                            index: i,
                            rule,
                            next,
                            assign,
                        });
                    }
                }
            }
            Some(_) => self.diag(ptr(at, "Choices"), "Choices must be a non-empty array"),
            None => self.diag(at, "missing required field 'Choices'"),
        }
        let default = match obj.get("Default") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.diag(ptr(at, "Default"), "Default must be a state name");
                None
            }
        };
        Kind::Choice { choices, default }
    }

    fn rule(&mut self, o: &Map<String, Value>, at: &str, top: bool) -> Option<Rule> {
        let mut allowed: Vec<&str> = vec!["Variable", "And", "Or", "Not", "Comment"];
        if top {
            allowed.extend(["Next", "Assign"]);
        }
        for (name, _) in OPS {
            allowed.push(name);
        }
        let path_ops: Vec<String> = OPS.iter().map(|(n, _)| format!("{n}Path")).collect();
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) && !path_ops.contains(k) {
                if k == "Next" {
                    self.diag(ptr(at, k), "only top-level choice rules may have 'Next'");
                } else {
                    self.diag(ptr(at, k), format!("unknown field '{k}' in a choice rule"));
                }
            }
        }
        let ops: Vec<&String> = o
            .keys()
            .filter(|k| !matches!(k.as_str(), "Variable" | "Next" | "Assign" | "Comment"))
            .collect();
        if ops.len() != 1 {
            self.diag(
                at,
                format!(
                    "a choice rule needs exactly one operator, found {}",
                    if ops.is_empty() {
                        "none".to_string()
                    } else {
                        ops.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            );
            return None;
        }
        let key = ops[0].as_str();
        let val = &o[key];
        let kat = ptr(at, key);
        match key {
            "And" | "Or" => {
                let Some(arr) = val.as_array().filter(|a| !a.is_empty()) else {
                    self.diag(kat, format!("{key} must be a non-empty array of rules"));
                    return None;
                };
                if o.contains_key("Variable") {
                    self.diag(
                        ptr(at, "Variable"),
                        format!("a rule with {key} cannot have Variable"),
                    );
                }
                let mut rules = Vec::new();
                for (i, r) in arr.iter().enumerate() {
                    let rat = format!("{kat}/{i}");
                    match r.as_object() {
                        Some(ro) => rules.extend(self.rule(ro, &rat, false)),
                        None => self.diag(rat, "a choice rule must be an object"),
                    }
                }
                Some(if key == "And" {
                    Rule::And(rules)
                } else {
                    Rule::Or(rules)
                })
            }
            "Not" => {
                let Some(ro) = val.as_object() else {
                    self.diag(kat, "Not must be a rule object");
                    return None;
                };
                Some(Rule::Not(Box::new(self.rule(ro, &kat, false)?)))
            }
            _ => {
                let variable = match o.get("Variable") {
                    Some(Value::String(s)) => self.path(s, &ptr(at, "Variable"))?,
                    Some(_) => {
                        self.diag(ptr(at, "Variable"), "Variable must be a path string");
                        return None;
                    }
                    None => {
                        self.diag(at, format!("the {key} rule needs 'Variable'"));
                        return None;
                    }
                };
                let (base, is_path) = match key.strip_suffix("Path") {
                    Some(b) if OPS.iter().any(|(n, _)| *n == b) => (b, true),
                    _ => (key, false),
                };
                let op = OPS.iter().find(|(n, _)| *n == base).map(|(_, op)| *op)?;
                let operand = if is_path {
                    match val.as_str() {
                        Some(s) => Operand::Path(self.path(s, &kat)?),
                        None => {
                            self.diag(kat, format!("{key} must be a path string"));
                            return None;
                        }
                    }
                } else {
                    let ok = match op {
                        Op::StringEquals
                        | Op::StringLessThan
                        | Op::StringGreaterThan
                        | Op::StringLessThanEquals
                        | Op::StringGreaterThanEquals
                        | Op::StringMatches => val.is_string(),
                        Op::NumericEquals
                        | Op::NumericLessThan
                        | Op::NumericGreaterThan
                        | Op::NumericLessThanEquals
                        | Op::NumericGreaterThanEquals => val.is_number(),
                        Op::TimestampEquals
                        | Op::TimestampLessThan
                        | Op::TimestampGreaterThan
                        | Op::TimestampLessThanEquals
                        | Op::TimestampGreaterThanEquals => {
                            val.as_str().and_then(parse_timestamp).is_some()
                        }
                        _ => val.is_boolean(),
                    };
                    if !ok {
                        let want = match op {
                            Op::NumericEquals
                            | Op::NumericLessThan
                            | Op::NumericGreaterThan
                            | Op::NumericLessThanEquals
                            | Op::NumericGreaterThanEquals => "a number",
                            Op::TimestampEquals
                            | Op::TimestampLessThan
                            | Op::TimestampGreaterThan
                            | Op::TimestampLessThanEquals
                            | Op::TimestampGreaterThanEquals => "an RFC 3339 timestamp string",
                            Op::StringEquals
                            | Op::StringLessThan
                            | Op::StringGreaterThan
                            | Op::StringLessThanEquals
                            | Op::StringGreaterThanEquals
                            | Op::StringMatches => "a string",
                            _ => "a boolean",
                        };
                        self.diag(kat, format!("{key} must be {want}, got {val}"));
                        return None;
                    }
                    Operand::Value(val.clone())
                };
                Some(Rule::Test {
                    variable,
                    op,
                    operand,
                })
            }
        }
    }

    fn errors_list(&mut self, o: &Map<String, Value>, at: &str) -> Vec<String> {
        let Some(arr) = o
            .get("ErrorEquals")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        else {
            self.diag(at, "ErrorEquals must be a non-empty array of error names");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, e) in arr.iter().enumerate() {
            match e.as_str() {
                Some(s) => out.push(s.to_string()),
                None => self.diag(
                    format!("{at}/ErrorEquals/{i}"),
                    "an error name must be a string",
                ),
            }
        }
        if out.iter().any(|e| e == "States.ALL") && out.len() > 1 {
            self.diag(
                ptr(at, "ErrorEquals"),
                "States.ALL must appear alone in ErrorEquals",
            );
        }
        out
    }

    fn check_all_last(&mut self, lists: &[Vec<String>], at: &str, what: &str) {
        for (i, l) in lists.iter().enumerate() {
            if l.iter().any(|e| e == "States.ALL") && i + 1 != lists.len() {
                self.diag(
                    format!("{at}/{i}/ErrorEquals"),
                    format!("a {what} with States.ALL must be the last one"),
                );
            }
        }
    }

    fn retriers(&mut self, v: Option<&Value>, at: &str) -> Vec<Retrier> {
        let Some(v) = v else { return Vec::new() };
        let Some(arr) = v.as_array() else {
            self.diag(at, "Retry must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in arr.iter().enumerate() {
            let rat = format!("{at}/{i}");
            let Some(o) = r.as_object() else {
                self.diag(rat, "a retrier must be an object");
                continue;
            };
            self.unknown_fields(
                o,
                &rat,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
            );
            let errors = self.errors_list(o, &rat);
            let interval_seconds = match o.get("IntervalSeconds") {
                None => 1,
                Some(v) => match v.as_u64().filter(|n| *n >= 1) {
                    Some(n) => n,
                    None => {
                        self.diag(
                            ptr(&rat, "IntervalSeconds"),
                            "IntervalSeconds must be an integer >= 1",
                        );
                        1
                    }
                },
            };
            let max_attempts = match o.get("MaxAttempts") {
                None => 3,
                Some(v) => self.uint(v, &ptr(&rat, "MaxAttempts")).unwrap_or(3),
            };
            let backoff_rate = match o.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64().filter(|n| *n >= 1.0) {
                    Some(n) => n,
                    None => {
                        self.diag(
                            ptr(&rat, "BackoffRate"),
                            "BackoffRate must be a number >= 1.0",
                        );
                        2.0
                    }
                },
            };
            let max_delay_seconds = o
                .get("MaxDelaySeconds")
                .and_then(|v| self.uint(v, &ptr(&rat, "MaxDelaySeconds")));
            if let Some(j) = o.get("JitterStrategy") {
                if !matches!(j.as_str(), Some("FULL") | Some("NONE")) {
                    self.diag(
                        ptr(&rat, "JitterStrategy"),
                        "JitterStrategy must be \"FULL\" or \"NONE\"",
                    );
                }
            }
            out.push(Retrier {
                errors,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
            });
        }
        let lists: Vec<Vec<String>> = out.iter().map(|r| r.errors.clone()).collect();
        self.check_all_last(&lists, at, "retrier");
        out
    }

    fn catchers(&mut self, v: Option<&Value>, at: &str) -> Vec<Catcher> {
        let Some(v) = v else { return Vec::new() };
        let Some(arr) = v.as_array() else {
            self.diag(at, "Catch must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in arr.iter().enumerate() {
            let cat = format!("{at}/{i}");
            let Some(o) = c.as_object() else {
                self.diag(cat, "a catcher must be an object");
                continue;
            };
            self.unknown_fields(
                o,
                &cat,
                &["ErrorEquals", "Next", "ResultPath", "Assign", "Comment"],
            );
            let errors = self.errors_list(o, &cat);
            let next = match o.get("Next") {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    self.diag(ptr(&cat, "Next"), "a catcher needs 'Next' naming a state");
                    continue;
                }
            };
            let result_path = self.result_path(o.get("ResultPath"), &ptr(&cat, "ResultPath"));
            let assign = self.assign(o.get("Assign"), &ptr(&cat, "Assign"));
            out.push(Catcher {
                errors,
                next,
                result_path,
                assign,
            });
        }
        let lists: Vec<Vec<String>> = out.iter().map(|r| r.errors.clone()).collect();
        self.check_all_last(&lists, at, "catcher");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diags(json: &str) -> Vec<Diagnostic> {
        match StateMachine::parse(json) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics,
        }
    }

    fn has(d: &[Diagnostic], path: &str) -> bool {
        d.iter().any(|x| x.path == path)
    }

    #[test]
    fn minimal_is_valid() {
        assert!(diags(r#"{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}"#).is_empty());
    }

    #[test]
    fn reports_start_and_next() {
        let d = diags(r#"{"StartAt":"X","States":{"A":{"Type":"Pass","Next":"B"}}}"#);
        assert!(has(&d, "/StartAt"), "{d:?}");
        assert!(has(&d, "/States/A/Next"), "{d:?}");
    }

    #[test]
    fn reports_unreachable_and_unknown_fields() {
        let d = diags(
            r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true,"Bogus":1},"B":{"Type":"Succeed"}}}"#,
        );
        assert!(has(&d, "/States/A/Bogus"), "{d:?}");
        assert!(has(&d, "/States/B"), "{d:?}");
    }

    #[test]
    fn choice_targets_and_states_all() {
        let d = diags(
            r#"{"StartAt":"C","States":{
              "C":{"Type":"Choice","Choices":[{"Variable":"$.x","NumericEquals":"1","Next":"T"},
                                              {"Variable":"$.x","BooleanEquals":true,"Next":"Nope"}],"Default":"T"},
              "T":{"Type":"Task","Resource":"r","End":true,
                   "Catch":[{"ErrorEquals":["States.ALL"],"Next":"T"},{"ErrorEquals":["X"],"Next":"T"}]}}}"#,
        );
        assert!(has(&d, "/States/C/Choices/0/NumericEquals"), "{d:?}");
        assert!(has(&d, "/States/C/Choices/1/Next"), "{d:?}");
        assert!(has(&d, "/States/T/Catch/0/ErrorEquals"), "{d:?}");
    }

    #[test]
    fn rejects_jsonata_and_terminal_next() {
        let d = diags(
            r#"{"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#,
        );
        assert!(d
            .iter()
            .any(|x| x.message.contains("JSONata is not supported")));
        let d = diags(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true,"Next":"A"}}}"#);
        assert!(has(&d, "/States/A"), "{d:?}");
        let d = diags(r#"{"StartAt":"A","States":{"A":{"Type":"Succeed","Next":"A"}}}"#);
        assert!(has(&d, "/States/A/Next"), "{d:?}");
    }

    #[test]
    fn display_lists_all() {
        let e = StateMachine::parse(r#"{"States":{}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("StartAt") && e.contains("States"), "{e}");
    }
}
