//! One Boa [`Context`] per run, built with the run's limits and nothing from the outside
//! world, and the thread it runs on.
//!
//! A `Context` costs ≈ 1 ms and is `!Send` (its GC heap is thread-local), so each run builds
//! its own on a fresh thread and drops both afterwards: nothing can leak from one run (or one
//! thwonk) into the next.
//!
//! What the context is given, and why:
//! - the instruction budget (`ContextBuilder::instructions_remaining`, Boa's `fuzz` feature):
//!   the one limit that counts every bytecode instruction, callbacks and promise jobs included,
//!   and the [`Meter`] that adds the work done inside built-ins to it ([`crate::meter`]);
//! - the recursion limit, and a loop-iteration limit equal to the budget (Boa counts loop
//!   iterations per call frame, so it is only a backstop, never the budget);
//! - a fixed clock at the trigger time (`Date.now()`, `new Date()`), UTC as the local zone;
//! - no module loader (no `import`), no `eval`/`new Function` (a string compiled at run time
//!   would bypass the nesting scan that keeps Boa's recursive parser on its stack);
//! - `Math.random` seeded from the run id.

use std::cell::Cell;
use std::rc::Rc;

use boa_engine::context::time::FixedClock;
use boa_engine::context::{ContextBuilder, HostHooks};
use boa_engine::module::IdleModuleLoader;
use boa_engine::realm::Realm;
use boa_engine::{
    Context, Finalize, JsNativeError, JsResult, JsString, NativeFunction, Trace, js_string,
};
use thwonk_core::run::SandboxLimits;

use crate::meter::Meter;

/// Stack for the engine's thread. Boa's parser and several built-ins (`JSON.stringify`,
/// callbacks from natives) recurse on the native stack; a big stack turns would-be aborts into
/// ordinary limit errors for all but adversarial inputs. Only touched pages cost memory.
pub const ENGINE_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Runs `f` on a fresh thread with [`ENGINE_STACK_BYTES`] of stack; `None` if it panicked
/// (or the thread could not start).
pub fn on_engine_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("thwonk-sandbox".into())
            .stack_size(ENGINE_STACK_BYTES)
            .spawn_scoped(s, f)
            .ok()?
            .join()
            .ok()
    })
}

/// A context with the run's limits, clock and seed, and no way out, and the [`Meter`] its
/// built-ins charge their work to.
pub fn new_context(limits: &SandboxLimits, now_ms: i64, seed: &str) -> JsResult<(Context, Meter)> {
    let budget = usize::try_from(limits.instructions).unwrap_or(usize::MAX);
    let mut context = ContextBuilder::default()
        .instructions_remaining(budget)
        .clock(Rc::new(FixedClock::from_millis(now_ms.max(0) as u64)))
        .host_hooks(Rc::new(SandboxHooks { now_ms }))
        .module_loader(Rc::new(IdleModuleLoader))
        .build()?;
    let runtime = context.runtime_limits_mut();
    runtime.set_recursion_limit(limits.recursion_depth as usize);
    runtime.set_loop_iteration_limit(limits.instructions);
    install_seeded_random(&mut context, seed)?;
    let meter = Meter::new(limits.instructions);
    crate::meter::install(&mut context, &meter)?;
    Ok((context, meter))
}

struct SandboxHooks {
    now_ms: i64,
}

impl HostHooks for SandboxHooks {
    fn ensure_can_compile_strings(
        &self,
        _realm: Realm,
        _parameters: &[JsString],
        _body: &JsString,
        _direct: bool,
        _context: &mut Context,
    ) -> JsResult<()> {
        Err(JsNativeError::eval()
            .with_message("code generation from strings (eval, new Function) is disabled")
            .into())
    }

    fn utc_now(&self) -> i64 {
        self.now_ms
    }

    /// Rules run on servers in any zone; the same script must see the same dates everywhere.
    fn local_timezone_offset_seconds(&self, _unix_time_seconds: i64) -> i32 {
        0
    }
}

/// The state of the per-run `Math.random` (SplitMix64).
#[derive(Clone, Trace, Finalize)]
struct SeededRandom(#[unsafe_ignore_trace] Rc<Cell<u64>>);

impl SeededRandom {
    fn next_f64(&self) -> f64 {
        // SplitMix64: tiny, fast, and statistically fine for scripts (not for secrets).
        let state = self.0.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.0.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits → [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a: a stable hash of the run id (std's hashers are randomly keyed per process).
fn seed_of(seed: &str) -> u64 {
    seed.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

fn install_seeded_random(context: &mut Context, seed: &str) -> JsResult<()> {
    let rng = SeededRandom(Rc::new(Cell::new(seed_of(seed))));
    let random = NativeFunction::from_copy_closure_with_captures(
        |_, _, rng: &SeededRandom, _| Ok(rng.next_f64().into()),
        rng,
    )
    .to_js_function(context.realm());
    let math = context.intrinsics().objects().math();
    math.set(js_string!("random"), random, true, context)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_in_range_and_repeatable() {
        let a = SeededRandom(Rc::new(Cell::new(seed_of("run-1"))));
        let b = SeededRandom(Rc::new(Cell::new(seed_of("run-1"))));
        for _ in 0..1000 {
            let x = a.next_f64();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x.to_bits(), b.next_f64().to_bits());
        }
        let c = SeededRandom(Rc::new(Cell::new(seed_of("run-2"))));
        assert_ne!(
            SeededRandom(Rc::new(Cell::new(seed_of("run-1")))).next_f64(),
            c.next_f64()
        );
    }
}
