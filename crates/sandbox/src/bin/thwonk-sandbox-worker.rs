//! The sandbox worker alone: what `thwonk __sandbox-worker` runs, as a binary of this crate so
//! that its tests and benchmarks can spawn real workers.

fn main() -> std::process::ExitCode {
    thwonk_sandbox::worker::main()
}
