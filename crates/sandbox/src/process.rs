//! One worker process from the parent's side: its pipes, its log, and its end.

use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout};
use std::time::Duration;

use rustix::process::Pid;

use crate::deadline::Deadline;
use crate::death::Death;
use crate::frame::{FrameError, FromWorker, ToWorker, read_frame, write_frame};
use crate::pool::PoolError;
use crate::spawner::Spawner;
use crate::wall::WallReport;
use crate::worker_log::WorkerLog;

/// How long a new worker may take to raise its wall and say `Ready`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A started worker that has said `Ready`.
pub struct WorkerProcess {
    child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
    log: WorkerLog,
    pub wall: WallReport,
}

impl WorkerProcess {
    /// Starts a worker and waits until its wall is up.
    pub fn start(
        spawner: &Spawner,
        program: &Path,
        memory_mib: u64,
    ) -> Result<WorkerProcess, PoolError> {
        let cannot = |e: std::io::Error| PoolError::Start {
            program: program.display().to_string(),
            reason: e.to_string(),
        };
        let mut child = spawner.spawn(program, memory_mib).map_err(cannot)?;
        let (Some(input), Some(output), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(cannot(std::io::Error::other("its pipes are missing")));
        };
        let log = match WorkerLog::start(stderr, child.id()) {
            Ok(log) => log,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(cannot(e));
            }
        };
        let mut worker = WorkerProcess {
            child,
            input: BufWriter::new(input),
            output: BufReader::new(output),
            log,
            wall: WallReport {
                address_space_mib: 0,
                landlock: crate::wall::Layer::Missing("not started".into()),
                seccomp: crate::wall::Layer::Missing("not started".into()),
            },
        };
        let deadline = Deadline::arm(worker.pid(), STARTUP_TIMEOUT).map_err(cannot)?;
        let ready = worker.recv();
        let timed_out = deadline.disarm();
        match ready {
            Ok(FromWorker::Ready(wall)) if !timed_out => {
                worker.wall = wall;
                Ok(worker)
            }
            Ok(_) => Err(worker.fail_start(program, timed_out, "it did not say Ready".into())),
            Err(e) => Err(worker.fail_start(program, timed_out, e.to_string())),
        }
    }

    fn fail_start(self, program: &Path, timed_out: bool, broken: String) -> PoolError {
        let death = self.end(timed_out, broken);
        PoolError::Start {
            program: program.display().to_string(),
            reason: death.describe(),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_child(&self.child)
    }

    pub fn send(&mut self, message: &ToWorker<'_>) -> Result<(), FrameError> {
        write_frame(&mut self.input, message)
    }

    pub fn recv(&mut self) -> Result<FromWorker, FrameError> {
        read_frame(&mut self.output)
    }

    /// False once the process has exited (it may die while idle: the kernel's OOM killer,
    /// a stray signal).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the worker if it still runs, reaps it, and says how it ended.
    pub fn end(mut self, timed_out: bool, broken: String) -> Death {
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        Death {
            timed_out,
            status,
            last_words: self.log.last_words(),
            broken,
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Never leave a zombie or an orphan: a worker leaves with its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
