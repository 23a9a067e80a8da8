//! Tests only: the sandbox worker on a system without landlock, made real.
//!
//! Container runtimes' seccomp profiles have long answered the landlock system calls with
//! `ENOSYS` (the kernel then looks like one built without landlock). This program does the
//! same to itself, with a seccomp filter that the kernel keeps across `exec`, then becomes
//! the real worker (`thwonk-sandbox-worker`, next to it) with the same arguments. The worker
//! tries landlock as always and the kernel refuses it: what `runner.require_wall` must catch.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;

fn main() -> std::process::ExitCode {
    let arch = match seccompiler::TargetArch::try_from(std::env::consts::ARCH) {
        Ok(arch) => arch,
        Err(e) => return fail(&e.to_string()),
    };
    let no_landlock = BTreeMap::from([
        (libc::SYS_landlock_create_ruleset, Vec::new()),
        (libc::SYS_landlock_add_rule, Vec::new()),
        (libc::SYS_landlock_restrict_self, Vec::new()),
    ]);
    let filter = seccompiler::SeccompFilter::new(
        no_landlock,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    );
    let program = filter
        .map_err(|e| e.to_string())
        .and_then(|f| seccompiler::BpfProgram::try_from(f).map_err(|e| e.to_string()));
    match program {
        Ok(program) => {
            if let Err(e) = seccompiler::apply_filter(&program) {
                return fail(&e.to_string());
            }
        }
        Err(e) => return fail(&e),
    }
    let worker = match std::env::current_exe() {
        Ok(me) => me.with_file_name("thwonk-sandbox-worker"),
        Err(e) => return fail(&e.to_string()),
    };
    let e = std::process::Command::new(&worker)
        .args(std::env::args_os().skip(1))
        .exec();
    fail(&format!("cannot run {}: {e}", worker.display()))
}

fn fail(why: &str) -> std::process::ExitCode {
    eprintln!("thwonk-sandbox-no-landlock: {why}");
    std::process::ExitCode::FAILURE
}
