//! Why a worker stopped mid-job, in the words a run record or a deploy refusal uses.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use thwonk_core::run::{ErrorKind, RunError};

use crate::worker_log::LastWords;

/// How a job's worker ended.
#[derive(Debug)]
pub struct Death {
    /// The parent killed it at the wall-clock deadline.
    pub timed_out: bool,
    /// Its exit status, if it could be reaped.
    pub status: Option<ExitStatus>,
    pub last_words: LastWords,
    /// How the exchange broke, from the parent's side ("the other side closed the pipe").
    pub broken: String,
}

impl Death {
    /// The run's failure, for a run that was in progress. `wall_clock_ms` and `memory_mib`
    /// are the limits the worker ran under.
    pub fn run_error(&self, wall_clock_ms: u64, memory_mib: u64) -> RunError {
        let (kind, message) = if self.timed_out {
            (
                ErrorKind::Timeout,
                format!(
                    "wall-clock limit of {wall_clock_ms} ms exceeded (the sandbox worker was stopped)"
                ),
            )
        } else if self.signal() == Some(libc::SIGXCPU) {
            (
                ErrorKind::Timeout,
                "CPU-time limit exceeded (the sandbox worker was stopped)".to_string(),
            )
        } else if self.last_words == LastWords::OutOfMemory {
            (
                ErrorKind::OutOfMemory,
                format!(
                    "memory limit of {memory_mib} MiB exceeded (the sandbox worker was stopped)"
                ),
            )
        } else {
            (
                ErrorKind::WorkerCrashed,
                format!("the sandbox worker died: {}", self.describe()),
            )
        };
        RunError {
            kind,
            message,
            stack: None,
        }
    }

    /// What happened, for a log line or a crash message.
    pub fn describe(&self) -> String {
        let how = match (self.status, self.signal()) {
            (_, Some(signal)) => format!("killed by signal {signal}{}", signal_name(signal)),
            (Some(status), None) => format!("exited with {status}"),
            (None, None) => "could not be reaped".to_string(),
        };
        let why = match self.last_words {
            LastWords::OutOfMemory => " after an allocation failed",
            LastWords::StackOverflow => " after a native stack overflow",
            LastWords::Nothing => "",
        };
        format!("{how}{why} ({})", self.broken)
    }

    fn signal(&self) -> Option<i32> {
        self.status.and_then(|s| s.signal())
    }
}

/// The signals a dying worker usually shows, named for the log.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGSYS => " (SIGSYS)",
        libc::SIGXCPU => " (SIGXCPU)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(timed_out: bool, raw_status: i32, last_words: LastWords) -> Death {
        Death {
            timed_out,
            status: Some(ExitStatus::from_raw(raw_status)),
            last_words,
            broken: "the other side closed the pipe".into(),
        }
    }

    #[test]
    fn a_death_is_named_by_its_cause() {
        let abort = libc::SIGABRT;
        let kind = |d: Death| d.run_error(2_000, 256).kind;
        assert_eq!(
            kind(death(true, libc::SIGKILL, LastWords::Nothing)),
            ErrorKind::Timeout
        );
        assert_eq!(
            kind(death(false, libc::SIGXCPU, LastWords::Nothing)),
            ErrorKind::Timeout
        );
        assert_eq!(
            kind(death(false, abort, LastWords::OutOfMemory)),
            ErrorKind::OutOfMemory
        );
        assert_eq!(
            kind(death(false, abort, LastWords::StackOverflow)),
            ErrorKind::WorkerCrashed
        );
        let d = death(false, abort, LastWords::StackOverflow);
        assert!(
            d.describe()
                .contains("(SIGABRT) after a native stack overflow"),
            "{}",
            d.describe()
        );
    }
}
