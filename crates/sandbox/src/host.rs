//! The bridge between native functions and the run: what every native captures, and the
//! conversions at the JS boundary.
//!
//! Native functions are plain `fn` items that capture one [`Host`]. It holds the
//! [`RunState`] (no JS values inside, so the GC may ignore it) and the engine's original
//! `JSON.stringify`/`JSON.parse`, so that a script that replaces those globals still gets
//! exact JSON in its files.
//!
//! Rule: never hold a `RunState` borrow while calling back into JS (a `toJSON` or getter could
//! call `thwonk.log` and borrow again). Convert arguments first, then borrow.

use std::cell::RefCell;
use std::rc::Rc;

use boa_engine::error::{EngineError, RuntimeLimitError};
use boa_engine::object::builtins::JsArray;
use boa_engine::{
    Context, Finalize, JsError, JsNativeError, JsObject, JsResult, JsValue, NativeFunction, Trace,
    js_string,
};

use crate::meter::Meter;
use crate::state::{ApiError, RunState};

/// What every native function of the API captures.
#[derive(Clone, Trace, Finalize)]
pub struct Host {
    #[unsafe_ignore_trace]
    pub state: Rc<RefCell<RunState>>,
    /// The built-ins' charged work, for `thwonk.budget()`.
    #[unsafe_ignore_trace]
    pub meter: Meter,
    json_stringify: JsObject,
    json_parse: JsObject,
}

/// The signature of the API's native functions.
pub type HostFn = fn(&JsValue, &[JsValue], &Host, &mut Context) -> JsResult<JsValue>;

impl Host {
    pub fn new(state: RunState, meter: Meter, context: &mut Context) -> JsResult<Host> {
        let json = context.intrinsics().objects().json();
        let function = |name, context: &mut Context| -> JsResult<JsObject> {
            json.get(name, context)?
                .as_callable()
                .ok_or_else(|| JsNativeError::typ().with_message("JSON is broken").into())
        };
        Ok(Host {
            json_stringify: function(js_string!("stringify"), context)?,
            json_parse: function(js_string!("parse"), context)?,
            state: Rc::new(RefCell::new(state)),
            meter,
        })
    }

    /// A native function capturing this host.
    pub fn function(&self, f: HostFn) -> NativeFunction {
        NativeFunction::from_copy_closure_with_captures(f, self.clone())
    }

    /// Runs `f` on the state after the wall-clock check; turns its error into a JS throw.
    pub fn with<T>(
        &self,
        context: &mut Context,
        f: impl FnOnce(&mut RunState) -> Result<T, ApiError>,
    ) -> JsResult<T> {
        self.try_with(f).map_err(|e| self.throw(e, context))
    }

    /// Like [`Host::with`], leaving the error to the caller (the legacy API returns codes).
    pub fn try_with<T>(
        &self,
        f: impl FnOnce(&mut RunState) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut state = self.state.borrow_mut();
        state.check_clock().and_then(|()| f(&mut state))
    }

    /// The JS exception for an API error. Aborts are recorded in the state and thrown as an
    /// engine error, which script `try/catch` cannot intercept.
    pub fn throw(&self, error: ApiError, context: &mut Context) -> JsError {
        match error {
            ApiError::Refused(m) => JsNativeError::error().with_message(m).into(),
            ApiError::Limit(m) => limit_error(&m, context),
            ApiError::Abort(kind, m) => {
                self.state.borrow_mut().record_abort(kind, &m);
                // The variant does not matter: the recorded abort is what the run reports.
                EngineError::from(RuntimeLimitError::StackSize).into()
            }
        }
    }

    /// `JSON.stringify(value)`; `None` when JSON has no text for it (`undefined`, functions).
    pub fn stringify(&self, value: &JsValue, context: &mut Context) -> JsResult<Option<String>> {
        let text = self.json_stringify.call(
            &JsValue::undefined(),
            std::slice::from_ref(value),
            context,
        )?;
        Ok(text.as_string().map(|s| s.to_std_string_escaped()))
    }

    /// `JSON.parse(text)`.
    pub fn parse_json(&self, text: &str, context: &mut Context) -> JsResult<JsValue> {
        self.json_parse
            .call(&JsValue::undefined(), &[js_string!(text).into()], context)
    }

    /// A JSON value as a JS value, through `JSON.parse` so numbers and strings are exact.
    /// Thwonk's own work (the message, a request's body), so not charged to the script.
    pub fn json_to_js(
        &self,
        value: &serde_json::Value,
        context: &mut Context,
    ) -> JsResult<JsValue> {
        let text = value.to_string();
        self.meter.uncharged(|| self.parse_json(&text, context))
    }

    /// A JS value as JSON (`null` for what JSON cannot express).
    pub fn js_to_json(
        &self,
        value: &JsValue,
        context: &mut Context,
    ) -> JsResult<serde_json::Value> {
        let Some(text) = self.stringify(value, context)? else {
            return Ok(serde_json::Value::Null);
        };
        serde_json::from_str(&text)
            .map_err(|e| JsNativeError::typ().with_message(e.to_string()).into())
    }
}

/// An `Error` whose `name` is `LimitError`: catchable, and reported as
/// `ErrorKind::LimitError` if the script lets it escape.
pub fn limit_error(message: &str, context: &mut Context) -> JsError {
    let error = JsNativeError::error()
        .with_message(message.to_string())
        .into_opaque(context);
    // A fresh ordinary object: defining a property on it cannot fail.
    let _ = error.set(js_string!("name"), js_string!("LimitError"), false, context);
    JsError::from_opaque(error.into())
}

/// The `i`th argument, `undefined` if absent.
pub fn arg(args: &[JsValue], i: usize) -> JsValue {
    args.get(i).cloned().unwrap_or_default()
}

/// `String(value)` as a Rust string (lone surrogates escaped).
pub fn to_text(value: &JsValue, context: &mut Context) -> JsResult<String> {
    Ok(value.to_string(context)?.to_std_string_escaped())
}

/// A required string argument: a `TypeError` for anything but a string.
pub fn string_arg(args: &[JsValue], i: usize, what: &str) -> JsResult<String> {
    match args.get(i).and_then(JsValue::as_string) {
        Some(s) => Ok(s.to_std_string_escaped()),
        None => Err(JsNativeError::typ()
            .with_message(format!("{what} must be a string"))
            .into()),
    }
}

/// `obj[key]`, or `undefined` when `obj` is not an object.
pub fn prop(obj: &JsValue, key: &str, context: &mut Context) -> JsResult<JsValue> {
    match obj.as_object() {
        Some(o) => o.get(js_string!(key), context),
        None => Ok(JsValue::undefined()),
    }
}

/// `obj[key]` as a string; `None` when it is `undefined` or `null`.
pub fn opt_string_prop(
    obj: &JsValue,
    key: &str,
    context: &mut Context,
) -> JsResult<Option<String>> {
    let value = prop(obj, key, context)?;
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    to_text(&value, context).map(Some)
}

/// A string or an array of strings (`to`, `cc`, `bcc`); `undefined`/`null` is empty.
pub fn string_list(value: &JsValue, context: &mut Context) -> JsResult<Vec<String>> {
    if value.is_null_or_undefined() {
        return Ok(Vec::new());
    }
    if let Some(object) = value.as_object()
        && object.is_array()
    {
        let array = JsArray::from_object(object)?;
        let len = array.length(context)?;
        let mut items = Vec::new();
        for i in 0..len {
            items.push(to_text(&array.get(i, context)?, context)?);
        }
        return Ok(items);
    }
    Ok(vec![to_text(value, context)?])
}

/// A JS array of the given values.
pub fn array(values: impl IntoIterator<Item = JsValue>, context: &mut Context) -> JsValue {
    JsArray::from_iter(values, context).into()
}

/// A name a script gives that becomes part of a Redis key (a feed, an item id, a job queue):
/// 1 to `max` bytes of ASCII letters, digits and the `extra` punctuation, or a refusal that
/// says so.
pub fn check_plain_name(
    what: &str,
    name: &str,
    max: usize,
    extra: &[u8],
) -> Result<(), crate::state::ApiError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok {
        return Ok(());
    }
    let extra: String = extra.iter().map(|&b| format!(" {}", b as char)).collect();
    Err(crate::state::ApiError::Refused(format!(
        "{what} {name:?}: use 1 to {max} of A-Z a-z 0-9{extra}"
    )))
}
