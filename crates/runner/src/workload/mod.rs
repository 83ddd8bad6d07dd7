//! The workload supervisor behind `treza workload start|stop|status`, run by
//! the `providers/local` Terraform module's provisioners.
//!
//! Input comes only from the environment: `TREZA_WORKLOAD_SPEC` (JSON, see
//! [`WorkloadSpec`]) and `TREZA_WORKLOAD_DIR` (where `workload.pid`,
//! `workload.log` and `exit_code` live). The workload is exec'd directly from
//! its argv (no shell), in its own session, so it outlives Terraform and the
//! runner. `start` returns only once the workload is ready (healthy, alive, or
//! finished successfully, by type); otherwise it stops the process group and
//! fails with one line `treza-workload: error: <reason>` on stderr.
//!
//! A guard process (`workload guard`, internal) watches a pipe from `start`:
//! if `start` dies before it settles (Terraform interrupted and killed it),
//! the guard stops the half-started workload, so an interrupted deploy never
//! leaves a process behind.
//!
//! Invariant: environment values are never printed, not even in errors.

mod health;
mod process;
mod spec;

pub use process::{PidRecord, EXIT_CODE_FILE, LOG_FILE, PID_FILE};
pub use spec::{SpecError, WorkloadSpec, WorkloadType, DEFAULT_STARTUP_TIMEOUT};

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
/// How long a workload gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
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

fn read_spec() -> Result<WorkloadSpec, Failure> {
    let text = std::env::var(SPEC_ENV)
        .map_err(|_| Failure(format!("{SPEC_ENV} is not set (or not UTF-8)")))?;
    WorkloadSpec::from_json(&text).map_err(|e| Failure(e.to_string()))
}

fn say(line: &str) {
    println!("treza-workload: {line}");
    let _ = io::stdout().flush();
}

// ---------------------------------------------------------------- start

fn start() -> Result<(), Failure> {
    let spec = read_spec()?;
    let dir = workload_dir()?;
    fs::create_dir_all(&dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;

    if let Some(record) = read_pid_record(&dir) {
        if record.leader_alive() {
            say(&format!(
                "workload already running (pid {}); nothing to do",
                record.pid
            ));
            return Ok(());
        }
        // A previous run died; clear whatever is left of its group.
        stop_group(&record, STOP_GRACE, || {})?;
        remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
    }
    remove_file_if_present(&dir.join(EXIT_CODE_FILE)).map_err(io_failure("exit_code file"))?;

    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))
        .map_err(io_failure("workload.log"))?;
    let mut guard = Guard::spawn(&dir, &log)?;
    let parent = parent_pid();

    let mut child = spawn_workload(&spec, &dir, &log)?;
    let pid = child.id() as i32;
    let record = match PidRecord::capture(pid) {
        Ok(r) => r,
        Err(_) => {
            // It exited already; its status explains why.
            let status = child.wait().map_err(io_failure("wait for workload"))?;
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
        "started {} workload {:?} as pid {pid}; log: {}",
        spec.workload_type.as_str(),
        spec.command[0],
        dir.join(LOG_FILE).display()
    ));

    let outcome = wait_until_ready(&spec, &mut child, &dir, parent);
    match outcome {
        Ok(message) => {
            if spec.workload_type == WorkloadType::Batch {
                // Finished: nothing of ours may keep running.
                stop_group(&record, STOP_GRACE, || {})?;
                remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
            }
            guard.settle();
            say(&message);
            Ok(())
        }
        Err(reason) => {
            let stopped = stop_group(&record, STOP_GRACE, || {
                let _ = child.try_wait();
            });
            let _ = child.try_wait();
            remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
            guard.settle();
            match stopped {
                Ok(_) => Err(Failure(reason)),
                Err(kill_error) => Err(Failure(format!("{reason}; also: {kill_error}"))),
            }
        }
    }
}

fn io_failure(what: &'static str) -> impl Fn(io::Error) -> Failure {
    move |e| Failure(format!("{what}: {e}"))
}

fn parent_pid() -> i32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

fn spawn_workload(spec: &WorkloadSpec, dir: &Path, log: &File) -> Result<Child, Failure> {
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..])
        .env_clear()
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io_failure("workload.log"))?)
        .stderr(log.try_clone().map_err(io_failure("workload.log"))?);
    for name in BASE_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.envs(&spec.environment);
    // SAFETY: setsid is async-signal-safe; it makes the workload the leader
    // of a new session and process group, detached from Terraform's.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        Failure(format!(
            "cannot start workload command {:?}: {e}",
            spec.command[0]
        ))
    })
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
fn wait_until_ready(
    spec: &WorkloadSpec,
    child: &mut Child,
    dir: &Path,
    parent: i32,
) -> Result<String, String> {
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
            Ok(Some(status)) => return finished(spec, status, dir, started),
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

/// The workload process exited during start: success only for a batch job
/// that exited 0.
fn finished(
    spec: &WorkloadSpec,
    status: ExitStatus,
    dir: &Path,
    started: Instant,
) -> Result<String, String> {
    if spec.workload_type != WorkloadType::Batch {
        let when = match spec.workload_type {
            WorkloadType::Service => "before becoming healthy",
            _ => "during startup",
        };
        return Err(format!("workload {} {when}", describe_exit(status)));
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    fs::write(dir.join(EXIT_CODE_FILE), format!("{code}\n"))
        .map_err(|e| format!("cannot record the exit code: {e}"))?;
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
                (Some(pid), Some(start_time)) if line != "settled" => PidRecord { pid, start_time },
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
    if read_pid_record(&dir) == Some(record) {
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
    if stop_group(&record, STOP_GRACE, || {})? {
        say(&format!("stopped workload process group {}", record.pid));
    } else {
        say("workload was not running");
    }
    remove_file_if_present(&process::pid_path(&dir)).map_err(io_failure("pid file"))?;
    Ok(())
}

// ---------------------------------------------------------------- status

/// What `workload status` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadStatus {
    pub running: bool,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
}

/// Reads the status of the workload recorded in `dir`.
pub fn workload_status(dir: &Path) -> WorkloadStatus {
    let record = read_pid_record(dir);
    let exit_code = fs::read_to_string(dir.join(EXIT_CODE_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    WorkloadStatus {
        running: record.is_some_and(|r| r.leader_alive()),
        pid: record.map(|r| r.pid),
        exit_code,
    }
}

fn status() -> Result<(), Failure> {
    let dir = workload_dir()?;
    let status = workload_status(&dir);
    let text = serde_json::to_string(&status).map_err(|e| Failure(e.to_string()))?;
    println!("{text}");
    Ok(())
}
