//! The sandbox worker process: `thwonk __sandbox-worker MEMORY_MIB`.
//!
//! The `thwonk` binary re-executes itself in this mode (see [`crate::pool`]). The worker
//! raises its [wall](crate::wall), says `Ready`, then serves jobs from stdin one at a time
//! until stdin closes: each `Run` gets a fresh Boa context through [`crate::run`], with file
//! reads forwarded to the parent as frames; each `Check` runs [`crate::check`]. Nothing here
//! survives from one job to the next except the process itself, which is what makes the pool
//! warm.
//!
//! Anything a script can do to the process (abort on a failed allocation, overflow the
//! native stack, spin in a regex) ends at most this process; the parent sees the pipe close
//! or kills it, and reports the run as failed.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use thwonk_core::run::{FileInfo, StoredFeedItem, VfsReader};

use crate::frame::{FrameError, FromWorker, ToWorker, VfsReply, read_frame, write_frame};
use crate::wall;

/// The first argument that selects worker mode. Hidden: users never type it.
pub const ARG: &str = "__sandbox-worker";

/// The worker's `main`. Arguments: [`ARG`] then the memory limit in MiB.
pub fn main() -> ExitCode {
    let mut args = std::env::args().skip_while(|a| a != ARG).skip(1);
    let Some(memory_mib) = args.next().and_then(|m| m.parse::<u64>().ok()) else {
        eprintln!("usage: thwonk {ARG} MEMORY_MIB (started by thwonk itself)");
        return ExitCode::FAILURE;
    };
    // Nothing inherited by accident stays open (descriptors 3 and up).
    wall::close_inherited();
    // Locked before the wall goes up: taking the locks may allocate, never open anything.
    let mut pipes = Pipes {
        input: io::stdin().lock(),
        output: io::stdout().lock(),
    };
    let report = wall::raise(memory_mib);
    match serve(&mut pipes, report) {
        // The parent closed stdin: the pool is shutting down or replacing this worker.
        Ok(()) | Err(FrameError::Closed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The worker's stdin and stdout.
struct Pipes<R, W> {
    input: R,
    output: W,
}

fn serve<R: Read, W: Write>(
    pipes: &mut Pipes<R, W>,
    report: wall::WallReport,
) -> Result<(), FrameError> {
    write_frame(&mut pipes.output, &FromWorker::Ready(report))?;
    loop {
        let reply = match read_frame::<ToWorker>(&mut pipes.input)? {
            ToWorker::Run(request) => {
                wall::arm_cpu_backstop(request.limits.wall_clock_ms);
                FromWorker::Outcome(Box::new(crate::run(&request, pipes)))
            }
            ToWorker::Check { source, limits } => {
                wall::arm_cpu_backstop(limits.wall_clock_ms);
                FromWorker::Checked(crate::check(&source, &limits))
            }
            ToWorker::Probe => FromWorker::Probed(wall::probe()),
            ToWorker::VfsReply(_) => {
                return Err(FrameError::Unexpected(
                    "a file answer arrived with no question".into(),
                ));
            }
        };
        write_frame(&mut pipes.output, &reply)?;
    }
}

/// File reads during a run: each one is a round trip to the parent's `VfsReader`.
impl<R: Read, W: Write> VfsReader for Pipes<R, W> {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let question = FromWorker::VfsRead {
            path: path.to_string(),
        };
        match self.ask(&question)? {
            VfsReply::Read(answer) => answer,
            _ => Err(MIXED_UP.to_string()),
        }
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String> {
        let question = FromWorker::VfsList {
            prefix: prefix.to_string(),
        };
        match self.ask(&question)? {
            VfsReply::List(answer) => answer,
            _ => Err(MIXED_UP.to_string()),
        }
    }

    fn feed_items(&mut self, feed: &str, limit: usize) -> Result<Vec<StoredFeedItem>, String> {
        let question = FromWorker::FeedItems {
            feed: feed.to_string(),
            limit,
        };
        match self.ask(&question)? {
            VfsReply::Feed(answer) => answer,
            _ => Err(MIXED_UP.to_string()),
        }
    }
}

const MIXED_UP: &str = "the runner answered a different file question";

impl<R: Read, W: Write> Pipes<R, W> {
    fn ask(&mut self, question: &FromWorker) -> Result<VfsReply, String> {
        let lost = |e: FrameError| format!("the runner did not answer: {e}");
        write_frame(&mut self.output, question).map_err(lost)?;
        match read_frame::<ToWorker>(&mut self.input).map_err(lost)? {
            ToWorker::VfsReply(reply) => Ok(reply),
            _ => Err(MIXED_UP.to_string()),
        }
    }
}
