//! The workload supervisor behind `treza workload start|stop|status`, run by
//! the `providers/local` Terraform module's provisioners.
//!
//! Input comes only from the environment: `TREZA_WORKLOAD_SPEC` (JSON, see
//! [`WorkloadSpec`]) and `TREZA_WORKLOAD_DIR` (where `workload.pid`,
//! `workload.json`, `workload.log` and `exit_code` live).
//!
//! Processes: `start` launches a **keeper** (`workload keep`, internal) in a
//! new session; the keeper execs the workload from its argv (no shell) as its
//! child, pipes the workload's stdout and stderr through the redactor (every
//! environment value of the spec is masked) into `workload.log`, and when the
//! workload exits writes `exit_code` and exits the same way. The keeper is
//! the group leader recorded in `workload.pid` (pid plus `/proc` start time,
//! so a recycled pid is never mistaken for it); keeper and workload outlive
//! Terraform, the runner and the server, and a restarted server adopts them
//! from the pid file. `start` returns only once the workload is ready
//! (healthy, alive, or finished successfully, by type); otherwise it stops the
//! group and fails with one line `treza-workload: error: <reason>` on stderr.
//! `start` on a running, healthy workload changes nothing.
//!
//! A guard process (`workload guard`, internal) watches a pipe from `start`:
//! if `start` dies before it settles (Terraform interrupted and killed it),
//! the guard stops the half-started workload, so an interrupted deploy never
//! leaves a process behind.
//!
//! `stop` sends the group SIGTERM, waits the spec's `stop_grace_seconds`
//! (default 10), then SIGKILL. [`workload_status`] (`workload status`) says
//! whether the workload runs, is healthy (one HTTP probe for a service),
//! or crashed (started, not stopped, and gone), with its exit code.
//!
//! Invariant: environment values are never printed, not even in errors, and
//! never reach `workload.log` unmasked (values shorter than
//! [`treza_core::redact::MIN_SECRET_LEN`] are not masked).

mod health;
mod process;
mod spec;

pub use health::{is_healthy, probe as probe_http};
pub use process::{PidRecord, EXIT_CODE_FILE, LOG_FILE, META_FILE, PID_FILE};
pub use spec::{
    SpecError, WorkloadMeta, WorkloadSpec, WorkloadType, DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_STOP_GRACE,
};

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use process::{read_pid_record, remove_file_if_present, stop_group, write_pid_record};

/// Environment variable holding the workload spec JSON.
pub const SPEC_ENV: &str = "TREZA_WORKLOAD_SPEC";
/// Environment variable holding the workload directory.
pub const DIR_ENV: &str = "TREZA_WORKLOAD_DIR";
/// How long a workload gets between SIGTERM and SIGKILL when its spec does
/// not say (also for clearing the remains of a dead one).
pub const STOP_GRACE: Duration = DEFAULT_STOP_GRACE;
/// Longest log line written in one piece; longer lines are split.
const MAX_LOG_LINE: u64 = 64 * 1024;
/// How long the keeper keeps copying output after the workload exited (a
/// grandchild may hold the pipes open).
const KEEPER_DRAIN: Duration = Duration::from_secs(2);
/// How long a daemon must stay alive to count as started.
const DAEMON_SETTLE: Duration = Duration::from_secs(1);
/// Variables the workload inherits from the supervisor; nothing else leaks in.
const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
];

const USAGE: &str =
    "usage: workload start|stop|status (reads TREZA_WORKLOAD_SPEC and TREZA_WORKLOAD_DIR)";

/// Entry point for `treza workload ...`. `args` are the words after
/// `workload` (a leading `"workload"` is tolerated). Returns the exit code:
/// 0 success, 1 failure, 2 usage error.
pub fn workload_main(args: &[String]) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let args = match args.first() {
        Some(&"workload") => &args[1..],
        _ => &args[..],
    };
    let result = match args {
        ["start"] => start(),
        ["stop"] => stop(),
        ["status"] => status(),
        ["guard"] => guard(),
        ["keep"] => keep(),
        _ => {
            eprintln!("treza-workload: error: {USAGE}");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(Failure(reason)) => {
            // One line, always: the runner reports the first such line.
            let reason = reason.replace(['\n', '\r'], " ");
            eprintln!("treza-workload: error: {reason}");
            1
        }
    }
}

/// A failed command; the text becomes the `treza-workload: error:` line.
#[derive(Debug)]
struct Failure(String);

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

fn workload_dir() -> Result<PathBuf, Failure> {
    match std::env::var_os(DIR_ENV) {
        Some(d) if !d.is_empty() => {
            let dir = PathBuf::from(d);
            if dir.is_absolute() {
                Ok(dir)
            } else {
                Err(Failure(format!("{DIR_ENV} must be an absolute path")))
            }
        }
        _ => Err(Failure(format!("{DIR_ENV} is not set"))),
    }
}

fn read_spec() -> Result<(WorkloadSpec, String), Failure> {
    let text = std::env::var(SPEC_ENV)
        .map_err(|_| Failure(format!("{SPEC_ENV} is not set (or not UTF-8)")))?;
    let spec = WorkloadSpec::from_json(&text).map_err(|e| Failure(e.to_string()))?;
    Ok((spec, text))
}

fn read_meta(dir: &Path) -> Option<WorkloadMeta> {
    serde_json::from_str(&fs::read_to_string(dir.join(META_FILE)).ok()?).ok()
}

fn say(line: &str) {
    println!("treza-workload: {line}");
    let _ = io::stdout().flush();
}

// ---------------------------------------------------------------- start

fn start() -> Result<(), Failure> {
    let (spec, spec_text) = read_spec()?;
    let dir = workload_dir()?;
    fs::create_dir_all(&dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;

    if let Some(record) = read_pid_record(&dir) {
        let same_spec =
            read_meta(&dir).is_some_and(|m| m.spec_sha256 == spec::spec_digest(&spec_text));
        if record.leader_alive() && !same_spec {
            say("workload running with a different spec; replacing it");
        } else if record.leader_alive() {
            match current_health(&spec) {
                Ok(()) => {
                    say(&format!(
                        "workload already running and healthy (pid {}); nothing to do",
                        record.child.unwrap_or(record.pid)
                    ));
                    return Ok(());
                }
                Err(problem) => say(&format!(
                    "workload running but unhealthy ({problem}); replacing it"
                )),
            }
        }
        // A previous run died or is unhealthy; clear whatever is left of its group.
        let grace = read_meta(&dir).map_or(STOP_GRACE, |m| m.stop_grace());
        stop_group(&record, grace, || {})?;
        remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
    }
    remove_file_if_present(&dir.join(EXIT_CODE_FILE)).map_err(io_failure("exit_code file"))?;
    let meta = serde_json::to_string(&WorkloadMeta::of(&spec, &spec_text))
        .map_err(|e| Failure(e.to_string()))?;
    fs::write(dir.join(META_FILE), meta + "\n").map_err(io_failure("workload.json"))?;

    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))
        .map_err(io_failure("workload.log"))?;
    let mut guard = Guard::spawn(&dir, &log)?;
    let parent = parent_pid();

    let (mut keeper, workload_pid) = spawn_keeper(&spec_text, &dir, &log)?;
    let keeper_pid = keeper.id() as i32;
    let workload_pid = match workload_pid {
        Ok(pid) => pid,
        Err(reason) => {
            let _ = keeper.wait();
            guard.settle();
            return Err(Failure(reason));
        }
    };
    let record = match PidRecord::capture(keeper_pid) {
        Ok(r) => PidRecord {
            child: Some(workload_pid),
            ..r
        },
        Err(_) => {
            // It exited already; its status explains why.
            let status = keeper.wait().map_err(io_failure("wait for workload"))?;
            guard.settle();
            return Err(Failure(format!(
                "workload {} before it could be recorded",
                describe_exit(status)
            )));
        }
    };
    guard.watch(&record);
    write_pid_record(&dir, &record).map_err(io_failure("pid file"))?;
    say(&format!(
        "started {} workload {:?} as pid {workload_pid}; log: {}",
        spec.workload_type.as_str(),
        spec.command[0],
        dir.join(LOG_FILE).display()
    ));

    let outcome = wait_until_ready(&spec, &mut keeper, parent);
    match outcome {
        Ok(message) => {
            if spec.workload_type == WorkloadType::Batch {
                // Finished: nothing of ours may keep running.
                stop_group(&record, spec.stop_grace, || {})?;
                remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
            }
            guard.settle();
            say(&message);
            Ok(())
        }
        Err(reason) => {
            let stopped = stop_group(&record, spec.stop_grace, || {
                let _ = keeper.try_wait();
            });
            let _ = keeper.try_wait();
            remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
            guard.settle();
            match stopped {
                Ok(_) => Err(Failure(reason)),
                Err(kill_error) => Err(Failure(format!("{reason}; also: {kill_error}"))),
            }
        }
    }
}

/// Whether a running workload is as its type wants it: a service answers
/// one health probe; anything else only has to be alive.
fn current_health(spec: &WorkloadSpec) -> Result<(), String> {
    if spec.workload_type != WorkloadType::Service {
        return Ok(());
    }
    let port = spec.expose_ports.first().copied().unwrap_or(0);
    probe_once(port, &spec.health_check_path, spec.health_check_interval)
}

/// One health probe, bounded by the check interval (at most 2 s).
fn probe_once(port: u16, path: &str, interval: Duration) -> Result<(), String> {
    let budget = interval.clamp(Duration::from_millis(200), Duration::from_secs(2));
    let url = format!("http://127.0.0.1:{port}{path}");
    match health::probe(port, path, budget) {
        Ok(code) if health::is_healthy(code) => Ok(()),
        Ok(code) => Err(format!("health check GET {url} answered HTTP {code}")),
        Err(problem) => Err(format!("health check GET {url} failed: {problem}")),
    }
}

/// Starts the keeper in its own session and reads its first line: the
/// workload's pid, or why the workload could not be started.
fn spawn_keeper(
    spec_text: &str,
    dir: &Path,
    log: &File,
) -> Result<(Child, Result<i32, String>), Failure> {
    let exe = std::env::current_exe().map_err(io_failure("locate own executable"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["workload", "keep"])
        .env_clear()
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.try_clone().map_err(io_failure("workload.log"))?);
    for name in BASE_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.env(SPEC_ENV, spec_text).env(DIR_ENV, dir);
    // SAFETY: setsid is async-signal-safe; it makes the keeper the leader of
    // a new session and process group, detached from Terraform's.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(io_failure("start the keeper process"))?;
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut first);
    }
    let first = first.trim_end();
    let result = if let Some(pid) = first.strip_prefix("pid ") {
        pid.parse::<i32>()
            .map_err(|_| "the keeper reported a malformed pid".to_string())
    } else if let Some(reason) = first.strip_prefix("error ") {
        Err(reason.to_string())
    } else {
        Err("the keeper process exited before starting the workload".to_string())
    };
    Ok((child, result))
}

fn io_failure(what: &'static str) -> impl Fn(io::Error) -> Failure {
    move |e| Failure(format!("{what}: {e}"))
}

fn parent_pid() -> i32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "exited".to_string(),
    }
}

/// Waits for readiness according to the workload type. Ok(message) when
/// ready; Err(reason) otherwise (the caller stops the group).
fn wait_until_ready(spec: &WorkloadSpec, child: &mut Child, parent: i32) -> Result<String, String> {
    let started = Instant::now();
    let deadline = spec.startup_timeout.map(|t| started + t);
    let poll = spec
        .health_check_interval
        .min(Duration::from_millis(250))
        .max(Duration::from_millis(20));
    let port = spec.expose_ports.first().copied();
    let url = port.map(|p| format!("http://127.0.0.1:{p}{}", spec.health_check_path));
    if let Some(url) = &url {
        if spec.workload_type == WorkloadType::Service {
            say(&format!("waiting for GET {url} to answer 2xx/3xx"));
        }
    }
    let mut last_problem = "no probe made yet".to_string();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return finished(spec, status, started),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot check the workload process: {e}")),
        }
        if parent_pid() != parent {
            return Err("start was abandoned by its caller (Terraform went away)".to_string());
        }
        let now = Instant::now();
        match spec.workload_type {
            WorkloadType::Service => {
                let port = port.unwrap_or(0);
                let budget = deadline
                    .map(|d| d.saturating_duration_since(now))
                    .unwrap_or(Duration::from_secs(2))
                    .min(Duration::from_secs(2));
                match health::probe(port, &spec.health_check_path, budget) {
                    Ok(code) if health::is_healthy(code) => {
                        return Ok(format!(
                            "healthy after {:.1}s (GET {} -> {code})",
                            started.elapsed().as_secs_f64(),
                            url.unwrap_or_default()
                        ))
                    }
                    Ok(code) => last_problem = format!("HTTP status {code}"),
                    Err(problem) => last_problem = problem,
                }
            }
            WorkloadType::Daemon => {
                if now.duration_since(started) >= DAEMON_SETTLE {
                    return Ok(format!(
                        "daemon still running after {:.1}s",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
            WorkloadType::Batch => {}
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                let secs = spec.startup_timeout.unwrap_or_default().as_secs_f64();
                return Err(match (spec.workload_type, &url) {
                    (WorkloadType::Service, Some(url)) => format!(
                        "health check GET {url} did not succeed within {secs}s: {last_problem}"
                    ),
                    (WorkloadType::Batch, _) => {
                        format!("batch workload did not finish within {secs}s")
                    }
                    _ => format!("workload did not become ready within {secs}s"),
                });
            }
        }
        thread::sleep(poll);
    }
}

/// The workload exited during start (the keeper exits the same way, after
/// recording `exit_code`): success only for a batch job that exited 0.
fn finished(spec: &WorkloadSpec, status: ExitStatus, started: Instant) -> Result<String, String> {
    if spec.workload_type != WorkloadType::Batch {
        let when = match spec.workload_type {
            WorkloadType::Service => "before becoming healthy",
            _ => "during startup",
        };
        return Err(format!("workload {} {when}", describe_exit(status)));
    }
    if status.success() {
        Ok(format!(
            "batch workload finished successfully after {:.1}s",
            started.elapsed().as_secs_f64()
        ))
    } else {
        Err(format!("batch workload {}", describe_exit(status)))
    }
}

// ---------------------------------------------------------------- guard

/// The supervisor's side of the guard: a pipe to a `workload guard` process.
/// Writing the pid record arms it; `settle` disarms it; dropping the write
/// end without settling (the supervisor died) makes it stop the workload.
struct Guard {
    pipe: Option<File>,
    child: Option<Child>,
}

impl Guard {
    fn spawn(dir: &Path, log: &File) -> Result<Guard, Failure> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid 2-element array; O_CLOEXEC keeps the write
        // end out of the workload.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io_failure("guard pipe")(io::Error::last_os_error()));
        }
        // SAFETY: pipe2 returned two fresh descriptors that we now own.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let exe = std::env::current_exe().map_err(io_failure("locate own executable"))?;
        let mut cmd = Command::new(exe);
        cmd.args(["workload", "guard"])
            .env_remove(SPEC_ENV)
            .env(DIR_ENV, dir)
            .stdin(Stdio::from(read_end))
            .stdout(Stdio::null())
            .stderr(log.try_clone().map_err(io_failure("workload.log"))?);
        // SAFETY: setsid is async-signal-safe; the guard must not share the
        // supervisor's process group, which Terraform may kill.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(io_failure("start guard process"))?;
        Ok(Guard {
            pipe: Some(File::from(write_end)),
            child: Some(child),
        })
    }

    fn watch(&mut self, record: &PidRecord) {
        if let Some(pipe) = self.pipe.as_mut() {
            let _ = writeln!(pipe, "{} {}", record.pid, record.start_time);
        }
    }

    fn settle(&mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = writeln!(pipe, "settled");
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// `workload guard`: reads "<pid> <start_time>" then waits for "settled".
/// End of input before that means the supervisor died mid-start.
fn guard() -> Result<(), Failure> {
    let dir = workload_dir()?;
    let mut lines = BufReader::new(io::stdin().lock()).lines();
    let record = match lines.next() {
        Some(Ok(line)) => {
            let mut parts = line.split_whitespace();
            match (
                parts.next().and_then(|p| p.parse().ok()),
                parts.next().and_then(|p| p.parse().ok()),
            ) {
                (Some(pid), Some(start_time)) if line != "settled" => PidRecord {
                    pid,
                    start_time,
                    child: None,
                },
                _ => return Ok(()),
            }
        }
        _ => return Ok(()),
    };
    if let Some(Ok(_)) = lines.next() {
        return Ok(());
    }
    eprintln!(
        "treza-workload: start was interrupted; stopping workload process group {}",
        record.pid
    );
    stop_group(&record, STOP_GRACE, || {})?;
    if read_pid_record(&dir).is_some_and(|r| r.same_process(&record)) {
        remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- stop

fn stop() -> Result<(), Failure> {
    let dir = workload_dir()?;
    let Some(record) = read_pid_record(&dir) else {
        say("no workload recorded; nothing to stop");
        return Ok(());
    };
    let grace = read_meta(&dir).map_or(STOP_GRACE, |m| m.stop_grace());
    let started = Instant::now();
    if stop_group(&record, grace, || {})? {
        let code_path = dir.join(EXIT_CODE_FILE);
        let recorded = fs::read_to_string(&code_path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        let how = match recorded {
            // The keeper records the exit before draining output, so a
            // workload that did stop on SIGTERM is reported as such even if
            // the keeper itself was killed while draining.
            Some(c) if c != 128 + libc::SIGKILL => "it exited after SIGTERM".to_string(),
            _ if started.elapsed() >= grace => {
                // SIGKILL took the keeper too, so the exit is recorded here.
                if recorded.is_none() {
                    let _ = fs::write(&code_path, format!("{}\n", 128 + libc::SIGKILL));
                }
                format!(
                    "it ignored SIGTERM for {}s and was killed",
                    grace.as_secs_f64()
                )
            }
            _ => "it exited after SIGTERM".to_string(),
        };
        say(&format!(
            "stopped workload process group {}: {how}",
            record.pid
        ));
    } else {
        say("workload was not running");
    }
    remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
    Ok(())
}

// ---------------------------------------------------------------- status

/// What `workload status` prints, as one JSON object.
///
/// - `running`: the recorded keeper (and so its workload) is alive.
/// - `healthy`: running and, for a service, one HTTP probe of
///   `health_check_path` on the first exposed port answered 2xx/3xx; a
///   finished batch is healthy when it exited 0.
/// - `pid`: the workload's process (the keeper's if unknown).
/// - `exit_code`: how the workload last ended (128+signal when killed), if it did.
/// - `crashed`: it was started and not stopped, and is gone.
/// - `reason`: why it is not healthy; `None` when it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadStatus {
    pub running: bool,
    pub healthy: bool,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub crashed: bool,
    pub reason: Option<String>,
}

/// Reads the status of the workload recorded in `dir`, with one health probe
/// for a running service (bounded by its health check interval, at most 2 s).
/// Cheap enough to call on every poll: a few `/proc` reads and at most one
/// local HTTP request; it changes nothing.
pub fn workload_status(dir: &Path) -> WorkloadStatus {
    let record = read_pid_record(dir);
    let meta = read_meta(dir);
    let exit_code = fs::read_to_string(dir.join(EXIT_CODE_FILE))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    let running = record.is_some_and(|r| r.leader_alive());
    let pid = record.map(|r| r.child.unwrap_or(r.pid));
    let ended = |code: Option<i32>| match code {
        Some(c) if c > 128 => format!("exit status {c} (signal {})", c - 128),
        Some(c) => format!("exit status {c}"),
        None => "unknown exit status".to_string(),
    };
    let (healthy, crashed, reason) = match (record, running) {
        (Some(_), true) => match meta
            .as_ref()
            .filter(|m| m.workload_type == WorkloadType::Service.as_str())
        {
            Some(m) => {
                let port = m.expose_ports.first().copied().unwrap_or(0);
                match probe_once(port, &m.health_check_path, m.health_check_interval()) {
                    Ok(()) => (true, false, None),
                    Err(problem) => (false, false, Some(problem)),
                }
            }
            None => (true, false, None),
        },
        (Some(_), false) => (
            false,
            true,
            Some(format!(
                "the workload stopped without being asked to ({})",
                ended(exit_code)
            )),
        ),
        (None, _) => {
            let batch = meta
                .as_ref()
                .is_some_and(|m| m.workload_type == WorkloadType::Batch.as_str());
            match exit_code {
                Some(0) if batch => (true, false, None),
                Some(_) if batch => (
                    false,
                    false,
                    Some(format!("the batch workload failed ({})", ended(exit_code))),
                ),
                _ => (false, false, Some("no workload is running".to_string())),
            }
        }
    };
    WorkloadStatus {
        running,
        healthy,
        pid,
        exit_code,
        crashed,
        reason,
    }
}

fn status() -> Result<(), Failure> {
    let dir = workload_dir()?;
    let status = workload_status(&dir);
    let text = serde_json::to_string(&status).map_err(|e| Failure(e.to_string()))?;
    println!("{text}");
    Ok(())
}

// ---------------------------------------------------------------- keep

extern "C" fn keeper_on_signal(_: libc::c_int) {}

/// `workload keep`: parent of the workload for its whole life. Reports the
/// workload's pid (or why it could not start) on stdout, then copies its
/// output, redacted, into `workload.log`, records its exit and exits the
/// same way. SIGTERM/SIGINT/SIGHUP only reach the workload (the group
/// gets them); the keeper waits for it so the last lines and the exit code
/// are written.
fn keep() -> Result<(), Failure> {
    let (spec, _) = read_spec()?;
    let dir = workload_dir()?;
    // Descendants that leave the group (setsid) are re-parented to the
    // keeper, not to init, so `stop` still finds and stops them.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only changes this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    let handler: extern "C" fn(libc::c_int) = keeper_on_signal;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler does nothing; a caught signal resets to its
        // default in the exec'd workload, so the workload still gets it.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..])
        .env_clear()
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in BASE_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.envs(&spec.environment);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            report_to_start(&format!(
                "error cannot start workload command {:?}: {e}",
                spec.command[0]
            ));
            return Err(Failure(format!(
                "cannot start workload command {:?}: {e}",
                spec.command[0]
            )));
        }
    };
    report_to_start(&format!("pid {}", child.id()));

    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))
        .map_err(io_failure("workload.log"))?;
    let redactor = std::sync::Arc::new(treza_core::Redactor::new(spec.environment.values()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let mut pumps = 0;
    let out = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn io::Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn io::Read + Send>);
    for pipe in [out, err].into_iter().flatten() {
        let log = log.try_clone().map_err(io_failure("workload.log"))?;
        let redactor = redactor.clone();
        let done = done_tx.clone();
        thread::spawn(move || {
            copy_redacted(pipe, log, &redactor);
            let _ = done.send(());
        });
        pumps += 1;
    }
    drop(done_tx);

    let status = loop {
        match child.wait() {
            Ok(status) => break status,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_failure("wait for workload")(e)),
        }
    };
    // The exit code first: a `stop` whose grace ends during the drain below
    // must still find how the workload really ended.
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let _ = fs::write(dir.join(EXIT_CODE_FILE), format!("{code}\n"));
    let deadline = Instant::now() + KEEPER_DRAIN;
    while pumps > 0 {
        match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => pumps -= 1,
            Err(_) => break,
        }
    }
    let mut log = log;
    let _ = writeln!(log, "treza-workload: workload {}", describe_exit(status));
    // Exit the way the workload did, so `start` (our parent) sees its status.
    if let Some(sig) = status.signal() {
        // SAFETY: restoring the default action and raising a signal on
        // ourselves has no memory-safety preconditions.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
    std::process::exit(status.code().unwrap_or(1));
}

/// Writes the keeper's one report line to `start`, then lets go of the pipe
/// so a later write can never fail on a closed reader.
fn report_to_start(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto fd 1 replaces our stdout with /dev/null.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
}

/// Copies lines from `pipe` to `log`, each redacted and written in one call
/// (O_APPEND keeps the two streams' lines whole); lines longer than
/// [`MAX_LOG_LINE`] are written in pieces.
fn copy_redacted(pipe: Box<dyn io::Read + Send>, mut log: File, redactor: &treza_core::Redactor) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match io::Read::take(&mut reader, MAX_LOG_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let newline = buf.last() == Some(&b'\n');
                if newline {
                    buf.pop();
                }
                let text = String::from_utf8_lossy(&buf);
                let mut line = redactor.redact(&text).into_owned();
                line.push('\n');
                let _ = log.write_all(line.as_bytes());
            }
        }
    }
}
