//! `treza asl ...`: the ASL engine as a standalone tool — validate a state
//! machine, run one execution, or measure throughput, with no AWS account.
//!
//! There is no AWS behind a standalone run, so Task states fail with
//! `States.TaskFailed` unless `--task-results FILE.json` supplies canned
//! results. That file is a JSON object whose keys are state names or
//! resource ARNs (a state name wins) and whose values are one outcome or a
//! list of outcomes used in turn (the last one repeats):
//!
//! ```json
//! {
//!   "Charge":  {"result": {"ok": true}},
//!   "arn:aws:states:::lambda:invoke": [
//!     {"error": "Lambda.ServiceException", "cause": "try again"},
//!     {"result": {"Payload": {"valid": true}}}
//!   ]
//! }
//! ```
//!
//! Exit codes: 0 when the command did its job (a FAILED execution included),
//! 2 when the definition, input or task-results file is unusable (or, for
//! `validate`, the definition is invalid).

use super::Output;
use anyhow::{anyhow, bail, Context};
use chrono::Utc;
use clap::Subcommand;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use treza_asl::{
    run_to_completion, DefinitionError, ExecutionContext, HistoryEvent, Outcome, StateMachine,
    TaskFailure, TaskRequest, MAX_PAYLOAD_BYTES,
};

const TASK_RESULTS_HELP: &str = "\
Task states: there is no AWS behind a standalone run, so a Task fails with States.TaskFailed
unless --task-results FILE.json answers it. The file maps a state name or a resource ARN (a
state name wins) to one outcome or a list of outcomes used in turn (the last one repeats):
  {\"Charge\": {\"result\": {\"ok\": true}},
   \"arn:aws:states:::lambda:invoke\": [{\"error\": \"Lambda.ServiceException\", \"cause\": \"retry\"},
                                      {\"result\": {\"Payload\": {}}}]}";

#[derive(Subcommand)]
pub enum AslCommand {
    /// Check a definition the way ValidateStateMachineDefinition does; exit 0 when valid, 2 when not.
    Validate {
        definition: PathBuf,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run one execution and print its outcome as a single JSON object.
    #[command(after_help = TASK_RESULTS_HELP)]
    Run {
        definition: PathBuf,
        /// Execution input (a JSON file, or `-` for stdin). Default: `{}`.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Complete Wait states, retry backoffs and timeouts instantly; timestamps advance as if time had passed.
        #[arg(long)]
        virtual_time: bool,
        /// Add the execution history (`"history": [...]`) to the output.
        #[arg(long)]
        history: bool,
        /// Canned Task results keyed by state name or resource (format below).
        #[arg(long)]
        task_results: Option<PathBuf>,
        /// Execution name (feeds `$$.Execution.Name` and `$$.Execution.Id`).
        #[arg(long, default_value = "local")]
        name: String,
    },
    /// Run N executions in-process (virtual time) and report executions/s and state transitions/s.
    #[command(after_help = TASK_RESULTS_HELP)]
    Bench {
        definition: PathBuf,
        /// Execution input (a JSON file, or `-` for stdin). Default: `{}`.
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        executions: u64,
        /// Canned Task results keyed by state name or resource.
        #[arg(long)]
        task_results: Option<PathBuf>,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Exit code for an unusable definition, input or option.
const UNUSABLE: u8 = 2;

/// Runs an `asl` subcommand; returns the process exit code.
pub fn run(cmd: AslCommand) -> u8 {
    let r = match cmd {
        AslCommand::Validate { definition, output } => validate(&definition, output),
        AslCommand::Run {
            definition,
            input,
            virtual_time,
            history,
            task_results,
            name,
        } => execute(RunArgs {
            definition,
            input,
            virtual_time,
            history,
            task_results,
            name,
        }),
        AslCommand::Bench {
            definition,
            input,
            executions,
            task_results,
            output,
        } => bench(
            &definition,
            input.as_deref(),
            executions,
            task_results,
            output,
        ),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            UNUSABLE
        }
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_input(path: Option<&Path>) -> anyhow::Result<Value> {
    let Some(path) = path else {
        return Ok(Value::Object(Map::new()));
    };
    let text = read_text(path)?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("the input {} is not valid JSON", path.display()))?;
    // Measured compact, as Step Functions measures the input string.
    let bytes = value.to_string().len();
    if bytes > MAX_PAYLOAD_BYTES {
        bail!(
            "the input {} is {bytes} bytes of JSON; Step Functions accepts at most {MAX_PAYLOAD_BYTES} (InvalidExecutionInput)",
            path.display()
        );
    }
    Ok(value)
}

fn diagnostics_text(e: &DefinitionError) -> String {
    e.diagnostics
        .iter()
        .map(|d| {
            let at = if d.path.is_empty() { "/" } else { &d.path };
            format!("{at}: {}", d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads and validates a definition; diagnostics become the error text.
fn load_machine(path: &Path) -> anyhow::Result<StateMachine> {
    let text = read_text(path)?;
    StateMachine::parse(&text).map_err(|e| {
        anyhow!(
            "{} is not a usable state machine definition:\n{}",
            path.display(),
            diagnostics_text(&e)
        )
    })
}

fn validate(path: &Path, output: Output) -> anyhow::Result<u8> {
    let text = read_text(path)?;
    let result = StateMachine::parse(&text);
    let diags = match &result {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics.clone(),
    };
    match output {
        Output::Json => {
            let list: Vec<Value> = diags
                .iter()
                .map(|d| json!({"path": d.path, "message": d.message}))
                .collect();
            println!(
                "{}",
                json!({"valid": diags.is_empty(), "diagnostics": list})
            );
        }
        Output::Text => match &result {
            Ok(_) => println!("{}: valid", path.display()),
            Err(e) => println!("{}", diagnostics_text(e)),
        },
    }
    Ok(if diags.is_empty() { 0 } else { UNUSABLE })
}

/// One canned Task outcome.
#[derive(Debug, Clone)]
enum Canned {
    Result(Value),
    Error(TaskFailure),
}

/// Canned Task results for a standalone run (`--task-results`).
#[derive(Debug, Default)]
struct TaskResults {
    entries: HashMap<String, Vec<Canned>>,
    /// How many times each key has been used, to walk a list in turn.
    used: HashMap<String, usize>,
}

impl TaskResults {
    fn load(path: Option<&Path>) -> anyhow::Result<TaskResults> {
        let Some(path) = path else {
            return Ok(TaskResults::default());
        };
        let text = read_text(path)?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("the task results {} are not valid JSON", path.display()))?;
        TaskResults::from_value(&value)
            .with_context(|| format!("the task results in {}", path.display()))
    }

    fn from_value(value: &Value) -> anyhow::Result<TaskResults> {
        let Value::Object(map) = value else {
            bail!("the file must hold a JSON object keyed by state name or resource");
        };
        let mut entries = HashMap::new();
        for (key, v) in map {
            let list = match v {
                Value::Array(items) if !items.is_empty() => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| canned(item).with_context(|| format!("/{key}/{i}")))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                Value::Array(_) => bail!("/{key}: the list of outcomes must not be empty"),
                other => vec![canned(other).with_context(|| format!("/{key}"))?],
            };
            entries.insert(key.clone(), list);
        }
        Ok(TaskResults {
            entries,
            used: HashMap::new(),
        })
    }

    fn answer(&mut self, t: &TaskRequest) -> Result<Value, TaskFailure> {
        let key = [&t.state_name, &t.resource]
            .into_iter()
            .find(|k| self.entries.contains_key(k.as_str()));
        let Some(key) = key else {
            return Err(TaskFailure {
                error: "States.TaskFailed".into(),
                cause: Some(format!(
                    "no integration exists for resource '{}' in a standalone run (state '{}'); \
                     supply a canned result with --task-results",
                    t.resource, t.state_name
                )),
            });
        };
        let list = &self.entries[key.as_str()];
        let n = self.used.entry(key.clone()).or_insert(0);
        let pick = list[(*n).min(list.len() - 1)].clone();
        *n += 1;
        match pick {
            Canned::Result(v) => Ok(v),
            Canned::Error(f) => Err(f),
        }
    }

    fn reset(&mut self) {
        self.used.clear();
    }
}

fn canned(v: &Value) -> anyhow::Result<Canned> {
    let Value::Object(m) = v else {
        bail!("an outcome must be an object: {{\"result\": ...}} or {{\"error\": \"...\", \"cause\": \"...\"}}");
    };
    if let Some(unknown) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "result" | "error" | "cause"))
    {
        bail!("unknown field '{unknown}' (allowed: result, error, cause)");
    }
    match (m.get("result"), m.get("error")) {
        (Some(r), None) if !m.contains_key("cause") => Ok(Canned::Result(r.clone())),
        (None, Some(Value::String(e))) => {
            let cause = match m.get("cause") {
                None | Some(Value::Null) => None,
                Some(Value::String(c)) => Some(c.clone()),
                Some(_) => bail!("'cause' must be a string"),
            };
            Ok(Canned::Error(TaskFailure {
                error: e.clone(),
                cause,
            }))
        }
        (None, Some(_)) => bail!("'error' must be a string (an error name)"),
        _ => bail!("an outcome has either 'result' or 'error' (with an optional 'cause')"),
    }
}

struct RunArgs {
    definition: PathBuf,
    input: Option<PathBuf>,
    virtual_time: bool,
    history: bool,
    task_results: Option<PathBuf>,
    name: String,
}

fn machine_name(path: &Path) -> String {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("state-machine");
    let stem = stem.strip_suffix(".json").unwrap_or(stem);
    stem.strip_suffix(".asl").unwrap_or(stem).to_string()
}

fn context(definition: &Path, name: &str) -> ExecutionContext {
    let machine = machine_name(definition);
    ExecutionContext {
        name: name.to_string(),
        id: format!("arn:aws:states:local:000000000000:execution:{machine}:{name}"),
        state_machine_name: machine,
        role_arn: None,
    }
}

/// The single JSON object `run` prints.
fn outcome_json(outcome: &Outcome) -> Map<String, Value> {
    let mut m = Map::new();
    match outcome {
        Outcome::Succeeded { output } => {
            m.insert("status".into(), json!("SUCCEEDED"));
            m.insert("output".into(), output.clone());
        }
        Outcome::Failed { error, cause } => {
            m.insert("status".into(), json!("FAILED"));
            m.insert("error".into(), json!(error));
            m.insert("cause".into(), json!(cause));
        }
        Outcome::TimedOut => {
            m.insert("status".into(), json!("TIMED_OUT"));
            m.insert("error".into(), json!("States.Timeout"));
            m.insert(
                "cause".into(),
                json!("the execution ran longer than the definition's TimeoutSeconds"),
            );
        }
        Outcome::Aborted => {
            m.insert("status".into(), json!("ABORTED"));
        }
    }
    m
}

fn execute(a: RunArgs) -> anyhow::Result<u8> {
    treza_asl::check_execution_name(&a.name)
        .map_err(|rule| anyhow::anyhow!("--name '{}': {rule}", a.name))?;
    let machine = load_machine(&a.definition)?;
    let input = read_input(a.input.as_deref())?;
    let mut tasks = TaskResults::load(a.task_results.as_deref())?;
    let ctx = context(&a.definition, &a.name);
    let (outcome, events) = run_to_completion(
        &machine,
        ctx,
        input,
        Utc::now(),
        |t| tasks.answer(t),
        a.virtual_time,
    );
    let mut out = outcome_json(&outcome);
    if a.history {
        let h: Vec<Value> = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .context("serializing the history")?;
        out.insert("history".into(), Value::Array(h));
    }
    println!("{}", Value::Object(out));
    Ok(0)
}

fn is_transition(e: &HistoryEvent) -> bool {
    e.r#type.ends_with("StateEntered")
}

fn bench(
    definition: &Path,
    input: Option<&Path>,
    executions: u64,
    task_results: Option<PathBuf>,
    output: Output,
) -> anyhow::Result<u8> {
    if executions == 0 {
        bail!("--executions must be at least 1");
    }
    let machine = load_machine(definition)?;
    let input = read_input(input)?;
    let mut tasks = TaskResults::load(task_results.as_deref())?;
    let start_time = Utc::now();
    let mut transitions = 0u64;
    let mut events_total = 0u64;
    let mut statuses: std::collections::BTreeMap<String, u64> = Default::default();
    let started = Instant::now();
    for i in 0..executions {
        tasks.reset();
        let ctx = context(definition, &format!("bench-{i}"));
        let (outcome, events) = run_to_completion(
            &machine,
            ctx,
            input.clone(),
            start_time,
            |t| tasks.answer(t),
            true,
        );
        transitions += events.iter().filter(|e| is_transition(e)).count() as u64;
        events_total += events.len() as u64;
        let status = outcome_json(&outcome)
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        *statuses.entry(status).or_default() += 1;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let eps = executions as f64 / secs;
    let tps = transitions as f64 / secs;
    match output {
        Output::Json => println!(
            "{}",
            json!({
                "executions": executions,
                "seconds": secs,
                "executionsPerSecond": eps,
                "stateTransitions": transitions,
                "stateTransitionsPerSecond": tps,
                "historyEvents": events_total,
                "outcomes": statuses,
            })
        ),
        Output::Text => {
            println!("executions:             {executions} in {secs:.3} s");
            println!("executions/s:           {eps:.0}");
            println!("state transitions:      {transitions}");
            println!("state transitions/s:    {tps:.0}");
            println!("history events:         {events_total}");
            let o: Vec<String> = statuses.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("outcomes:               {}", o.join(", "));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(state: &str, resource: &str) -> TaskRequest {
        TaskRequest {
            task_id: 1,
            state_name: state.into(),
            resource: resource.into(),
            parameters: json!({}),
            timeout_seconds: None,
            heartbeat_seconds: None,
        }
    }

    #[test]
    fn task_results_walk_a_list_and_prefer_state_names() {
        let mut t = TaskResults::from_value(&json!({
            "A": [{"error": "E1", "cause": "c"}, {"result": 1}],
            "arn:r": {"result": "by-resource"}
        }))
        .expect("valid");
        let a = req("A", "arn:r");
        assert_eq!(
            t.answer(&a),
            Err(TaskFailure {
                error: "E1".into(),
                cause: Some("c".into())
            })
        );
        assert_eq!(t.answer(&a), Ok(json!(1)));
        assert_eq!(t.answer(&a), Ok(json!(1)));
        assert_eq!(t.answer(&req("B", "arn:r")), Ok(json!("by-resource")));
        let missing = t
            .answer(&req("C", "arn:other"))
            .expect_err("no canned result");
        assert_eq!(missing.error, "States.TaskFailed");
        assert!(missing.cause.unwrap_or_default().contains("arn:other"));
    }

    #[test]
    fn task_results_reject_bad_shapes() {
        for bad in [
            json!([]),
            json!({"A": []}),
            json!({"A": 3}),
            json!({"A": {"result": 1, "error": "E"}}),
            json!({"A": {"error": 5}}),
            json!({"A": {"value": 1}}),
        ] {
            assert!(TaskResults::from_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn machine_name_strips_extensions() {
        assert_eq!(
            machine_name(Path::new("w/deployment.asl.json")),
            "deployment"
        );
        assert_eq!(machine_name(Path::new("x.json")), "x");
    }
}
