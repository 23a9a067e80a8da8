//! The sandbox worker alone, as a binary of this crate so that its tests can check and dry-run
//! scripts in real workers (`CARGO_BIN_EXE_*` exists only for a package's own binaries).
//! `thwonk __sandbox-worker` runs the same function.

fn main() -> std::process::ExitCode {
    thwonk_sandbox::worker::main()
}
