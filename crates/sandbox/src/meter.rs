//! Charging the built-ins by the work they do, so that the instruction budget bounds CPU.
//!
//! Boa counts bytecode instructions, but one instruction can start a built-in that loops in
//! Rust for a long time: `JSON.stringify` of a 10,000-deep array is a handful of
//! instructions and a second of CPU (each level copies its children's text again), and
//! `"x".repeat(1e8)`, `sort` and `join` of big arrays are one instruction each. So the
//! built-ins that do work in proportion to their input are replaced, on every fresh context,
//! by wrappers that charge that work to the run before (or, where the size is only known
//! afterwards, right after) calling the original:
//!
//! | built-in | charged |
//! |---|---|
//! | `JSON.stringify` | each value it writes: its own text times its depth (what Boa copies), plus indentation |
//! | `JSON.parse` | the text's length |
//! | `Array.prototype.sort`, `toSorted` | `n · log2(n)` comparisons, an element's worth each |
//! | `Array.prototype.join`, `toString` | the length, then the joined text |
//! | `indexOf`, `lastIndexOf`, `includes`, `fill`, `reverse`, `copyWithin`, `slice`, `splice`, `concat`, `flat`, `toReversed`, `toSpliced` on arrays | the length (and the result's length) |
//! | `String.prototype.repeat`, `padStart`, `padEnd` | the text they make, before making it |
//! | `split`, `replace`, `replaceAll`, `indexOf`, `lastIndexOf`, `includes`, `normalize`, `toUpperCase`, `toLowerCase`, `trim` on strings | the string's length (and the result's) |
//! | `RegExp.prototype.exec` (and so `match`, `replace`, `split`, `test` with a regex) | the part of the input it scanned, twice |
//!
//! A charge is in instructions: [`UNIT_CHARS`] characters cost one, an array element
//! [`ELEMENT_COST`]. The charges add to Boa's own count; when the two together would pass the budget
//! the built-in is not run and the run ends with `BudgetExceeded`, uncatchably, as when Boa
//! runs out itself. The count is deterministic: the same script on the same input is charged
//! the same, every run. What is not bounded this way: a regular expression that backtracks
//! catastrophically on a short input (its steps are inside the regex engine); the wall clock
//! ends those.

use std::cell::Cell;
use std::rc::Rc;

use boa_engine::error::EngineError;
use boa_engine::object::FunctionObjectBuilder;
use boa_engine::object::builtins::JsArray;
use boa_engine::{
    Context, Finalize, JsError, JsObject, JsResult, JsString, JsValue, NativeFunction, Trace,
    js_string,
};
use boa_gc::{Gc, GcRefCell};

/// Characters copied, scanned or written per instruction charged.
pub const UNIT_CHARS: u64 = 1;
/// Instructions charged per array element visited. Native `fill`, `indexOf`, ... go through
/// the same property operations (and allocations) as a JS loop would: filling a million
/// elements takes as long as ≈ 16 million plain instructions (measured: 349 ms against 51 ms
/// for a 4-million-instruction loop).
pub const ELEMENT_COST: u64 = 16;

/// The run's charges for built-in work, shared by every wrapper and the run's host.
#[derive(Clone)]
pub struct Meter(Rc<MeterState>);

struct MeterState {
    budget: u64,
    charged: Cell<u64>,
    exhausted: Cell<bool>,
    /// Set while Thwonk itself uses a built-in (turning the message into `msg`): its work
    /// is not the script's.
    paused: Cell<bool>,
}

impl Meter {
    pub fn new(budget: u64) -> Meter {
        Meter(Rc::new(MeterState {
            budget,
            charged: Cell::new(0),
            exhausted: Cell::new(false),
            paused: Cell::new(false),
        }))
    }

    /// Runs `f` without charging: for Thwonk's own use of built-ins (building `msg` and
    /// `req.body` from JSON), which must run no script code.
    pub fn uncharged<T>(&self, f: impl FnOnce() -> T) -> T {
        let was = self.0.paused.replace(true);
        let out = f();
        self.0.paused.set(was);
        out
    }

    /// Instructions charged for built-in work so far.
    pub fn charged(&self) -> u64 {
        self.0.charged.get()
    }

    /// Whether a charge was refused (the run is over budget).
    pub fn exhausted(&self) -> bool {
        self.0.exhausted.get()
    }

    /// Boa's count plus the charges.
    pub fn used(&self, context: &Context) -> u64 {
        let boa = self
            .0
            .budget
            .saturating_sub(context.instructions_remaining() as u64);
        boa.saturating_add(self.charged())
    }

    /// Instructions left of the budget.
    pub fn left(&self, context: &Context) -> u64 {
        self.0.budget.saturating_sub(self.used(context))
    }

    /// Charges `cost` instructions, or ends the run (an error no `catch` sees) when that would
    /// pass the budget; the work is then not done.
    pub fn charge(&self, cost: u64, context: &Context) -> JsResult<()> {
        if self.0.paused.get() {
            return Ok(());
        }
        let used = self.used(context);
        if used.saturating_add(cost) > self.0.budget {
            self.0.exhausted.set(true);
            // The run reports the whole budget used.
            let boa = used - self.charged();
            self.0.charged.set(self.0.budget.saturating_sub(boa));
            return Err(JsError::from(EngineError::NoInstructionsRemain));
        }
        self.0.charged.set(self.charged() + cost);
        Ok(())
    }
}

/// Instructions for `n` characters.
fn chars(n: u64) -> u64 {
    n.div_ceil(UNIT_CHARS)
}

/// Instructions for `n` elements.
fn elements(n: u64) -> u64 {
    n.saturating_mul(ELEMENT_COST)
}

/// What a wrapper charges before calling the original.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Before {
    Nothing,
    /// The length of `this` (an array or array-like).
    ThisLength,
    /// `n · log2 n` for the length of `this`.
    Sort,
    /// The length of `this` as a string.
    ThisText,
    /// The length of argument 0 as a string (`JSON.parse`).
    ArgText,
    /// `this.length · count` (`repeat`).
    Repeat,
    /// `maxLength - this.length` (`padStart`, `padEnd`).
    Pad,
}

/// What a wrapper charges after the original returned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    /// The result's length (a string's characters or an array's elements).
    ResultLength,
    /// The input a `RegExp.prototype.exec` scanned, from `lastIndex` to the match's end (or
    /// the end of the input when it failed).
    Scanned,
}

/// Replaces the built-ins listed in the module docs with charging wrappers.
pub fn install(context: &mut Context, meter: &Meter) -> JsResult<()> {
    let json = context.intrinsics().objects().json();
    let constructors = context.intrinsics().constructors();
    let array = constructors.array().prototype();
    let string = constructors.string().prototype();
    let regexp = constructors.regexp().prototype();

    install_stringify(&json, meter, context)?;
    wrap(
        &json,
        "parse",
        Before::ArgText,
        After::Nothing,
        meter,
        context,
    )?;
    for name in ["sort", "toSorted"] {
        wrap(&array, name, Before::Sort, After::Nothing, meter, context)?;
    }
    for name in ["join", "toString"] {
        wrap(
            &array,
            name,
            Before::ThisLength,
            After::ResultLength,
            meter,
            context,
        )?;
    }
    for name in [
        "indexOf",
        "lastIndexOf",
        "includes",
        "fill",
        "reverse",
        "copyWithin",
    ] {
        wrap(
            &array,
            name,
            Before::ThisLength,
            After::Nothing,
            meter,
            context,
        )?;
    }
    for name in [
        "slice",
        "splice",
        "concat",
        "flat",
        "toReversed",
        "toSpliced",
    ] {
        wrap(
            &array,
            name,
            Before::ThisLength,
            After::ResultLength,
            meter,
            context,
        )?;
    }
    wrap(
        &string,
        "repeat",
        Before::Repeat,
        After::Nothing,
        meter,
        context,
    )?;
    for name in ["padStart", "padEnd"] {
        wrap(&string, name, Before::Pad, After::Nothing, meter, context)?;
    }
    for name in [
        "indexOf",
        "lastIndexOf",
        "includes",
        "normalize",
        "toUpperCase",
        "toLowerCase",
        "trim",
    ] {
        wrap(
            &string,
            name,
            Before::ThisText,
            After::Nothing,
            meter,
            context,
        )?;
    }
    for name in ["split", "replace", "replaceAll"] {
        wrap(
            &string,
            name,
            Before::ThisText,
            After::ResultLength,
            meter,
            context,
        )?;
    }
    wrap(
        &regexp,
        "exec",
        Before::Nothing,
        After::Scanned,
        meter,
        context,
    )?;
    Ok(())
}

/// What a wrapper captures.
#[derive(Clone, Trace, Finalize)]
struct Wrapped {
    original: JsObject,
    #[unsafe_ignore_trace]
    meter: Meter,
    #[unsafe_ignore_trace]
    before: Before,
    #[unsafe_ignore_trace]
    after: After,
}

/// Replaces `object[name]` by a wrapper with the same `name` and `length`.
fn wrap(
    object: &JsObject,
    name: &str,
    before: Before,
    after: After,
    meter: &Meter,
    context: &mut Context,
) -> JsResult<()> {
    let key = JsString::from(name);
    let Some(original) = object.get(key.clone(), context)?.as_object() else {
        return Ok(());
    };
    let length = original
        .get(js_string!("length"), context)?
        .to_length(context)? as usize;
    let captures = Wrapped {
        original,
        meter: meter.clone(),
        before,
        after,
    };
    let function = NativeFunction::from_copy_closure_with_captures(call_wrapped, captures);
    let function = FunctionObjectBuilder::new(context.realm(), function)
        .name(key.clone())
        .length(length)
        .build();
    // Built-in methods are writable, non-enumerable and configurable; `set` keeps that.
    object.set(key, function, true, context)?;
    Ok(())
}

fn call_wrapped(
    this: &JsValue,
    args: &[JsValue],
    w: &Wrapped,
    context: &mut Context,
) -> JsResult<JsValue> {
    let cost = match w.before {
        Before::Nothing => 0,
        Before::ThisLength => elements(length_of(this, context)?),
        Before::Sort => {
            let n = length_of(this, context)?;
            // A comparison costs about what visiting one element does.
            elements(n.saturating_mul(u64::from(64 - n.leading_zeros())))
        }
        Before::ThisText => chars(text_length(this)),
        Before::ArgText => chars(text_length(&args.first().cloned().unwrap_or_default())),
        Before::Repeat => {
            let count = args
                .first()
                .cloned()
                .unwrap_or_default()
                .to_number(context)?;
            let count = if count.is_finite() && count > 0.0 {
                count as u64
            } else {
                0
            };
            chars(text_length(this).saturating_mul(count))
        }
        Before::Pad => {
            let target = args
                .first()
                .cloned()
                .unwrap_or_default()
                .to_number(context)?;
            let target = if target.is_finite() && target > 0.0 {
                target as u64
            } else {
                0
            };
            chars(target.saturating_sub(text_length(this)))
        }
    };
    w.meter.charge(cost, context)?;
    let last_index = if w.after == After::Scanned {
        last_index_of(this, context)?
    } else {
        0
    };
    let result = w.original.call(this, args, context)?;
    let cost = match w.after {
        After::Nothing => 0,
        After::ResultLength => match &result {
            v if v.is_string() => chars(text_length(v)),
            v => match v.as_object() {
                Some(o) if o.is_array() => {
                    elements(JsArray::from_object(o.clone())?.length(context)?)
                }
                _ => 0,
            },
        },
        After::Scanned => {
            let input = args
                .first()
                .and_then(JsValue::as_string)
                .map_or(0, |s| s.len() as u64);
            let end = match result.as_object() {
                Some(m) => {
                    let index = m.get(js_string!("index"), context)?.to_length(context)?;
                    let matched = m.get(0, context)?;
                    index + text_length(&matched)
                }
                None => input,
            };
            // Matching a character costs about twice copying one.
            2 * chars(end.saturating_sub(last_index) + 1)
        }
    };
    w.meter.charge(cost, context)?;
    Ok(result)
}

/// `this.length` of an array or array-like (0 for anything else).
fn length_of(this: &JsValue, context: &mut Context) -> JsResult<u64> {
    match this.as_object() {
        Some(o) => o.get(js_string!("length"), context)?.to_length(context),
        None => Ok(0),
    }
}

/// A primitive string's length in UTF-16 units (0 for anything else: objects are converted
/// by the built-in itself, with JS that Boa counts).
fn text_length(value: &JsValue) -> u64 {
    value.as_string().map_or(0, |s| s.len() as u64)
}

/// A regex's `lastIndex` where it matters (global or sticky), else 0.
fn last_index_of(this: &JsValue, context: &mut Context) -> JsResult<u64> {
    let Some(re) = this.as_object() else {
        return Ok(0);
    };
    let flags = re.get(js_string!("flags"), context)?;
    let uses = flags
        .as_string()
        .is_some_and(|f| f.to_std_string_escaped().contains(['g', 'y']));
    if !uses {
        return Ok(0);
    }
    re.get(js_string!("lastIndex"), context)?.to_length(context)
}

/// What the `JSON.stringify` wrapper captures: the original, the meter, the script's own
/// replacer (if a function) and the stack of objects being written (their depth is what
/// multiplies the cost).
#[derive(Clone, Trace, Finalize)]
struct Stringify {
    original: JsObject,
    #[unsafe_ignore_trace]
    meter: Meter,
}

#[derive(Clone, Trace, Finalize)]
struct Replacer {
    #[unsafe_ignore_trace]
    meter: Meter,
    user: Option<JsObject>,
    /// Holders from the root down to the object whose members are being written now.
    holders: Gc<GcRefCell<Vec<JsObject>>>,
    /// `space`'s indentation per level, in characters.
    #[unsafe_ignore_trace]
    gap: u64,
}

fn install_stringify(json: &JsObject, meter: &Meter, context: &mut Context) -> JsResult<()> {
    let key = js_string!("stringify");
    let Some(original) = json.get(key.clone(), context)?.as_object() else {
        return Ok(());
    };
    let captures = Stringify {
        original,
        meter: meter.clone(),
    };
    let function = NativeFunction::from_copy_closure_with_captures(stringify, captures);
    let function = FunctionObjectBuilder::new(context.realm(), function)
        .name(key.clone())
        .length(3)
        .build();
    json.set(key, function, true, context)?;
    Ok(())
}

/// `JSON.stringify(value, replacer, space)`: the original, with a replacer of ours that
/// charges each value as it is written (after the script's own replacer, if any).
fn stringify(
    _: &JsValue,
    args: &[JsValue],
    s: &Stringify,
    context: &mut Context,
) -> JsResult<JsValue> {
    let value = args.first().cloned().unwrap_or_default();
    let replacer = args.get(1).cloned().unwrap_or_default();
    let space = args.get(2).cloned().unwrap_or_default();
    // An array replacer (a list of keys) is the original's business: it needs the list as
    // given. Its output is bounded by the keys it names; its depth still is not, so the
    // values are charged by a replacer of ours that keeps the list's filter.
    let user = replacer.as_object().filter(|r| r.is_callable());
    let allow = match replacer.as_object().filter(|r| r.is_array()) {
        Some(list) => Some(key_list(&list, context)?),
        None => None,
    };
    let gap = match &space {
        v if v.is_number() => v.to_number(context)?.clamp(0.0, 10.0) as u64,
        v if v.is_string() => text_length(v).min(10),
        _ => 0,
    };
    let ours = Replacer {
        meter: s.meter.clone(),
        user,
        holders: Gc::new(GcRefCell::new(Vec::new())),
        gap,
    };
    let replacer_fn: JsValue = if let Some(allow) = allow {
        // Filtering by the list and charging in one function.
        let list = Filtered { inner: ours, allow };
        FunctionObjectBuilder::new(
            context.realm(),
            NativeFunction::from_copy_closure_with_captures(filtered, list),
        )
        .length(2)
        .build()
        .into()
    } else {
        FunctionObjectBuilder::new(
            context.realm(),
            NativeFunction::from_copy_closure_with_captures(charge_value, ours),
        )
        .length(2)
        .build()
        .into()
    };
    s.original
        .call(&JsValue::undefined(), &[value, replacer_fn, space], context)
}

/// A replacer array's keys (strings and numbers, as the spec takes them), in order.
fn key_list(list: &JsObject, context: &mut Context) -> JsResult<Vec<JsString>> {
    let list = JsArray::from_object(list.clone())?;
    let mut keys: Vec<JsString> = Vec::new();
    for i in 0..list.length(context)? {
        let v = list.get(i, context)?;
        let key = if v.is_string() || v.is_number() {
            Some(v.to_string(context)?)
        } else if let Some(o) = v.as_object() {
            if o.is::<JsString>() || o.is::<f64>() {
                Some(v.to_string(context)?)
            } else {
                None
            }
        } else {
            None
        };
        if let Some(k) = key
            && !keys.contains(&k)
        {
            keys.push(k);
        }
    }
    Ok(keys)
}

#[derive(Clone, Trace, Finalize)]
struct Filtered {
    inner: Replacer,
    #[unsafe_ignore_trace]
    allow: Vec<JsString>,
}

/// With a replacer array: an object (not an array) is written as a fresh object holding the
/// listed keys in the list's order, as the original would; then charged like any value.
fn filtered(
    this: &JsValue,
    args: &[JsValue],
    f: &Filtered,
    context: &mut Context,
) -> JsResult<JsValue> {
    let value = args.get(1).cloned().unwrap_or_default();
    let value = match value.as_object() {
        Some(o) if !o.is_array() && !o.is_callable() && !is_boxed_primitive(&o) => {
            let copy = JsObject::with_object_proto(context.intrinsics());
            // Integer-like keys are put first by any object's key order; the original
            // writes them in the list's order. The values are the same.
            for key in &f.allow {
                let v = o.get(key.clone(), context)?;
                if !v.is_undefined() {
                    copy.create_data_property_or_throw(key.clone(), v, context)?;
                }
            }
            copy.into()
        }
        _ => value,
    };
    let key = args.first().cloned().unwrap_or_default();
    charge_value(this, &[key, value], &f.inner, context)
}

fn is_boxed_primitive(o: &JsObject) -> bool {
    o.is::<JsString>() || o.is::<f64>() || o.is::<bool>()
}

/// Our replacer: the script's replacer first, then the charge for the value it returns,
/// which is what gets written.
fn charge_value(
    this: &JsValue,
    args: &[JsValue],
    r: &Replacer,
    context: &mut Context,
) -> JsResult<JsValue> {
    let key = args.first().cloned().unwrap_or_default();
    let mut value = args.get(1).cloned().unwrap_or_default();
    if let Some(user) = &r.user {
        value = user.call(this, &[key.clone(), value], context)?;
    }
    // The holder is the object whose member this is: drop the finished ones off the stack.
    let depth = {
        let mut holders = r.holders.borrow_mut();
        if let Some(holder) = this.as_object() {
            while holders
                .last()
                .is_some_and(|top| !JsObject::equals(top, &holder))
            {
                holders.pop();
            }
            if holders.is_empty() {
                holders.push(holder);
            }
        }
        holders.len() as u64
    };
    let own = if let Some(s) = value.as_string() {
        s.len() as u64 + 2
    } else if value.is_number() {
        24
    } else if value.is_object() {
        2
    } else {
        5
    };
    let own = own + text_length(&key) + 4 + r.gap * depth;
    // Boa writes a value's text once, then copies it again at each level above it.
    r.meter
        .charge(1 + chars(own.saturating_mul(depth + 1)), context)?;
    if let Some(o) = value.as_object()
        && !o.is_callable()
    {
        r.holders.borrow_mut().push(o.clone());
    }
    Ok(value)
}
