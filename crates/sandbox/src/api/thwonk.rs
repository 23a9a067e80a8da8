//! `thwonk`: what a handler may do (docs/rule-scripts.md, "thwonk"), except files and feeds,
//! which have their own files.

use boa_engine::object::builtins::JsArray;
use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::property::{Attribute, PropertyKey};
use boa_engine::{Context, JsNativeError, JsObject, JsResult, JsValue, js_string};
use thwonk_core::run::{OutgoingAttachment, SendKind, SendRequest};

use crate::api::{feed, files, jobs, web};
use crate::host::{Host, HostFn, arg, opt_string_prop, prop, string_list, to_text};
use crate::outgoing::{
    ReplyCheck, check_address, check_addresses, check_from, check_one_line, composable,
    reply_references, reply_subject, reply_suppressed,
};
use crate::state::ApiResult;

/// Builds the (frozen) `thwonk` object handed to every handler.
pub fn thwonk_object(host: &Host, context: &mut Context) -> JsResult<JsObject> {
    let (address, domain) = {
        let state = host.state.borrow();
        (state.address.clone(), state.domain.clone())
    };
    let files = files::files_object(host, context)?;
    let console = console_object(host, context)?;
    let crypto = web::crypto_object(host, context)?;
    let thwonk = ObjectInitializer::new(context)
        .property(
            js_string!("address"),
            js_string!(address),
            Attribute::ENUMERABLE,
        )
        .property(
            js_string!("domain"),
            js_string!(domain),
            Attribute::ENUMERABLE,
        )
        .property(js_string!("files"), files, Attribute::ENUMERABLE)
        .property(js_string!("console"), console, Attribute::ENUMERABLE)
        .property(js_string!("crypto"), crypto, Attribute::ENUMERABLE)
        .function(host.function(web::url), js_string!("url"), 1)
        .function(host.function(send), js_string!("send"), 1)
        .function(host.function(forward), js_string!("forward"), 3)
        .function(host.function(reply), js_string!("reply"), 2)
        .function(host.function(feed::feed), js_string!("feed"), 1)
        .function(host.function(jobs::jobs), js_string!("jobs"), 1)
        .function(host.function(log), js_string!("log"), 0)
        .function(host.function(now), js_string!("now"), 0)
        .function(host.function(budget), js_string!("budget"), 0)
        .build();
    thwonk.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(thwonk)
}

/// `console.log/info/warn/error`, into the run's log.
pub fn console_object(host: &Host, context: &mut Context) -> JsResult<JsObject> {
    let levels: [(&str, HostFn); 4] = [
        ("log", log),
        ("info", |t, a, h, c| log_at("info", t, a, h, c)),
        ("warn", |t, a, h, c| log_at("warn", t, a, h, c)),
        ("error", |t, a, h, c| log_at("error", t, a, h, c)),
    ];
    let mut console = ObjectInitializer::new(context);
    for (name, f) in levels {
        console.function(host.function(f), js_string!(name), 0);
    }
    let console = console.build();
    console.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(console)
}

fn log(this: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    log_at("log", this, args, host, context)
}

fn log_at(
    level: &str,
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let line = format_log_line(args, host, context)?;
    host.with(context, |s| {
        s.log(level, line);
        Ok(())
    })?;
    Ok(JsValue::undefined())
}

/// Arguments joined by spaces, the way `console.log` shows them: strings as they are, errors
/// as `Name: message`, other objects as JSON.
pub fn format_log_line(args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<String> {
    let mut parts = Vec::with_capacity(args.len());
    for value in args {
        let part = if let Some(s) = value.as_string() {
            s.to_std_string_escaped()
        } else if let Some(object) = value.as_object() {
            if object.is::<boa_engine::builtins::error::Error>() || object.is_callable() {
                to_text(value, context)?
            } else {
                match host.stringify(value, context) {
                    Ok(Some(json)) => json,
                    _ => value.display().to_string(),
                }
            }
        } else {
            value.display().to_string()
        };
        parts.push(part);
    }
    Ok(parts.join(" "))
}

fn now(_: &JsValue, _: &[JsValue], host: &Host, _: &mut Context) -> JsResult<JsValue> {
    Ok((host.state.borrow().now_ms as f64).into())
}

fn budget(_: &JsValue, _: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let ms_left = host.state.borrow().ms_left();
    let instructions_left = host.meter.left(context);
    Ok(ObjectInitializer::new(context)
        .property(
            js_string!("instructionsLeft"),
            instructions_left as f64,
            Attribute::all(),
        )
        .property(js_string!("msLeft"), ms_left as f64, Attribute::all())
        .build()
        .into())
}

/// `thwonk.send({to, cc, bcc, subject, text, html, replyTo, headers, from, attachments})`.
fn send(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let options = arg(args, 0);
    if !options.is_object() {
        return Err(JsNativeError::typ()
            .with_message("send needs an options object: send({to, subject, text})")
            .into());
    }
    let to = string_list(&prop(&options, "to", context)?, context)?;
    let cc = string_list(&prop(&options, "cc", context)?, context)?;
    let bcc = string_list(&prop(&options, "bcc", context)?, context)?;
    let subject = opt_string_prop(&options, "subject", context)?.unwrap_or_default();
    let text = opt_string_prop(&options, "text", context)?;
    let html = opt_string_prop(&options, "html", context)?;
    let reply_to = opt_string_prop(&options, "replyTo", context)?;
    let from = opt_string_prop(&options, "from", context)?;
    let headers = header_list(&prop(&options, "headers", context)?, context)?;
    let attachments = attachment_list(&prop(&options, "attachments", context)?, context)?;
    let id = host.with(context, |s| {
        let request = SendRequest {
            id: String::new(),
            kind: SendKind::New,
            to: check_addresses(to)?,
            cc: check_addresses(cc)?,
            bcc: check_addresses(bcc)?,
            subject: checked_line("subject", subject)?,
            text,
            html,
            reply_to: reply_to.map(|r| check_address(&r)).transpose()?,
            headers: checked_headers(headers)?,
            from: from.map(|f| check_from(&f, &s.address)).transpose()?,
            attachments,
        };
        s.send(composable(request)?)
    })?;
    Ok(js_string!(id).into())
}

/// `thwonk.forward(msg, to, {subjectPrefix, headers})`.
fn forward(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let msg = arg(args, 0);
    let Some(original) = opt_string_prop(&msg, "id", context)? else {
        return Err(JsNativeError::typ()
            .with_message("forward needs the message to forward (msg) first")
            .into());
    };
    let subject = opt_string_prop(&msg, "subject", context)?.unwrap_or_default();
    let to = string_list(&arg(args, 1), context)?;
    let options = arg(args, 2);
    let prefix = opt_string_prop(&options, "subjectPrefix", context)?;
    let headers = header_list(&prop(&options, "headers", context)?, context)?;
    let id = host.with(context, |s| {
        if let Some(p) = &prefix {
            check_one_line("subjectPrefix", p)?;
        }
        s.send(composable(SendRequest {
            kind: SendKind::Forward {
                original_message_id: original,
                subject_prefix: prefix.clone(),
            },
            to: check_addresses(to)?,
            subject: format!("{}{subject}", prefix.unwrap_or_default()),
            headers: checked_headers(headers)?,
            ..Default::default()
        })?)
    })?;
    Ok(js_string!(id).into())
}

/// `thwonk.reply(msg, {text, html, subject, force})`: to the message's envelope sender
/// (`msg.from`, RFC 3834 section 3.1.1: not its `From:`, which anyone can write), threaded,
/// `Auto-Submitted: auto-replied`. Returns the outgoing message's id, or `false` (and a line
/// in the run's log saying why) when it does not answer ([`reply_suppressed`]): automatic or
/// list mail, the same reply already sent to the correspondent lately, the null sender. `force: true`
/// answers automatic and list mail and answers again, never `<>` or a bounce address.
fn reply(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let msg = arg(args, 0);
    if !msg.is_object() {
        return Err(JsNativeError::typ()
            .with_message("reply needs the message to answer (msg) first")
            .into());
    }
    let envelope_from = opt_string_prop(&msg, "from", context)?.unwrap_or_default();
    let original_subject = opt_string_prop(&msg, "subject", context)?.unwrap_or_default();
    let message_id = opt_string_prop(&msg, "messageId", context)?;
    let references = header_of(&msg, "References", context)?;
    let auto_submitted = header_of(&msg, "Auto-Submitted", context)?;
    let precedence = header_of(&msg, "Precedence", context)?;
    let list_id = header_of(&msg, "List-Id", context)?.is_some();
    let options = arg(args, 1);
    let force = prop(&options, "force", context)?.to_boolean();
    let subject = opt_string_prop(&options, "subject", context)?
        .unwrap_or_else(|| reply_subject(&original_subject));
    let text = opt_string_prop(&options, "text", context)?;
    let html = opt_string_prop(&options, "html", context)?;
    let key = thwonk_core::run::reply_key(&envelope_from, text.as_deref(), html.as_deref());
    let sent = host.with(context, |s| {
        let check = ReplyCheck {
            envelope_from: &envelope_from,
            auto_submitted: auto_submitted.as_deref(),
            precedence: precedence.as_deref(),
            list_id,
            already_answered: s.auto_replied.contains(&key),
            force,
        };
        if let Some(why) = reply_suppressed(&check) {
            s.log("warn", format!("reply not sent: {why}"));
            return Ok(None);
        }
        let id = s.send(composable(SendRequest {
            kind: SendKind::Reply {
                in_reply_to: message_id.clone(),
                references: reply_references(references.as_deref(), message_id.as_deref()),
            },
            to: vec![check_address(&envelope_from)?],
            subject: checked_line("subject", subject)?,
            text,
            html,
            ..Default::default()
        })?)?;
        s.auto_replied.push(key.clone());
        Ok(Some(id))
    })?;
    Ok(match sent {
        Some(id) => js_string!(id).into(),
        None => JsValue::from(false),
    })
}

/// `msg.headers.get(name)` when `msg` has such a method.
fn header_of(msg: &JsValue, name: &str, context: &mut Context) -> JsResult<Option<String>> {
    let headers = prop(msg, "headers", context)?;
    let get = prop(&headers, "get", context)?;
    let Some(get) = get.as_callable() else {
        return Ok(None);
    };
    let value = get.call(&headers, &[js_string!(name).into()], context)?;
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    to_text(&value, context).map(Some)
}

fn checked_line(what: &str, value: String) -> ApiResult<String> {
    check_one_line(what, &value)?;
    Ok(value)
}

/// The script's extra headers, by the rule the commit applies (`thwonk_mail::headers`):
/// field names only, no line breaks, and none of the fields Thwonk writes itself.
fn checked_headers(headers: Vec<(String, String)>) -> ApiResult<Vec<(String, String)>> {
    thwonk_mail::headers::check_extra_headers(&headers, &[])
        .map_err(|e| crate::state::ApiError::Refused(e.to_string()))?;
    Ok(headers)
}

/// Extra headers: `{Name: value}` or `[[name, value], ...]`.
fn header_list(value: &JsValue, context: &mut Context) -> JsResult<Vec<(String, String)>> {
    let Some(object) = value.as_object() else {
        return Ok(Vec::new());
    };
    let mut headers = Vec::new();
    if object.is_array() {
        let pairs = JsArray::from_object(object)?;
        for i in 0..pairs.length(context)? {
            let pair = pairs.get(i, context)?;
            let name = to_text(&prop(&pair, "0", context)?, context)?;
            let value = to_text(&prop(&pair, "1", context)?, context)?;
            headers.push((name, value));
        }
        return Ok(headers);
    }
    for key in object.own_property_keys(context)? {
        let PropertyKey::String(name) = &key else {
            continue;
        };
        let value = object.get(key.clone(), context)?;
        headers.push((name.to_std_string_escaped(), to_text(&value, context)?));
    }
    Ok(headers)
}

/// `[{filename, contentType, content}]`, content base64.
fn attachment_list(value: &JsValue, context: &mut Context) -> JsResult<Vec<OutgoingAttachment>> {
    let Some(object) = value.as_object().filter(JsObject::is_array) else {
        return Ok(Vec::new());
    };
    let items = JsArray::from_object(object)?;
    let mut attachments = Vec::new();
    for i in 0..items.length(context)? {
        let item = items.get(i, context)?;
        attachments.push(OutgoingAttachment {
            filename: opt_string_prop(&item, "filename", context)?.unwrap_or_default(),
            content_type: opt_string_prop(&item, "contentType", context)?
                .unwrap_or_else(|| "application/octet-stream".into()),
            content_base64: opt_string_prop(&item, "content", context)?.unwrap_or_default(),
        });
    }
    Ok(attachments)
}
