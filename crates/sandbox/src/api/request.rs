//! `req` in `onRequest(req, thwonk)` and `methods[name](req, thwonk)`: `{method, path, query,
//! headers, body, text(), json(), caller: {kind, ip}}`, and finding `methods[name]`.

use boa_engine::object::ObjectInitializer;
use boa_engine::property::{Attribute, PropertyKey};
use boa_engine::{Context, JsObject, JsResult, JsValue, js_string};
use serde_json::{Map, Value};
use thwonk_core::run::HttpRequestView;

use crate::host::Host;

/// The request object. A bare JSON invoke (no `http`) is a `POST /invoke` by the owner whose
/// `body` is the parsed JSON; a full request's `body` is its text.
pub fn request_object(
    body: &Value,
    http: Option<&HttpRequestView>,
    host: &Host,
    context: &mut Context,
) -> JsResult<JsObject> {
    let bare = HttpRequestView {
        method: "POST".into(),
        path: "/invoke".into(),
        caller_kind: "owner".into(),
        ..Default::default()
    };
    let http = http.unwrap_or(&bare);
    let mut query = Map::new();
    for (k, v) in &http.query {
        query.insert(k.clone(), Value::String(v.clone()));
    }
    let mut headers = Map::new();
    for (k, v) in &http.headers {
        match headers.get_mut(k) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    let caller = serde_json::json!({"kind": http.caller_kind, "ip": http.caller_ip});
    let body = match &http.text {
        Some(text) => Value::String(text.clone()),
        None => body.clone(),
    };
    let query = host.json_to_js(&Value::Object(query), context)?;
    let headers = host.json_to_js(&Value::Object(headers), context)?;
    let caller = host.json_to_js(&caller, context)?;
    let body = host.json_to_js(&body, context)?;
    Ok(ObjectInitializer::new(context)
        .property(
            js_string!("method"),
            js_string!(http.method.as_str()),
            Attribute::all(),
        )
        .property(
            js_string!("path"),
            js_string!(http.path.as_str()),
            Attribute::all(),
        )
        .property(js_string!("query"), query, Attribute::all())
        .property(js_string!("headers"), headers, Attribute::all())
        .property(js_string!("body"), body, Attribute::all())
        .property(js_string!("caller"), caller, Attribute::all())
        .function(host.function(text), js_string!("text"), 0)
        .function(host.function(json), js_string!("json"), 0)
        .build())
}

/// `req.text()`: the body as sent (a JSON invoke's body as JSON text).
fn text(_: &JsValue, _: &[JsValue], host: &Host, _: &mut Context) -> JsResult<JsValue> {
    let text = host.state.borrow().request_text.clone().unwrap_or_default();
    Ok(js_string!(text).into())
}

/// `req.json()`: the body parsed as JSON; a `SyntaxError` when it is not JSON.
fn json(_: &JsValue, _: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let text = host.state.borrow().request_text.clone().unwrap_or_default();
    host.parse_json(&text, context)
}

/// `methods[name]` of the module's exports: an own property of an exported `methods` object
/// (never one it inherits, such as `toString`), or `undefined`.
pub fn method_handler(
    namespace: &JsObject,
    name: &str,
    context: &mut Context,
) -> JsResult<JsValue> {
    let methods = namespace.get(js_string!("methods"), context)?;
    let Some(methods) = methods.as_object() else {
        return Ok(JsValue::undefined());
    };
    let key = PropertyKey::from(js_string!(name));
    if !methods.has_own_property(key.clone(), context)? {
        return Ok(JsValue::undefined());
    }
    methods.get(key, context)
}
