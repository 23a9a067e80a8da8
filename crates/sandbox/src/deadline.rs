//! The wall-clock deadline of one job: a watchdog that SIGKILLs the worker when it expires.
//!
//! A script stuck in a built-in (regex backtracking, `Array(5e7).fill(0)`) cannot be
//! interrupted from inside, and a blocked read or write on the pipes cannot time out by
//! itself: killing the process unblocks everything at once, since the pipes close.
//! The watchdog is disarmed before the worker is reaped, so it never signals a recycled pid.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// An armed deadline; [`Deadline::disarm`] says whether it fired.
pub struct Deadline {
    cancel: Sender<()>,
    watchdog: JoinHandle<bool>,
}

impl Deadline {
    /// SIGKILLs `pid` once `after` has passed, unless disarmed first.
    pub fn arm(pid: Pid, after: Duration) -> io::Result<Deadline> {
        let (cancel, cancelled) = mpsc::channel();
        let watchdog = std::thread::Builder::new()
            .name("thwonk-sandbox-deadline".into())
            .spawn(move || match cancelled.recv_timeout(after) {
                Err(RecvTimeoutError::Timeout) => {
                    let _ = kill_process(pid, Signal::KILL);
                    true
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
            })?;
        Ok(Deadline { cancel, watchdog })
    }

    /// Stops the watchdog; true if it had already killed the worker.
    pub fn disarm(self) -> bool {
        let _ = self.cancel.send(());
        self.watchdog.join().unwrap_or(true)
    }
}
