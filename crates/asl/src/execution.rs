//! The execution state machine. All time comes in as `now`; all work the
//! host must do goes out as [`TaskRequest`]s. Nothing here blocks or does IO.

use crate::choice::{self, Lookup};
use crate::definition::{
    Catcher, Kind, NumberSource, PathField, ResultPath, Retrier, StateMachine, StringSource,
    Template, Transition, WaitFor,
};
use crate::intrinsic::{self, splitmix};
use crate::path::{set_at, JsonPath, Root, Selection};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Largest execution input or state output AWS accepts (256 KiB of JSON text);
/// a larger state output fails the state with `States.DataLimitExceeded`.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Largest execution history AWS allows; past it the execution fails.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;

/// Who is running: feeds `$$.Execution.*` and `$$.StateMachine.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionContext {
    pub name: String,
    /// The execution ARN (or any unique id).
    pub id: String,
    pub state_machine_name: String,
    pub role_arn: Option<String>,
}

impl ExecutionContext {
    /// `$$.StateMachine.Id`: derived from an execution ARN when `id` is one.
    fn state_machine_id(&self) -> String {
        let parts: Vec<&str> = self.id.split(':').collect();
        if parts.len() >= 8 && parts[0] == "arn" && parts[5] == "execution" {
            format!("{}:stateMachine:{}", parts[..5].join(":"), parts[6])
        } else {
            self.state_machine_name.clone()
        }
    }
}

/// A task the host must perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub task_id: u64,
    pub state_name: String,
    pub resource: String,
    /// The effective input: after InputPath and Parameters.
    pub parameters: Value,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
}

/// How a task failed, as reported by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    pub error: String,
    pub cause: Option<String>,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded {
        output: Value,
    },
    /// A Fail state may leave `error` and `cause` empty.
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    TimedOut,
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

/// What the host should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// Tasks to run now, each exactly once per `task_id`.
    Tasks(Vec<TaskRequest>),
    /// Nothing runnable before this time.
    WaitUntil(DateTime<Utc>),
    /// Waiting only for outstanding task results.
    Idle,
    Done(Outcome),
}

/// One entry of the execution history, named like AWS's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub r#type: String,
    pub details: Value,
}

/// An error raised inside a state: `(error, cause)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Failure {
    error: Option<String>,
    cause: Option<String>,
}

impl Failure {
    fn new(error: &str, cause: impl Into<String>) -> Failure {
        Failure {
            error: Some(error.to_string()),
            cause: Some(cause.into()),
        }
    }
}

/// A line of execution: the top level, a Parallel branch or a Map iteration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Thread {
    scope: usize,
    parent: Option<(u64, usize)>,
    vars: Map<String, Value>,
    at: At,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum At {
    Entering { state: String, input: Value },
    In(Box<InState>),
    Succeeded(Value),
    Failed(Failure),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InState {
    name: String,
    raw_input: Value,
    /// Input after InputPath and Parameters/ItemsPath; what an attempt runs on.
    effective: Value,
    entered: DateTime<Utc>,
    entered_event: u64,
    retry_count: u64,
    attempts: Vec<u64>,
    phase: Phase,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Phase {
    /// Run (or re-run after a retry backoff) the state's work.
    Attempt,
    Task {
        task_id: u64,
        deadline: Option<DateTime<Utc>>,
        result: Option<Result<Value, TaskFailure>>,
    },
    Sleep {
        until: DateTime<Utc>,
        wake: Wake,
    },
    Children(Box<Children>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Wake {
    /// A Wait state ends with this output.
    Exit(Value),
    /// A retry backoff ended.
    Retry,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Children {
    is_map: bool,
    inputs: Vec<Value>,
    threads: Vec<Option<u64>>,
    results: Vec<Option<Value>>,
    started: usize,
    max_concurrency: usize,
    failures: usize,
    tolerated: usize,
    first_failure: Option<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InFlight {
    thread: u64,
    request: TaskRequest,
    /// Not persisted: a resumed execution hands unfinished tasks out again.
    #[serde(skip)]
    issued: bool,
}

/// The whole state of one execution. Serialize it after each step to resume later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    ctx: ExecutionContext,
    input: Value,
    start_time: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    status: ExecutionStatus,
    outcome: Option<Outcome>,
    threads: BTreeMap<u64, Thread>,
    tasks: BTreeMap<u64, InFlight>,
    next_thread: u64,
    next_task: u64,
    last_event: u64,
    rng: u64,
    events: Vec<HistoryEvent>,
    #[serde(default = "default_history_limit")]
    history_limit: u64,
}

fn default_history_limit() -> u64 {
    MAX_HISTORY_EVENTS
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn type_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Pass { .. } => "Pass",
        Kind::Task { .. } => "Task",
        Kind::Choice { .. } => "Choice",
        Kind::Wait(_) => "Wait",
        Kind::Succeed => "Succeed",
        Kind::Fail { .. } => "Fail",
        Kind::Parallel { .. } => "Parallel",
        Kind::Map(_) => "Map",
    }
}

/// Does a retrier/catcher's `ErrorEquals` cover `error`?
fn error_matches(list: &[String], error: Option<&str>) -> bool {
    let e = error.unwrap_or("");
    let terminal = matches!(e, "States.Runtime" | "States.DataLimitExceeded");
    list.iter().any(|name| match name.as_str() {
        "States.ALL" => !terminal,
        "States.TaskFailed" => !terminal && e != "States.Timeout",
        n => n == e,
    })
}

/// The context object `$$`, built only when a path reads it: building it
/// copies the execution input, which would make every state cost O(input).
struct Ctx<'a> {
    ex: &'a ExecutionContext,
    input: &'a Value,
    start: DateTime<Utc>,
    st: Option<&'a InState>,
    map_item: Option<(usize, &'a Value)>,
    built: std::cell::OnceCell<Value>,
}

impl<'a> Ctx<'a> {
    fn new(
        ex: &'a ExecutionContext,
        input: &'a Value,
        start: DateTime<Utc>,
        st: Option<&'a InState>,
        map_item: Option<(usize, &'a Value)>,
    ) -> Ctx<'a> {
        Ctx {
            ex,
            input,
            start,
            st,
            map_item,
            built: std::cell::OnceCell::new(),
        }
    }

    fn value(&self) -> &Value {
        self.built.get_or_init(|| {
            let mut c = json!({
                "Execution": {
                    "Id": self.ex.id,
                    "Input": self.input,
                    "Name": self.ex.name,
                    "RoleArn": self.ex.role_arn,
                    "StartTime": ts(&self.start),
                    "RedriveCount": 0,
                },
                "StateMachine": {"Id": self.ex.state_machine_id(), "Name": self.ex.state_machine_name},
            });
            if let Some(st) = self.st {
                c["State"] = json!({
                    "EnteredTime": ts(&st.entered),
                    "Name": st.name,
                    "RetryCount": st.retry_count,
                });
                if let Phase::Task { task_id, .. } = &st.phase {
                    c["Task"] = json!({"Token": format!("{}#{}", self.ex.id, task_id)});
                }
            }
            if let Some((i, v)) = self.map_item {
                c["Map"] = json!({"Item": {"Index": i, "Value": v}});
            }
            c
        })
    }
}

/// Path resolution against input, context and variables.
struct Env<'a> {
    input: &'a Value,
    ctx: &'a Ctx<'a>,
    vars: &'a Map<String, Value>,
    rng: &'a mut u64,
}

impl Env<'_> {
    fn select(&self, path: &JsonPath) -> Result<Selection, String> {
        let doc = match &path.root {
            Root::Input => self.input,
            Root::Context => self.ctx.value(),
            Root::Variable(name) => self
                .vars
                .get(name)
                .ok_or_else(|| format!("The variable '${name}' is not defined"))?,
        };
        Ok(path.select(doc))
    }

    fn get(&self, path: &JsonPath) -> Result<Option<Value>, String> {
        Ok(match self.select(path)? {
            Selection::One(v) => Some(v),
            Selection::Many(v) => Some(Value::Array(v)),
            Selection::Missing => None,
        })
    }

    fn require(&self, path: &JsonPath) -> Result<Value, String> {
        self.get(path)?.ok_or_else(|| {
            format!(
                "Invalid path '{}' : No results for path: {}",
                path.text(),
                path.bracketed()
            )
        })
    }

    fn template(&mut self, t: &Template) -> Result<Value, String> {
        Ok(match t {
            Template::Literal(v) => v.clone(),
            Template::Object(fields) => {
                let mut m = Map::new();
                for (k, ft) in fields {
                    let v = match ft {
                        Template::Path(p) => self.get(p)?.ok_or_else(|| {
                            format!(
                                "The JSONPath '{}' specified for the field '{k}.$' could not be found in the input '{}'",
                                p.text(),
                                self.input
                            )
                        })?,
                        _ => self.template(ft)?,
                    };
                    m.insert(k.clone(), v);
                }
                Value::Object(m)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.template(i))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Path(p) => self.require(p)?,
            Template::Intrinsic(c) => intrinsic::eval(c, self)?,
        })
    }
}

impl intrinsic::Env for Env<'_> {
    fn resolve(&self, path: &JsonPath) -> Result<Value, String> {
        self.require(path)
    }
    fn random(&mut self) -> u64 {
        *self.rng = splitmix(*self.rng);
        *self.rng
    }
}

impl Lookup for Env<'_> {
    fn lookup(&self, path: &JsonPath) -> Result<Option<Value>, String> {
        self.get(path)
    }
}

fn apply_path_field(f: &PathField, env: &Env) -> Result<Value, String> {
    match f {
        PathField::Whole => Ok(env.input.clone()),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) => env.require(p),
    }
}

fn apply_result_path(rp: &ResultPath, raw: &Value, result: Value) -> Result<Value, String> {
    match rp {
        ResultPath::Whole => Ok(result),
        ResultPath::Discard => Ok(raw.clone()),
        ResultPath::At(steps) => {
            let mut out = raw.clone();
            set_at(&mut out, steps, result).map_err(|e| format!("Invalid ResultPath: {e}"))?;
            Ok(out)
        }
    }
}

impl Execution {
    /// Starts an execution; the first [`Execution::poll`] runs it.
    pub fn start(
        machine: &StateMachine,
        ctx: ExecutionContext,
        input: Value,
        now: DateTime<Utc>,
    ) -> Execution {
        let seed = ctx
            .id
            .bytes()
            .chain(ctx.name.bytes())
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let mut ex = Execution {
            deadline: machine
                .def
                .timeout_seconds
                .map(|s| now + Duration::seconds(s as i64)),
            ctx,
            input: input.clone(),
            start_time: now,
            status: ExecutionStatus::Running,
            outcome: None,
            threads: BTreeMap::new(),
            tasks: BTreeMap::new(),
            next_thread: 1,
            next_task: 1,
            last_event: 0,
            rng: seed,
            events: Vec::new(),
            history_limit: MAX_HISTORY_EVENTS,
        };
        let role = ex.ctx.role_arn.clone();
        ex.emit(
            now,
            "ExecutionStarted",
            json!({"input": input, "roleArn": role}),
        );
        let start = machine.scope(0).start_at.clone();
        ex.threads.insert(
            0,
            Thread {
                scope: 0,
                parent: None,
                vars: Map::new(),
                at: At::Entering {
                    state: start,
                    input,
                },
            },
        );
        ex
    }

    pub fn status(&self) -> ExecutionStatus {
        self.status
    }

    /// Raises (or lowers) the history-event limit, [`MAX_HISTORY_EVENTS`] by
    /// default. Beyond AWS's limit a run no longer matches what AWS would
    /// do (AWS needs a Distributed Map there); benchmarks use it for large maps.
    pub fn set_history_limit(&mut self, limit: u64) {
        self.history_limit = limit;
    }

    /// The execution's input, as started.
    pub fn input(&self) -> &Value {
        &self.input
    }

    /// The final outcome, once there is one.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// History events produced since the last call.
    pub fn take_events(&mut self) -> Vec<HistoryEvent> {
        std::mem::take(&mut self.events)
    }

    /// Stops the execution; outstanding task results will be ignored.
    pub fn abort(&mut self, cause: Option<String>, now: DateTime<Utc>) {
        if self.outcome.is_some() {
            return;
        }
        self.emit(now, "ExecutionAborted", json!({"cause": cause}));
        self.finish(Outcome::Aborted, ExecutionStatus::Aborted);
    }

    /// Reports the result of a task handed out by [`Execution::poll`].
    /// Unknown or stale ids (cancelled branches, finished executions) are ignored.
    pub fn complete_task(
        &mut self,
        _machine: &StateMachine,
        task_id: u64,
        result: Result<Value, TaskFailure>,
        now: DateTime<Utc>,
    ) {
        let Some(inflight) = self.tasks.remove(&task_id) else {
            return;
        };
        let (ty, details) = match &result {
            Ok(v) => (
                "TaskSucceeded",
                json!({"resource": inflight.request.resource, "output": v}),
            ),
            Err(f) => (
                "TaskFailed",
                json!({"resource": inflight.request.resource, "error": f.error, "cause": f.cause}),
            ),
        };
        self.emit(now, ty, details);
        if let Some(th) = self.threads.get_mut(&inflight.thread) {
            if let At::In(st) = &mut th.at {
                if let Phase::Task {
                    task_id: t,
                    result: slot,
                    ..
                } = &mut st.phase
                {
                    if *t == task_id {
                        *slot = Some(result);
                    }
                }
            }
        }
    }

    /// Advances everything runnable at `now` and says what the host should do.
    pub fn poll(&mut self, machine: &StateMachine, now: DateTime<Utc>) -> Poll {
        if let Some(o) = &self.outcome {
            return Poll::Done(o.clone());
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.emit(now, "ExecutionTimedOut", json!({}));
            self.finish(Outcome::TimedOut, ExecutionStatus::TimedOut);
            return Poll::Done(Outcome::TimedOut);
        }
        loop {
            let ids: Vec<u64> = self.threads.keys().copied().collect();
            let mut progress = false;
            for id in ids {
                if self.outcome.is_some() {
                    break;
                }
                progress |= self.step(machine, id, now);
                if self.last_event > self.history_limit {
                    // AWS stops runaway executions the same way; it also guards against endless loops.
                    let cause = format!(
                        "The execution history exceeded the limit of {} events",
                        self.history_limit
                    );
                    self.emit(
                        now,
                        "ExecutionFailed",
                        json!({"error": "States.Runtime", "cause": cause}),
                    );
                    self.finish(
                        Outcome::Failed {
                            error: Some("States.Runtime".into()),
                            cause: Some(cause),
                        },
                        ExecutionStatus::Failed,
                    );
                    break;
                }
            }
            if !progress || self.outcome.is_some() {
                break;
            }
        }
        if let Some(o) = &self.outcome {
            return Poll::Done(o.clone());
        }
        let mut fresh = Vec::new();
        for t in self.tasks.values_mut() {
            if !t.issued {
                t.issued = true;
                fresh.push(t.request.clone());
            }
        }
        if !fresh.is_empty() {
            for r in &fresh {
                let d = json!({"resource": r.resource});
                self.emit(now, "TaskStarted", d);
            }
            return Poll::Tasks(fresh);
        }
        let mut wake: Option<DateTime<Utc>> = self.deadline;
        for th in self.threads.values() {
            if let At::In(st) = &th.at {
                let t = match &st.phase {
                    Phase::Sleep { until, .. } => Some(*until),
                    Phase::Task {
                        deadline: Some(d), ..
                    } => Some(*d),
                    _ => None,
                };
                if let Some(t) = t {
                    wake = Some(wake.map_or(t, |w| w.min(t)));
                }
            }
        }
        match wake {
            Some(t) => Poll::WaitUntil(t),
            None => Poll::Idle,
        }
    }

    fn emit(&mut self, now: DateTime<Utc>, ty: &str, details: Value) {
        let id = self.last_event + 1;
        self.events.push(HistoryEvent {
            id,
            previous_event_id: self.last_event,
            timestamp: now,
            r#type: ty.to_string(),
            details,
        });
        self.last_event = id;
    }

    fn finish(&mut self, outcome: Outcome, status: ExecutionStatus) {
        self.outcome = Some(outcome);
        self.status = status;
        self.tasks.clear();
        self.threads.clear();
    }

    fn runtime_cause(&self, st: &InState, msg: &str) -> String {
        format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {msg}",
            st.name, st.entered_event
        )
    }

    /// Advances one thread once. Returns whether anything changed.
    fn step(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) -> bool {
        let Some(th) = self.threads.get(&id) else {
            return false;
        };
        match &th.at {
            At::Entering { .. } => {
                self.enter(m, id, now);
                true
            }
            At::Succeeded(_) | At::Failed(_) => {
                if th.parent.is_none() {
                    let at = th.at.clone();
                    match at {
                        At::Succeeded(output) => {
                            self.emit(now, "ExecutionSucceeded", json!({"output": output}));
                            self.finish(Outcome::Succeeded { output }, ExecutionStatus::Succeeded);
                        }
                        At::Failed(f) => {
                            self.emit(
                                now,
                                "ExecutionFailed",
                                json!({"error": f.error, "cause": f.cause}),
                            );
                            self.finish(
                                Outcome::Failed {
                                    error: f.error,
                                    cause: f.cause,
                                },
                                ExecutionStatus::Failed,
                            );
                        }
                        _ => {}
                    }
                    return true;
                }
                false
            }
            At::In(st) => match &st.phase {
                Phase::Attempt => {
                    self.attempt(m, id, now);
                    true
                }
                Phase::Sleep { until, .. } if *until <= now => {
                    self.wake(m, id, now);
                    true
                }
                Phase::Sleep { .. } => false,
                Phase::Task {
                    result: Some(_), ..
                } => {
                    self.task_done(m, id, now);
                    true
                }
                Phase::Task {
                    deadline: Some(d),
                    task_id,
                    ..
                } if *d <= now => {
                    let task_id = *task_id;
                    self.tasks.remove(&task_id);
                    self.emit(now, "TaskTimedOut", json!({"error": "States.Timeout"}));
                    self.state_failed(
                        m,
                        id,
                        Failure {
                            error: Some("States.Timeout".into()),
                            cause: None,
                        },
                        now,
                    );
                    true
                }
                Phase::Task { .. } => false,
                Phase::Children(_) => self.check_children(m, id, now),
            },
        }
    }

    fn with_state<R>(&mut self, id: u64, f: impl FnOnce(&mut InState) -> R) -> Option<R> {
        match self.threads.get_mut(&id).map(|t| &mut t.at) {
            Some(At::In(st)) => Some(f(st)),
            _ => None,
        }
    }

    fn enter(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::Entering { state, input } = th.at.clone() else {
            return;
        };
        let Some(def) = m.scope(th.scope).states.get(&state) else {
            let f = Failure::new("States.Runtime", format!("state '{state}' does not exist"));
            if let Some(t) = self.threads.get_mut(&id) {
                t.at = At::Failed(f);
            }
            return;
        };
        let ty = type_name(&def.kind);
        self.emit(
            now,
            &format!("{ty}StateEntered"),
            json!({"name": state, "input": input}),
        );
        let attempts = match &def.kind {
            Kind::Task { retry, .. } | Kind::Parallel { retry, .. } => retry.len(),
            Kind::Map(ms) => ms.retry.len(),
            _ => 0,
        };
        let st = InState {
            name: state,
            raw_input: input.clone(),
            effective: input,
            entered: now,
            entered_event: self.last_event,
            retry_count: 0,
            attempts: vec![0; attempts],
            phase: Phase::Attempt,
        };
        if let Some(t) = self.threads.get_mut(&id) {
            t.at = At::In(Box::new(st));
        }
        self.prepare(m, id, now);
    }

    /// Computes the effective input once per state entry, then runs it.
    fn prepare(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let def = &m.scope(th.scope).states[&st.name];
        let ctx = Ctx::new(&self.ctx, &self.input, self.start_time, Some(st), None);
        let mut rng = self.rng;
        let vars = th.vars.clone();
        let raw = st.raw_input.clone();
        let res: Result<Value, String> = (|| {
            let env = Env {
                input: &raw,
                ctx: &ctx,
                vars: &vars,
                rng: &mut rng,
            };
            let eff = apply_path_field(&def.input_path, &env)?;
            let params = match &def.kind {
                Kind::Task { parameters, .. } | Kind::Parallel { parameters, .. } => {
                    parameters.as_ref()
                }
                _ => None,
            };
            match params {
                Some(t) => {
                    let mut env = Env {
                        input: &eff,
                        ctx: &ctx,
                        vars: &vars,
                        rng: &mut rng,
                    };
                    env.template(t)
                }
                None => Ok(eff),
            }
        })();
        self.rng = rng;
        match res {
            Ok(eff) => {
                self.with_state(id, |st| st.effective = eff);
                self.attempt(m, id, now);
            }
            Err(msg) => {
                let cause = self.runtime_cause(st, &msg);
                self.state_failed(m, id, Failure::new("States.Runtime", cause), now);
            }
        }
    }

    /// Performs the state's work on its effective input.
    fn attempt(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let def = &m.scope(th.scope).states[&st.name];
        let ctx = Ctx::new(&self.ctx, &self.input, self.start_time, Some(st), None);
        let vars = th.vars.clone();
        let eff = st.effective.clone();
        let raw = st.raw_input.clone();
        let name = st.name.clone();
        let mut rng = self.rng;
        macro_rules! fail_rt {
            ($msg:expr) => {{
                self.rng = rng;
                let cause = self.runtime_cause(st, &$msg);
                self.state_failed(m, id, Failure::new("States.Runtime", cause), now);
                return;
            }};
        }
        match &def.kind {
            Kind::Pass { parameters, result } => {
                let mut env = Env {
                    input: &eff,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                let r = match (result, parameters) {
                    (Some(r), _) => Ok(r.clone()),
                    (None, Some(p)) => env.template(p),
                    (None, None) => Ok(eff.clone()),
                };
                self.rng = rng;
                match r {
                    Ok(r) => self.finish_state(m, id, r, now),
                    Err(e) => fail_rt!(e),
                }
            }
            Kind::Task {
                resource,
                timeout,
                heartbeat,
                ..
            } => {
                let env = Env {
                    input: &eff,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                let secs = |n: &Option<NumberSource>, what: &str| -> Result<Option<u64>, String> {
                    match n {
                        None => Ok(None),
                        Some(NumberSource::Literal(v)) => Ok(Some(*v as u64)),
                        Some(NumberSource::Path(p)) => {
                            let v = env.require(p)?;
                            v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                                format!("The {what}Path field refers to value {v} which is not a valid positive integer: {}", p.text())
                            })
                        }
                    }
                };
                let (t, h) = match (
                    secs(timeout, "TimeoutSeconds"),
                    secs(heartbeat, "HeartbeatSeconds"),
                ) {
                    (Ok(t), Ok(h)) => (t, h),
                    (Err(e), _) | (_, Err(e)) => fail_rt!(e),
                };
                self.rng = rng;
                let task_id = self.next_task;
                self.next_task += 1;
                let request = TaskRequest {
                    task_id,
                    state_name: name,
                    resource: resource.clone(),
                    parameters: eff.clone(),
                    timeout_seconds: t,
                    heartbeat_seconds: h,
                };
                self.emit(now, "TaskScheduled", json!({"resource": resource, "parameters": eff, "timeoutInSeconds": t, "heartbeatInSeconds": h}));
                self.tasks.insert(
                    task_id,
                    InFlight {
                        thread: id,
                        request,
                        issued: false,
                    },
                );
                let deadline = t.map(|s| now + Duration::seconds(s as i64));
                self.with_state(id, |st| {
                    st.phase = Phase::Task {
                        task_id,
                        deadline,
                        result: None,
                    }
                });
            }
            Kind::Choice { choices, default } => {
                let env = Env {
                    input: &eff,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                let mut chosen = None;
                for c in choices {
                    match choice::eval_rule(&c.rule, &env) {
                        Ok(true) => {
                            chosen = Some((c.next.clone(), c.assign.as_ref()));
                            break;
                        }
                        Ok(false) => {}
                        Err(e) => fail_rt!(e),
                    }
                }
                let (next, assign) = match (chosen, default) {
                    (Some(c), _) => c,
                    (None, Some(d)) => (d.clone(), def.assign.as_ref()),
                    (None, None) => {
                        self.rng = rng;
                        let f = Failure::new(
                            "States.NoChoiceMatched",
                            format!("No Matches! in state '{name}'"),
                        );
                        self.state_failed(m, id, f, now);
                        return;
                    }
                };
                let out = match apply_path_field(&def.output_path, &env) {
                    Ok(o) => o,
                    Err(e) => fail_rt!(e),
                };
                let assigned = match assign {
                    Some(a) => {
                        let mut env = Env {
                            input: &eff,
                            ctx: &ctx,
                            vars: &vars,
                            rng: &mut rng,
                        };
                        match env.template(a) {
                            Ok(v) => Some(v),
                            Err(e) => fail_rt!(e),
                        }
                    }
                    None => None,
                };
                self.rng = rng;
                self.exit_state(m, id, out, assigned, Transition::Next(next), now);
            }
            Kind::Wait(w) => {
                let env = Env {
                    input: &eff,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                let until = match w {
                    WaitFor::Seconds(s) => now + Duration::seconds(*s as i64),
                    WaitFor::Timestamp(t) => *t,
                    WaitFor::SecondsPath(p) => {
                        let Ok(Some(v)) = env.get(p) else {
                            fail_rt!(format!(
                                "The SecondsPath parameter does not reference an input value: {}",
                                p.text()
                            ))
                        };
                        match v.as_i64() {
                            Some(n) if n < 0 => fail_rt!(format!("The SecondsPath parameter references a negative value: {} == {v}", p.text())),
                            Some(n) => now + Duration::seconds(n),
                            None => fail_rt!(format!("The SecondsPath parameter cannot be parsed as a long value: {} == {v}", p.text())),
                        }
                    }
                    WaitFor::TimestampPath(p) => {
                        let Ok(Some(v)) = env.get(p) else {
                            fail_rt!(format!(
                                "The TimestampPath parameter does not reference an input value: {}",
                                p.text()
                            ))
                        };
                        match v.as_str().and_then(crate::definition::parse_timestamp) {
                            Some(t) => t,
                            None => fail_rt!(format!("The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {v}", p.text())),
                        }
                    }
                };
                let out = match apply_path_field(&def.output_path, &env) {
                    Ok(o) => o,
                    Err(e) => fail_rt!(e),
                };
                self.rng = rng;
                self.with_state(id, |st| {
                    st.phase = Phase::Sleep {
                        until,
                        wake: Wake::Exit(out),
                    }
                });
            }
            Kind::Succeed => {
                let env = Env {
                    input: &eff,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                match apply_path_field(&def.output_path, &env) {
                    Ok(out) => self.exit_state(m, id, out, None, Transition::End, now),
                    Err(e) => fail_rt!(e),
                }
            }
            Kind::Fail { error, cause } => {
                let mut env = Env {
                    input: &raw,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                let mut get = |s: &Option<StringSource>,
                               what: &str|
                 -> Result<Option<String>, String> {
                    Ok(match s {
                        None => None,
                        Some(StringSource::Literal(l)) => Some(l.clone()),
                        Some(StringSource::Path(p)) => match env.require(p)? {
                            Value::String(s) => Some(s),
                            other => {
                                return Err(format!(
                                    "The {what}Path field must reference a string, got {other}"
                                ))
                            }
                        },
                        Some(StringSource::Intrinsic(c)) => match intrinsic::eval(c, &mut env)? {
                            Value::String(s) => Some(s),
                            other => {
                                return Err(format!(
                                    "The {what}Path function must return a string, got {other}"
                                ))
                            }
                        },
                    })
                };
                let (e, c) = match (get(error, "Error"), get(cause, "Cause")) {
                    (Ok(e), Ok(c)) => (e, c),
                    (Err(x), _) | (_, Err(x)) => fail_rt!(x),
                };
                self.rng = rng;
                if let Some(t) = self.threads.get_mut(&id) {
                    t.at = At::Failed(Failure { error: e, cause: c });
                }
            }
            Kind::Parallel { branches, .. } => {
                self.rng = rng;
                let n = branches.len();
                let ch = Children {
                    is_map: false,
                    inputs: vec![eff; n],
                    threads: vec![None; n],
                    results: vec![None; n],
                    started: 0,
                    max_concurrency: 0,
                    failures: 0,
                    tolerated: 0,
                    first_failure: None,
                };
                self.emit(now, "ParallelStateStarted", json!({}));
                self.with_state(id, |st| st.phase = Phase::Children(Box::new(ch)));
                self.spawn_children(m, id, now);
            }
            Kind::Map(ms) => {
                let env = Env {
                    input: &eff,
                    ctx: &ctx,
                    vars: &vars,
                    rng: &mut rng,
                };
                let items = match &ms.items_path {
                    None => Ok(eff.clone()),
                    Some(p) => env.require(p),
                };
                let items = match items {
                    Ok(Value::Array(a)) => a,
                    Ok(other) => {
                        fail_rt!(format!("Map state input must be an array but was: {other}"))
                    }
                    Err(e) => fail_rt!(e),
                };
                let int_field = |n: &Option<NumberSource>,
                                 what: &str,
                                 float: bool|
                 -> Result<Option<f64>, String> {
                    match n {
                        None => Ok(None),
                        Some(NumberSource::Literal(v)) => Ok(Some(*v)),
                        Some(NumberSource::Path(p)) => {
                            let v = env.require(p)?;
                            let num = match &v {
                                Value::String(s) if float => s.trim().parse::<f64>().ok(),
                                Value::String(s) => s.trim().parse::<i64>().ok().map(|i| i as f64),
                                _ if float => v.as_f64(),
                                _ => v.as_i64().map(|i| i as f64),
                            };
                            num.map(Some).ok_or_else(|| {
                                let shown = match &v { Value::String(s) => s.clone(), o => o.to_string() };
                                format!("The {what}Path field refers to value \"{shown}\" which is not a valid {}: {}", if float { "float" } else { "integer" }, p.text())
                            })
                        }
                    }
                };
                let mc = int_field(&ms.max_concurrency, "MaxConcurrency", false);
                let tc = int_field(&ms.tolerated_count, "ToleratedFailureCount", false);
                let tp = int_field(&ms.tolerated_percentage, "ToleratedFailurePercentage", true);
                let (mc, tc, tp) = match (mc, tc, tp) {
                    (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => fail_rt!(e),
                };
                if tc.is_some_and(|c| c < 0.0) {
                    fail_rt!("ToleratedFailureCount cannot be negative.");
                }
                if tp.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                    fail_rt!("ToleratedFailurePercentage must be between 0 and 100.");
                }
                if mc.is_some_and(|c| c < 0.0) {
                    fail_rt!("MaxConcurrency cannot be negative.");
                }
                let n = items.len();
                let mut tolerated = tc.map(|c| c as usize).unwrap_or(0);
                if let Some(p) = tp {
                    tolerated = tolerated.max((p / 100.0 * n as f64).floor() as usize);
                }
                let mut inputs = Vec::with_capacity(n);
                for (i, item) in items.iter().enumerate() {
                    match &ms.item_selector {
                        None => inputs.push(item.clone()),
                        Some(sel) => {
                            let ictx = Ctx::new(
                                &self.ctx,
                                &self.input,
                                self.start_time,
                                Some(st),
                                Some((i, item)),
                            );
                            let mut ienv = Env {
                                input: &eff,
                                ctx: &ictx,
                                vars: &vars,
                                rng: &mut rng,
                            };
                            match ienv.template(sel) {
                                Ok(v) => inputs.push(v),
                                Err(e) => fail_rt!(e),
                            }
                        }
                    }
                }
                self.rng = rng;
                let ch = Children {
                    is_map: true,
                    inputs,
                    threads: vec![None; n],
                    results: vec![None; n],
                    started: 0,
                    max_concurrency: mc.map(|c| c as usize).unwrap_or(0),
                    failures: 0,
                    tolerated,
                    first_failure: None,
                };
                self.emit(now, "MapStateStarted", json!({"length": n}));
                self.with_state(id, |st| st.phase = Phase::Children(Box::new(ch)));
                self.spawn_children(m, id, now);
            }
        }
    }

    fn spawn_children(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let Phase::Children(ch) = &st.phase else {
            return;
        };
        let def = &m.scope(th.scope).states[&st.name];
        let scopes: Vec<usize> = match &def.kind {
            Kind::Parallel { branches, .. } => branches.clone(),
            Kind::Map(ms) => vec![ms.processor; ch.inputs.len()],
            _ => return,
        };
        let running = ch.threads.iter().filter(|t| t.is_some()).count();
        let limit = if ch.max_concurrency == 0 {
            usize::MAX
        } else {
            ch.max_concurrency
        };
        let mut to_start = Vec::new();
        let mut i = ch.started;
        let mut active = running;
        while i < ch.inputs.len() && active < limit {
            to_start.push(i);
            i += 1;
            active += 1;
        }
        let vars = th.vars.clone();
        let is_map = ch.is_map;
        let inputs: Vec<Value> = to_start.iter().map(|i| ch.inputs[*i].clone()).collect();
        let mut new_ids = Vec::new();
        for (idx, input) in to_start.iter().zip(inputs) {
            let tid = self.next_thread;
            self.next_thread += 1;
            let scope = scopes[*idx];
            let start = m.scope(scope).start_at.clone();
            self.threads.insert(
                tid,
                Thread {
                    scope,
                    parent: Some((id, *idx)),
                    vars: vars.clone(),
                    at: At::Entering {
                        state: start,
                        input,
                    },
                },
            );
            new_ids.push((*idx, tid));
            if is_map {
                self.emit(now, "MapIterationStarted", json!({"index": idx}));
            }
        }
        self.with_state(id, |st| {
            if let Phase::Children(ch) = &mut st.phase {
                for (idx, tid) in new_ids {
                    ch.threads[idx] = Some(tid);
                    ch.started = ch.started.max(idx + 1);
                }
            }
        });
    }

    /// Drops a thread, its in-flight task and its descendants. A thread's
    /// children are exactly those its Parallel/Map phase lists, so this costs
    /// the size of the tree, not of the whole execution.
    fn remove_thread_tree(&mut self, root: u64) {
        let mut todo = vec![root];
        while let Some(t) = todo.pop() {
            let Some(th) = self.threads.remove(&t) else {
                continue;
            };
            if let At::In(st) = th.at {
                match st.phase {
                    Phase::Task { task_id, .. } => {
                        self.tasks.remove(&task_id);
                    }
                    Phase::Children(ch) => todo.extend(ch.threads.iter().flatten().copied()),
                    Phase::Attempt | Phase::Sleep { .. } => {}
                }
            }
        }
    }

    fn check_children(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) -> bool {
        let Some(th) = self.threads.get(&id) else {
            return false;
        };
        let At::In(st) = &th.at else { return false };
        let Phase::Children(ch) = &st.phase else {
            return false;
        };
        let is_map = ch.is_map;
        let mut finished = Vec::new();
        for (idx, t) in ch.threads.iter().enumerate() {
            if let Some(tid) = t {
                match self.threads.get(tid).map(|c| &c.at) {
                    Some(At::Succeeded(v)) => finished.push((idx, *tid, Ok(v.clone()))),
                    Some(At::Failed(f)) => finished.push((idx, *tid, Err(f.clone()))),
                    _ => {}
                }
            }
        }
        if finished.is_empty() {
            return false;
        }
        let mut fail: Option<Failure> = None;
        for (idx, tid, r) in finished {
            self.remove_thread_tree(tid);
            let ev = match &r {
                Ok(_) => "IterationSucceeded",
                Err(_) => "IterationFailed",
            };
            if is_map {
                self.emit(now, &format!("Map{ev}"), json!({"index": idx}));
            }
            self.with_state(id, |st| {
                if let Phase::Children(ch) = &mut st.phase {
                    ch.threads[idx] = None;
                    match r {
                        Ok(v) => ch.results[idx] = Some(v),
                        Err(f) => {
                            ch.failures += 1;
                            ch.results[idx] = Some(Value::Null);
                            if ch.first_failure.is_none() {
                                ch.first_failure = Some(f.clone());
                            }
                            if ch.failures > ch.tolerated {
                                fail = ch.first_failure.clone();
                            }
                        }
                    }
                }
            });
            if fail.is_some() {
                break;
            }
        }
        if let Some(f) = fail {
            // Cancel the remaining branches.
            let running: Vec<u64> = self
                .with_state(id, |st| match &st.phase {
                    Phase::Children(ch) => ch.threads.iter().flatten().copied().collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            for t in running {
                self.remove_thread_tree(t);
            }
            let (ty, tolerated) = self
                .with_state(id, |st| match &st.phase {
                    Phase::Children(ch) => {
                        (if ch.is_map { "Map" } else { "Parallel" }, ch.tolerated)
                    }
                    _ => ("Parallel", 0),
                })
                .unwrap_or(("Parallel", 0));
            self.emit(now, &format!("{ty}StateFailed"), json!({}));
            let f = if ty == "Map" && tolerated > 0 {
                Failure::new(
                    "States.ExceedToleratedFailureThreshold",
                    "The specified tolerated failure threshold for the Map state has been exceeded",
                )
            } else {
                f
            };
            self.state_failed(m, id, f, now);
            return true;
        }
        let done = self
            .with_state(id, |st| match &st.phase {
                Phase::Children(ch) => ch.results.iter().all(Option::is_some),
                _ => false,
            })
            .unwrap_or(false);
        if done {
            let (ty, results) = self
                .with_state(id, |st| match &mut st.phase {
                    Phase::Children(ch) => (
                        if ch.is_map { "Map" } else { "Parallel" },
                        ch.results
                            .iter_mut()
                            .map(|r| r.take().unwrap_or(Value::Null))
                            .collect(),
                    ),
                    _ => ("Parallel", Vec::new()),
                })
                .unwrap_or(("Parallel", Vec::new()));
            self.emit(now, &format!("{ty}StateSucceeded"), json!({}));
            self.finish_state(m, id, Value::Array(results), now);
        } else {
            self.spawn_children(m, id, now);
        }
        true
    }

    fn wake(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) {
        let Some(wake) = self
            .with_state(id, |st| match &mut st.phase {
                Phase::Sleep { wake, .. } => Some(wake.clone()),
                _ => None,
            })
            .flatten()
        else {
            return;
        };
        match wake {
            Wake::Exit(out) => {
                let next = self
                    .threads
                    .get(&id)
                    .and_then(|th| match &th.at {
                        At::In(st) => m.scope(th.scope).states.get(&st.name),
                        _ => None,
                    })
                    .map(|d| (d.transition.clone(), d.assign.clone()));
                let Some((next, assign)) = next else { return };
                let assigned = match assign {
                    Some(a) => match self.eval_in_state(id, &a, None) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            self.fail_runtime(m, id, &e, now);
                            return;
                        }
                    },
                    None => None,
                };
                self.exit_state(m, id, out, assigned, next, now);
            }
            Wake::Retry => {
                // Re-evaluate InputPath/Parameters so $$.State.RetryCount is current.
                self.with_state(id, |st| st.phase = Phase::Attempt);
                self.prepare(m, id, now);
            }
        }
    }

    fn fail_runtime(&mut self, m: &StateMachine, id: u64, msg: &str, now: DateTime<Utc>) {
        let cause = match self.threads.get(&id).map(|t| &t.at) {
            Some(At::In(st)) => self.runtime_cause(st, msg),
            _ => msg.to_string(),
        };
        self.state_failed(m, id, Failure::new("States.Runtime", cause), now);
    }

    /// Evaluates a template in the current state with `$` = `input` (default: effective input).
    fn eval_in_state(
        &mut self,
        id: u64,
        t: &Template,
        input: Option<&Value>,
    ) -> Result<Value, String> {
        let Some(th) = self.threads.get(&id) else {
            return Err("no such thread".into());
        };
        let At::In(st) = &th.at else {
            return Err("thread is not in a state".into());
        };
        let ctx = Ctx::new(&self.ctx, &self.input, self.start_time, Some(st), None);
        let doc = input.cloned().unwrap_or_else(|| st.effective.clone());
        let vars = th.vars.clone();
        let mut rng = self.rng;
        let r = Env {
            input: &doc,
            ctx: &ctx,
            vars: &vars,
            rng: &mut rng,
        }
        .template(t);
        self.rng = rng;
        r
    }

    fn task_done(&mut self, m: &StateMachine, id: u64, now: DateTime<Utc>) {
        let Some(result) = self
            .with_state(id, |st| match &mut st.phase {
                Phase::Task { result, .. } => result.take(),
                _ => None,
            })
            .flatten()
        else {
            return;
        };
        match result {
            Ok(v) => self.finish_state(m, id, v, now),
            Err(f) => self.state_failed(
                m,
                id,
                Failure {
                    error: Some(f.error),
                    cause: f.cause,
                },
                now,
            ),
        }
    }

    /// A state produced `result`: ResultSelector, Assign, ResultPath, OutputPath, then exit.
    fn finish_state(&mut self, m: &StateMachine, id: u64, result: Value, now: DateTime<Utc>) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let def = &m.scope(th.scope).states[&st.name];
        let selector = match &def.kind {
            Kind::Task {
                result_selector, ..
            }
            | Kind::Parallel {
                result_selector, ..
            } => result_selector.clone(),
            Kind::Map(ms) => ms.result_selector.clone(),
            _ => None,
        };
        let result = match selector {
            Some(sel) => match self.eval_in_state(id, &sel, Some(&result)) {
                Ok(v) => v,
                Err(e) => return self.fail_runtime(m, id, &e, now),
            },
            None => result,
        };
        let assigned = match def.assign.clone() {
            Some(a) => match self.eval_in_state(id, &a, Some(&result)) {
                Ok(v) => Some(v),
                Err(e) => return self.fail_runtime(m, id, &e, now),
            },
            None => None,
        };
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let combined = match apply_result_path(&def.result_path, &st.raw_input, result) {
            Ok(v) => v,
            Err(e) => return self.fail_runtime(m, id, &e, now),
        };
        let ctx = Ctx::new(&self.ctx, &self.input, self.start_time, Some(st), None);
        let mut rng = self.rng;
        let out = apply_path_field(
            &def.output_path,
            &Env {
                input: &combined,
                ctx: &ctx,
                vars: &th.vars,
                rng: &mut rng,
            },
        );
        let out = match out {
            Ok(v) => v,
            Err(e) => return self.fail_runtime(m, id, &e, now),
        };
        let next = def.transition.clone();
        self.exit_state(m, id, out, assigned, next, now);
    }

    /// Leaves the current state with `output`, applying variable assignments.
    fn exit_state(
        &mut self,
        m: &StateMachine,
        id: u64,
        output: Value,
        assigned: Option<Value>,
        next: Transition,
        now: DateTime<Utc>,
    ) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let def = &m.scope(th.scope).states[&st.name];
        let ty = type_name(&def.kind);
        let name = st.name.clone();
        let size = serde_json::to_string(&output).map(|s| s.len()).unwrap_or(0);
        if size > MAX_PAYLOAD_BYTES {
            let f = Failure::new(
                "States.DataLimitExceeded",
                format!("The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."),
            );
            if let Some(t) = self.threads.get_mut(&id) {
                t.at = At::Failed(f);
            }
            return;
        }
        self.emit(
            now,
            &format!("{ty}StateExited"),
            json!({"name": name, "output": output}),
        );
        let Some(th) = self.threads.get_mut(&id) else {
            return;
        };
        if let Some(Value::Object(vars)) = assigned {
            for (k, v) in vars {
                th.vars.insert(k, v);
            }
        }
        th.at = match next {
            Transition::Next(n) => At::Entering {
                state: n,
                input: output,
            },
            Transition::End | Transition::None => At::Succeeded(output),
        };
    }

    /// The state raised an error: retry, catch, or fail the thread.
    fn state_failed(&mut self, m: &StateMachine, id: u64, f: Failure, now: DateTime<Utc>) {
        let Some(th) = self.threads.get(&id) else {
            return;
        };
        let At::In(st) = &th.at else { return };
        let def = &m.scope(th.scope).states[&st.name];
        let (retry, catch): (&[Retrier], &[Catcher]) = match &def.kind {
            Kind::Task { retry, catch, .. } | Kind::Parallel { retry, catch, .. } => (retry, catch),
            Kind::Map(ms) => (&ms.retry, &ms.catch),
            _ => (&[], &[]),
        };
        let err = f.error.as_deref();
        if let Some((i, r)) = retry
            .iter()
            .enumerate()
            .find(|(_, r)| error_matches(&r.errors, err))
        {
            let done = st.attempts.get(i).copied().unwrap_or(0);
            if done < r.max_attempts {
                let mut delay = r.interval_seconds as f64 * r.backoff_rate.powi(done as i32);
                if let Some(maxd) = r.max_delay_seconds {
                    delay = delay.min(maxd as f64);
                }
                let until = now + Duration::milliseconds((delay * 1000.0) as i64);
                self.with_state(id, |st| {
                    if let Some(a) = st.attempts.get_mut(i) {
                        *a += 1;
                    }
                    st.retry_count += 1;
                    st.phase = Phase::Sleep {
                        until,
                        wake: Wake::Retry,
                    };
                });
                return;
            }
        }
        if let Some(c) = catch
            .iter()
            .find(|c| error_matches(&c.errors, err))
            .cloned()
        {
            let err_out = json!({"Error": f.error, "Cause": f.cause});
            let assigned = match &c.assign {
                Some(a) => match self.eval_in_state(id, a, Some(&err_out)) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        if let Some(t) = self.threads.get_mut(&id) {
                            t.at = At::Failed(Failure::new("States.Runtime", e));
                        }
                        return;
                    }
                },
                None => None,
            };
            let Some(th) = self.threads.get(&id) else {
                return;
            };
            let At::In(st) = &th.at else { return };
            match apply_result_path(&c.result_path, &st.raw_input, err_out) {
                Ok(out) => self.exit_state(m, id, out, assigned, Transition::Next(c.next), now),
                Err(e) => {
                    let cause = self.runtime_cause(st, &e);
                    if let Some(t) = self.threads.get_mut(&id) {
                        t.at = At::Failed(Failure::new("States.Runtime", cause));
                    }
                }
            }
            return;
        }
        if let Some(t) = self.threads.get_mut(&id) {
            t.at = At::Failed(f);
        }
    }
}

/// Runs an execution to the end, calling `task_handler` for each task.
/// With `virtual_time`, waits complete instantly by advancing a virtual clock;
/// otherwise the calling thread sleeps until each wait ends.
pub fn run_to_completion(
    machine: &StateMachine,
    ctx: ExecutionContext,
    input: Value,
    now: DateTime<Utc>,
    mut task_handler: impl FnMut(&TaskRequest) -> Result<Value, TaskFailure>,
    virtual_time: bool,
) -> (Outcome, Vec<HistoryEvent>) {
    let mut clock = now;
    let mut ex = Execution::start(machine, ctx, input, clock);
    let mut events = Vec::new();
    loop {
        let p = ex.poll(machine, clock);
        events.extend(ex.take_events());
        match p {
            Poll::Done(o) => return (o, events),
            Poll::Tasks(ts) => {
                for t in ts {
                    let r = task_handler(&t);
                    ex.complete_task(machine, t.task_id, r, clock);
                }
            }
            Poll::WaitUntil(t) => {
                if virtual_time {
                    clock = clock.max(t);
                } else {
                    if let Ok(d) = (t - Utc::now()).to_std() {
                        std::thread::sleep(d);
                    }
                    clock = Utc::now().max(t);
                }
            }
            Poll::Idle => {
                // Every task is answered synchronously above, so Idle means no progress is possible.
                let o = Outcome::Failed {
                    error: Some("States.Runtime".into()),
                    cause: Some("the execution is idle with no outstanding work".into()),
                };
                return (o, events);
            }
        }
    }
}
