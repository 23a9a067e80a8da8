//! The legacy API of classic Thwonk scripts (docs/rule-scripts.md, "Legacy API"): globals
//! `thwonk` and `Thwonk`. Like the original, calls return codes (`0`, `-1`) instead of
//! throwing; only what ends the run (budget, wall clock, store failure) still stops the script.

use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{Context, JsNativeError, JsResult, JsValue, js_string};
use thwonk_core::run::SendRequest;
use thwonk_core::vfs::normalize_path;

use crate::api::thwonk::{console_object, format_log_line};
use crate::host::{Host, arg, to_text};
use crate::outgoing::{check_address, check_one_line};
use crate::state::{ApiError, ApiResult};

/// The file `sendAll` reads its recipients from: a JSON array of addresses.
pub const MEMBERS_FILE: &str = "members.json";

/// Installs `thwonk`, `Thwonk` and `console` as globals.
pub fn install(host: &Host, context: &mut Context) -> JsResult<()> {
    let message = ObjectInitializer::new(context)
        .function(host.function(get_current), js_string!("getCurrent"), 0)
        .function(host.function(send_member), js_string!("sendMember"), 4)
        .function(host.function(send_all), js_string!("sendAll"), 3)
        .build();
    let file = ObjectInitializer::new(context)
        .function(host.function(file_read), js_string!("read"), 1)
        .function(host.function(file_write), js_string!("write"), 2)
        .build();
    let thwonk = ObjectInitializer::new(context)
        .function(host.function(print), js_string!("print"), 0)
        .function(host.function(version), js_string!("version"), 0)
        .property(
            js_string!("message"),
            message.clone(),
            Attribute::ENUMERABLE,
        )
        .property(js_string!("file"), file.clone(), Attribute::ENUMERABLE)
        .build();
    for object in [&message, &file, &thwonk] {
        object.set_integrity_level(IntegrityLevel::Frozen, context)?;
    }
    let console = console_object(host, context)?;
    let fixed = Attribute::READONLY | Attribute::NON_ENUMERABLE | Attribute::PERMANENT;
    context.register_global_property(js_string!("thwonk"), thwonk.clone(), fixed)?;
    context.register_global_property(js_string!("Thwonk"), thwonk, fixed)?;
    context.register_global_property(js_string!("console"), console, Attribute::all())?;
    Ok(())
}

/// `0` on success, `-1` on a refusal; run-ending errors are still thrown.
fn code(result: ApiResult<()>, host: &Host, context: &mut Context) -> JsResult<JsValue> {
    match result {
        Ok(()) => Ok(0.into()),
        Err(e @ ApiError::Abort(..)) => Err(host.throw(e, context)),
        Err(_) => Ok((-1).into()),
    }
}

fn print(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let line = format_log_line(args, host, context)?;
    host.with(context, |s| {
        s.log("log", line);
        Ok(())
    })?;
    Ok(JsValue::undefined())
}

fn version(_: &JsValue, _: &[JsValue], _: &Host, _: &mut Context) -> JsResult<JsValue> {
    Ok(js_string!(concat!("Thwonk ", env!("CARGO_PKG_VERSION"))).into())
}

fn get_current(_: &JsValue, _: &[JsValue], host: &Host, _: &mut Context) -> JsResult<JsValue> {
    let raw = host
        .state
        .borrow()
        .message
        .as_ref()
        .map(|m| m.raw.clone())
        .unwrap_or_default();
    Ok(js_string!(raw).into())
}

/// The body types `sendMember` and `sendAll` take (docs/rule-scripts.md, "Legacy API").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyType {
    /// `text/plain`: `"text"`, and `"email"` as the original's scripts spell it.
    Text,
    /// `text/html`: `"html"`.
    Html,
}

/// The valid types, as error messages list them.
const BODY_TYPES: &str = r#""text" (or "email") for text/plain, "html" for text/html"#;

/// The body type named by a script; a `TypeError` (catchable) for anything else, naming the
/// valid types.
fn body_type(what: &str, value: &JsValue, context: &mut Context) -> JsResult<(BodyType, String)> {
    let name = to_text(value, context)?;
    match name.to_ascii_lowercase().as_str() {
        "text" | "email" => Ok((BodyType::Text, format!("{name} (text/plain)"))),
        "html" => Ok((BodyType::Html, format!("{name} (text/html)"))),
        _ => Err(JsNativeError::typ()
            .with_message(format!(
                "{what}: unknown type {name:?}; the types are {BODY_TYPES}"
            ))
            .into()),
    }
}

/// One message from the thwonk, its body as `kind` says.
fn legacy_send(kind: BodyType, to: &str, subject: String, body: String) -> ApiResult<SendRequest> {
    check_one_line("subject", &subject)?;
    let (text, html) = match kind {
        BodyType::Text => (Some(body), None),
        BodyType::Html => (None, Some(body)),
    };
    Ok(SendRequest {
        to: vec![check_address(to)?],
        subject,
        text,
        html,
        ..Default::default()
    })
}

fn send_member(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let (kind, shown) = body_type("sendMember", &arg(args, 0), context)?;
    let recipient = to_text(&arg(args, 1), context)?;
    let subject = to_text(&arg(args, 2), context)?;
    let body = to_text(&arg(args, 3), context)?;
    let result = host.try_with(|s| {
        let send = legacy_send(kind, &recipient, subject, body)?;
        s.send(send)?;
        s.log("info", format!("sendMember type={shown} to={recipient}"));
        Ok(())
    });
    code(result, host, context)
}

fn send_all(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let (kind, shown) = body_type("sendAll", &arg(args, 0), context)?;
    let subject = to_text(&arg(args, 1), context)?;
    let body = to_text(&arg(args, 2), context)?;
    let result = host.try_with(|s| {
        let members: Vec<String> = match s.read_file(MEMBERS_FILE)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| ApiError::Refused(format!("{MEMBERS_FILE}: {e}")))?,
            None => Vec::new(),
        };
        for member in &members {
            let send = legacy_send(kind, member, subject.clone(), body.clone())?;
            s.send(send)?;
        }
        s.log(
            "info",
            format!("sendAll type={shown} to {} members", members.len()),
        );
        Ok(())
    });
    code(result, host, context)
}

fn file_read(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let raw = to_text(&arg(args, 0), context)?;
    let result = host.try_with(|s| {
        let path = normalize_path(&raw).map_err(|e| ApiError::Refused(e.to_string()))?;
        s.read_file(&path)
    });
    match result {
        Ok(Some(text)) => Ok(js_string!(text).into()),
        Err(e @ ApiError::Abort(..)) => Err(host.throw(e, context)),
        _ => Ok((-1).into()),
    }
}

fn file_write(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let raw = to_text(&arg(args, 0), context)?;
    let content = to_text(&arg(args, 1), context)?;
    let result = host.try_with(|s| {
        let path = normalize_path(&raw).map_err(|e| ApiError::Refused(e.to_string()))?;
        s.write_file(path, content)
    });
    code(result, host, context)
}
