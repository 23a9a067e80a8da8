//! Starting worker processes, all from one long-lived thread.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process.
//! The pool is called from tokio's blocking threads, which come and go; a worker forked from
//! one of them would be SIGKILLed when that thread idled out. So every worker is forked by
//! the pool's spawner thread, which lives exactly as long as the pool: when the pool is
//! dropped (or the daemon dies), its workers die with it.

use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Sender, SyncSender};

use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};

use crate::worker::ARG;

type SpawnJob = (Command, SyncSender<io::Result<Child>>);

/// The pool's spawner thread, started on first use.
#[derive(Default)]
pub struct Spawner {
    jobs: Mutex<Option<Sender<SpawnJob>>>,
}

impl Spawner {
    /// Starts `program __sandbox-worker MEMORY_MIB` with piped stdio.
    pub fn spawn(&self, program: &Path, memory_mib: u64) -> io::Result<Child> {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let sender = match &*jobs {
                Some(sender) => sender.clone(),
                None => {
                    let (tx, rx) = mpsc::channel::<SpawnJob>();
                    std::thread::Builder::new()
                        .name("thwonk-sandbox-spawner".into())
                        .spawn(move || {
                            for (mut command, done) in rx {
                                let _ = done.send(command.spawn());
                            }
                        })?;
                    jobs.insert(tx).clone()
                }
            };
            sender
                .send((command(program, memory_mib), done_tx))
                .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        }
        done_rx
            .recv()
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }
}

fn command(program: &Path, memory_mib: u64) -> Command {
    let mut command = Command::new(program);
    command
        .arg(ARG)
        .arg(memory_mib.to_string())
        // Nothing from the daemon's environment (database URLs, tokens) reaches a worker.
        .env_clear()
        // glibc reserves 64 MiB of address space per malloc arena and thread; two arenas keep
        // a worker inside its RLIMIT_AS headroom.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group: a Ctrl-C at the terminal reaches the daemon, which shuts down
    // gracefully and lets runs in progress finish, rather than every worker at once.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let parent = getpid();
    let in_child = move || -> io::Result<()> {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        // The parent may have died between fork and prctl: then nothing would kill us later.
        if getppid() != Some(parent) {
            return Err(io::Error::other(
                "the parent exited while starting the worker",
            ));
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec; it only makes two system calls
    // (prctl, getppid) and compares integers: no allocation, no locks.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, in_child);
    }
    command
}
