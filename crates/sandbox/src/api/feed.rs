//! `thwonk.feed(name)`: buffered publishes and retractions on the thwonk's own feeds, and
//! reading their newest items.

use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{Context, JsNativeError, JsResult, JsString, JsValue, NativeFunction, js_string};

use crate::host::{Host, arg, array, check_plain_name, prop, to_text};
use crate::state::ApiError;

/// Longest feed name and item id, bytes.
const MAX_NAME_BYTES: usize = 128;

/// Feed names become part of Redis keys (prefixed by the runner): keep them plain.
fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    check_plain_name(what, name, MAX_NAME_BYTES, b"-_.@")
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
    let captures_items = captures.clone();
    let retract = NativeFunction::from_copy_closure_with_captures(retract, captures);
    let feed = ObjectInitializer::new(context)
        .property(
            js_string!("name"),
            js_string!(name),
            boa_engine::property::Attribute::ENUMERABLE,
        )
        .function(publish, js_string!("publish"), 2)
        .function(retract, js_string!("retract"), 1)
        .function(
            NativeFunction::from_copy_closure_with_captures(items, captures_items),
            js_string!("items"),
            1,
        )
        .build();
    feed.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(feed.into())
}

/// `publish(item, id?)`: the item is stored as its JSON text (a string too), so that HTTP
/// readers and `items()` get back the value that was published.
fn publish(
    _: &JsValue,
    args: &[JsValue],
    (host, feed): &(Host, JsString),
    context: &mut Context,
) -> JsResult<JsValue> {
    let item = host.stringify(&arg(args, 0), context)?.ok_or_else(|| {
        JsNativeError::typ().with_message("feed.publish: the item has no JSON form")
    })?;
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

/// `items()` without a limit.
const DEFAULT_ITEMS: usize = 20;
/// The most `items()` returns at once.
const MAX_ITEMS: usize = 100;

/// `items({limit})` (or `items(limit)`) → `[{id, item}]`: the newest `limit` items (default
/// 20, at most 100), oldest first, each `item` the value that was published. This run's own
/// publishes and retractions are included.
fn items(
    _: &JsValue,
    args: &[JsValue],
    (host, feed): &(Host, JsString),
    context: &mut Context,
) -> JsResult<JsValue> {
    let options = arg(args, 0);
    let limit = if options.is_object() {
        prop(&options, "limit", context)?
    } else {
        options
    };
    let limit = if limit.is_null_or_undefined() {
        DEFAULT_ITEMS
    } else {
        let n = limit.to_number(context)?;
        if !(n.fract() == 0.0 && (1.0..=MAX_ITEMS as f64).contains(&n)) {
            return Err(JsNativeError::range()
                .with_message(format!(
                    "feed.items: limit must be a whole number from 1 to {MAX_ITEMS}, not {n}"
                ))
                .into());
        }
        n as usize
    };
    let feed = feed.to_std_string_escaped();
    let stored = host.with(context, |s| s.feed_items(&feed, limit))?;
    let mut out = Vec::with_capacity(stored.len());
    for i in stored {
        // Items scripts publish are JSON; another publisher's plain text stays a string.
        let item = if serde_json::from_str::<serde::de::IgnoredAny>(&i.item).is_ok() {
            host.parse_json(&i.item, context)?
        } else {
            js_string!(i.item).into()
        };
        let entry = ObjectInitializer::new(context)
            .property(js_string!("id"), js_string!(i.id), Attribute::all())
            .property(js_string!("item"), item, Attribute::all())
            .build();
        out.push(entry.into());
    }
    Ok(array(out, context))
}
