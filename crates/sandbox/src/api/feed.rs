//! `thwonk.feed(name)`: buffered publishes and retractions on the thwonk's own feeds.

use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::{Context, JsNativeError, JsResult, JsString, JsValue, NativeFunction, js_string};

use crate::host::{Host, arg, to_text};
use crate::state::ApiError;

/// Longest feed name and item id, bytes.
const MAX_NAME_BYTES: usize = 128;

/// Feed names become part of Redis keys (prefixed by the runner): keep them plain.
fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Refused(format!(
            "{what} {name:?}: use 1 to {MAX_NAME_BYTES} of A-Z a-z 0-9 - _ . @"
        )))
    }
}

/// `thwonk.feed(name)` → `{publish, retract, items}`.
pub fn feed(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let name = to_text(&arg(args, 0), context)?;
    check_name("feed name", &name).map_err(|e| host.throw(e, context))?;
    let captures = (host.clone(), JsString::from(name.as_str()));
    let publish = NativeFunction::from_copy_closure_with_captures(publish, captures.clone());
    let retract = NativeFunction::from_copy_closure_with_captures(retract, captures);
    let feed = ObjectInitializer::new(context)
        .property(
            js_string!("name"),
            js_string!(name),
            boa_engine::property::Attribute::ENUMERABLE,
        )
        .function(publish, js_string!("publish"), 2)
        .function(retract, js_string!("retract"), 1)
        .function(NativeFunction::from_fn_ptr(items), js_string!("items"), 1)
        .build();
    feed.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(feed.into())
}

/// `publish(item, id?)`: strings are published as they are, other values as JSON.
fn publish(
    _: &JsValue,
    args: &[JsValue],
    (host, feed): &(Host, JsString),
    context: &mut Context,
) -> JsResult<JsValue> {
    let item = arg(args, 0);
    let item = match item.as_string() {
        Some(s) => s.to_std_string_escaped(),
        None => host.stringify(&item, context)?.ok_or_else(|| {
            JsNativeError::typ().with_message("feed.publish: the item has no JSON form")
        })?,
    };
    let id = match arg(args, 1) {
        v if v.is_null_or_undefined() => None,
        v => Some(to_text(&v, context)?),
    };
    let feed = feed.to_std_string_escaped();
    let id = host.with(context, |s| {
        if let Some(id) = &id {
            check_name("item id", id)?;
        }
        s.publish(&feed, id, item)
    })?;
    Ok(js_string!(id).into())
}

fn retract(
    _: &JsValue,
    args: &[JsValue],
    (host, feed): &(Host, JsString),
    context: &mut Context,
) -> JsResult<JsValue> {
    let id = to_text(&arg(args, 0), context)?;
    let feed = feed.to_std_string_escaped();
    host.with(context, |s| {
        check_name("item id", &id)?;
        s.retract(&feed, id);
        Ok(())
    })?;
    Ok(JsValue::undefined())
}

/// Reading a feed needs Redis, which the run's reader does not offer yet.
fn items(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Err(JsNativeError::error()
        .with_message("feed items are not readable from scripts yet")
        .into())
}
