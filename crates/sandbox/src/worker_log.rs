//! A worker's stderr: forwarded line by line to the parent's log, and read for the last
//! words that explain a death.
//!
//! A worker has no logger of its own; what it prints are Rust's dying messages: "memory
//! allocation of N bytes failed" (it hit `RLIMIT_AS`: the run ran out of memory), "has
//! overflowed its stack", a panic. The exit status alone cannot tell an allocation failure
//! from any other abort, so the watcher remembers which of these it saw.

use std::io::{BufRead, BufReader, Read};
use std::process::ChildStderr;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use tracing::warn;

/// Longest stderr line forwarded to the log; the rest of the line is dropped.
const MAX_LINE_BYTES: usize = 4096;
/// How long to wait for the last stderr lines of a worker that has exited.
const LAST_WORDS_WAIT: Duration = Duration::from_secs(1);

/// What a worker's dying messages say about its death.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LastWords {
    #[default]
    Nothing,
    /// An allocation failed: the address-space limit was reached.
    OutOfMemory,
    /// Rust's guard page caught a native stack overflow.
    StackOverflow,
}

/// The thread that reads one worker's stderr until it closes.
pub struct WorkerLog {
    last_words: Receiver<LastWords>,
}

impl WorkerLog {
    pub fn start(stderr: ChildStderr, pid: u32) -> std::io::Result<WorkerLog> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("thwonk-sandbox-stderr".into())
            .spawn(move || {
                let _ = tx.send(forward(stderr, pid));
            })?;
        Ok(WorkerLog { last_words: rx })
    }

    /// Once the worker has exited: what its stderr said last.
    pub fn last_words(&self) -> LastWords {
        self.last_words
            .recv_timeout(LAST_WORDS_WAIT)
            .unwrap_or_default()
    }
}

fn forward(stderr: ChildStderr, pid: u32) -> LastWords {
    let mut seen = LastWords::Nothing;
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds the buffer: a worker spewing one endless line cannot grow it.
        match Read::take(&mut reader, MAX_LINE_BYTES as u64).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return seen,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.contains("memory allocation of") && text.contains("failed") {
            seen = LastWords::OutOfMemory;
        } else if text.contains("has overflowed its stack") {
            seen = LastWords::StackOverflow;
        }
        if !text.is_empty() {
            warn!(worker = pid, "sandbox worker: {text}");
        }
    }
}
