//! Process bookkeeping for the supervisor: the pid file, liveness that is
//! safe against pid reuse, and stopping a whole process group.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub const PID_FILE: &str = "workload.pid";
pub const LOG_FILE: &str = "workload.log";
pub const EXIT_CODE_FILE: &str = "exit_code";
/// The spec without command and environment, for `status` and `stop`.
pub const META_FILE: &str = "workload.json";

/// What `workload.pid` records: the process (also its group and session
/// leader) and its start time in clock ticks since boot, from
/// `/proc/<pid>/stat`, so a recycled pid is never mistaken for ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// The keeper: group and session leader, parent of the workload.
    pub pid: i32,
    pub start_time: u64,
    /// The workload process itself (the keeper's child), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<i32>,
}

/// The fields of `/proc/<pid>/stat` the supervisor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub start_time: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); pgrp is field 5, starttime field 22.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

pub fn read_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A process is alive if it exists and is not a zombie.
fn is_live(stat: &ProcStat) -> bool {
    !matches!(stat.state, 'Z' | 'X' | 'x')
}

impl PidRecord {
    pub fn capture(pid: i32) -> io::Result<Self> {
        let stat = read_stat(pid).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {pid} vanished before its start time could be read"),
            )
        })?;
        Ok(PidRecord {
            pid,
            start_time: stat.start_time,
            child: None,
        })
    }

    /// True when the recorded process still runs (same pid, same start time).
    pub fn leader_alive(&self) -> bool {
        matches!(read_stat(self.pid), Some(s) if s.start_time == self.start_time && is_live(&s))
    }

    /// The same process as `other` (pid and start time; `child` aside).
    pub fn same_process(&self, other: &PidRecord) -> bool {
        self.pid == other.pid && self.start_time == other.start_time
    }

    /// Pids of live processes in the recorded process group, and of the
    /// keeper's descendants that left it (`setsid`, `setpgid`: the keeper is
    /// a child subreaper, so they stay below it). The group id is the
    /// leader's pid, which Linux does not hand out again while any member of
    /// the group exists; a leader with a different start time means the pid
    /// was recycled, and then nothing is ours.
    pub fn live_members(&self) -> Vec<i32> {
        let leader_is_ours = match read_stat(self.pid) {
            Some(s) if s.start_time != self.start_time => {
                if s.pgrp == self.pid {
                    return Vec::new();
                }
                false
            }
            Some(_) => true,
            None => false,
        };
        let table = process_table();
        let mut members: Vec<i32> = table
            .iter()
            .filter(|(_, s)| s.pgrp == self.pid && is_live(s))
            .map(|(pid, _)| *pid)
            .collect();
        if leader_is_ours {
            for pid in descendants(&table, self.pid) {
                if !members.contains(&pid) {
                    members.push(pid);
                }
            }
        }
        members
    }
}

/// Every process's stat, read once.
fn process_table() -> Vec<(i32, ProcStat)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// Live descendants of `root` (not `root` itself), following parent links.
fn descendants(table: &[(i32, ProcStat)], root: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, s) in table {
            if s.ppid == parent && *pid != root && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found.retain(|pid| table.iter().any(|(p, s)| p == pid && is_live(s)));
    found
}

pub fn pid_path(dir: &Path) -> PathBuf {
    dir.join(PID_FILE)
}

pub fn read_pid_record(dir: &Path) -> Option<PidRecord> {
    let text = fs::read_to_string(pid_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the pid file atomically (temp file + rename).
pub fn write_pid_record(dir: &Path, record: &PidRecord) -> io::Result<()> {
    let tmp = dir.join(format!(".{PID_FILE}.tmp"));
    let text = serde_json::to_string(record).map_err(io::Error::other)?;
    fs::write(&tmp, text + "\n")?;
    fs::rename(&tmp, pid_path(dir))
}

pub fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The group, then every member found outside it (descendants that left).
fn signal_all(record: &PidRecord, signal: i32) {
    let members = record.live_members();
    signal_group(record.pid, signal);
    for pid in members {
        // SAFETY: kill only sends a signal to a process found below our keeper.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; errors (ESRCH) mean nothing to do.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Stops the recorded process group: SIGTERM, up to `grace` for it to go,
/// then SIGKILL. `reap` is called while waiting so a caller that is the
/// leader's parent can collect it (a zombie leader does not count as live).
/// Returns Ok(false) if nothing was running.
pub fn stop_group(
    record: &PidRecord,
    grace: Duration,
    mut reap: impl FnMut(),
) -> Result<bool, String> {
    if record.live_members().is_empty() {
        return Ok(false);
    }
    signal_all(record, libc::SIGTERM);
    if wait_until_gone(record, grace, &mut reap) {
        return Ok(true);
    }
    signal_all(record, libc::SIGKILL);
    if wait_until_gone(record, Duration::from_secs(5), &mut reap) {
        return Ok(true);
    }
    Err(format!(
        "process group {} still has live processes after SIGKILL",
        record.pid
    ))
}

fn wait_until_gone(record: &PidRecord, limit: Duration, reap: &mut impl FnMut()) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        reap();
        if record.live_members().is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 4242);
        assert_eq!(s.start_time, 987654);
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let rec = PidRecord::capture(me).expect("own stat");
        assert!(rec.leader_alive());
        let recycled = PidRecord {
            pid: me,
            start_time: rec.start_time + 1,
            child: None,
        };
        assert!(!recycled.leader_alive());
    }

    #[test]
    fn pid_file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_pid_record(dir.path()), None);
        let rec = PidRecord {
            pid: 12,
            start_time: 34,
            child: Some(56),
        };
        write_pid_record(dir.path(), &rec).expect("write");
        assert_eq!(read_pid_record(dir.path()), Some(rec));
        // Records written before `child` existed still read.
        fs::write(pid_path(dir.path()), "{\"pid\": 1, \"start_time\": 2}").expect("write");
        assert_eq!(
            read_pid_record(dir.path()),
            Some(PidRecord {
                pid: 1,
                start_time: 2,
                child: None
            })
        );
    }
}
