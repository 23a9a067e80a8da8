//! `msg`: the incoming message, read-only (docs/rule-scripts.md, "msg").

use boa_engine::object::IntegrityLevel;
use boa_engine::{Context, JsObject, JsResult, JsValue, js_string};
use serde_json::json;
use thwonk_core::run::MessageView;

use crate::host::{Host, arg, array, to_text};

/// Builds the frozen `msg` object for `onMessage`.
pub fn message_object(
    view: &MessageView,
    host: &Host,
    context: &mut Context,
) -> JsResult<JsObject> {
    let data = json!({
        "id": view.id,
        "from": view.from,
        "to": view.to,
        "recipients": view.recipients,
        "sender": { "name": view.sender.name, "address": view.sender.address },
        "subject": view.subject,
        "date": view.date,
        "messageId": view.message_id,
        "attachments": view.attachments.iter().map(|a| json!({
            "filename": a.filename,
            "contentType": a.content_type,
            "size": a.size,
        })).collect::<Vec<_>>(),
        "size": view.size,
        "receivedAt": view.received_at,
    });
    let msg = host
        .json_to_js(&data, context)?
        .as_object()
        .ok_or_else(|| boa_engine::JsNativeError::typ().with_message("msg is not an object"))?;
    // The big texts go straight from the view to JS strings: no JSON copy on the way (a
    // message at the size limit must fit the worker's memory, docs/security.md).
    let html: JsValue = match &view.html {
        Some(html) => js_string!(html.as_str()).into(),
        None => JsValue::null(),
    };
    for (key, value) in [
        ("text", js_string!(view.text.as_str()).into()),
        ("html", html),
        ("raw", js_string!(view.raw.as_str()).into()),
    ] {
        msg.create_data_property_or_throw(js_string!(key), value, context)?;
    }

    let headers = boa_engine::object::ObjectInitializer::new(context)
        .function(host.function(header_get), js_string!("get"), 1)
        .function(host.function(header_get_all), js_string!("getAll"), 1)
        .function(host.function(header_has), js_string!("has"), 1)
        .function(host.function(header_entries), js_string!("entries"), 0)
        .build();
    msg.define_property_or_throw(
        js_string!("headers"),
        boa_engine::property::PropertyDescriptor::builder()
            .value(headers.clone())
            .writable(false)
            .enumerable(true)
            .configurable(false),
        context,
    )?;

    let attachments = msg.get(js_string!("attachments"), context)?;
    if let Some(attachments) = attachments.as_object() {
        let content = host
            .function(attachment_content)
            .to_js_function(context.realm());
        attachments.define_property_or_throw(
            js_string!("content"),
            boa_engine::property::PropertyDescriptor::builder()
                .value(content)
                .writable(false)
                .enumerable(false)
                .configurable(false),
            context,
        )?;
        freeze_each(&attachments, context)?;
    }
    for key in ["sender", "recipients"] {
        if let Some(o) = msg.get(js_string!(key), context)?.as_object() {
            o.set_integrity_level(IntegrityLevel::Frozen, context)?;
        }
    }
    headers.set_integrity_level(IntegrityLevel::Frozen, context)?;
    msg.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(msg)
}

/// Freezes an array and each of its elements.
fn freeze_each(array: &JsObject, context: &mut Context) -> JsResult<()> {
    let len = array
        .get(js_string!("length"), context)?
        .to_length(context)?;
    for i in 0..len {
        if let Some(o) = array.get(i, context)?.as_object() {
            o.set_integrity_level(IntegrityLevel::Frozen, context)?;
        }
    }
    array.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(())
}

/// The values of header `name` (case-insensitive), in order.
fn header_values(host: &Host, name: &str) -> Vec<String> {
    let state = host.state.borrow();
    state
        .message
        .iter()
        .flat_map(|m| m.headers.iter())
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

fn header_get(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let name = to_text(&arg(args, 0), context)?;
    Ok(match header_values(host, &name).into_iter().next() {
        Some(v) => js_string!(v).into(),
        None => JsValue::null(),
    })
}

fn header_get_all(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let name = to_text(&arg(args, 0), context)?;
    let values = header_values(host, &name)
        .into_iter()
        .map(|v| js_string!(v).into());
    Ok(array(values, context))
}

fn header_has(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let name = to_text(&arg(args, 0), context)?;
    Ok((!header_values(host, &name).is_empty()).into())
}

fn header_entries(
    _: &JsValue,
    _: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let pairs: Vec<(String, String)> = host
        .state
        .borrow()
        .message
        .as_ref()
        .map(|m| m.headers.clone())
        .unwrap_or_default();
    let entries: Vec<JsValue> = pairs
        .into_iter()
        .map(|(n, v)| array([js_string!(n).into(), js_string!(v).into()], context))
        .collect();
    Ok(array(entries, context))
}

/// `msg.attachments.content(i)`: the attachment's content, base64.
fn attachment_content(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let index = arg(args, 0).to_number(context)?;
    let state = host.state.borrow();
    let attachment = state.message.as_ref().and_then(|m| {
        (index >= 0.0 && index.fract() == 0.0)
            .then(|| m.attachments.get(index as usize))
            .flatten()
    });
    match attachment {
        Some(a) => Ok(js_string!(a.content_base64.as_str()).into()),
        None => Err(boa_engine::JsNativeError::range()
            .with_message(format!("no attachment at index {index}"))
            .into()),
    }
}
