//! `thwonk.files`: the thwonk's own files, through the run's overlay (docs/rule-scripts.md,
//! "Paths").

use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{Context, JsNativeError, JsObject, JsResult, JsValue, js_string};
use thwonk_core::vfs::{normalize_path, normalize_prefix};

use crate::host::{Host, arg, array, string_arg, to_text};
use crate::state::ApiError;

pub fn files_object(host: &Host, context: &mut Context) -> JsResult<JsObject> {
    let files = ObjectInitializer::new(context)
        .function(host.function(read), js_string!("read"), 1)
        .function(host.function(read_json), js_string!("readJSON"), 1)
        .function(host.function(write), js_string!("write"), 2)
        .function(host.function(write_json), js_string!("writeJSON"), 2)
        .function(host.function(delete), js_string!("delete"), 1)
        .function(host.function(exists), js_string!("exists"), 1)
        .function(host.function(list), js_string!("list"), 1)
        .build();
    files.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(files)
}

/// The normalised path of argument 0; a catchable `Error` naming the rule it breaks.
pub fn path_arg(args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<String> {
    let raw = to_text(&arg(args, 0), context)?;
    normalize_path(&raw)
        .map_err(|e| host.throw(ApiError::Refused(format!("bad path {raw:?}: {e}")), context))
}

pub fn read_text(path: &str, host: &Host, context: &mut Context) -> JsResult<Option<String>> {
    host.with(context, |s| s.read_file(path))
}

fn read(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let path = path_arg(args, host, context)?;
    Ok(match read_text(&path, host, context)? {
        Some(text) => js_string!(text).into(),
        None => JsValue::null(),
    })
}

fn read_json(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let path = path_arg(args, host, context)?;
    match read_text(&path, host, context)? {
        Some(text) => host.parse_json(&text, context),
        None => Ok(JsValue::null()),
    }
}

fn write(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let path = path_arg(args, host, context)?;
    let content = string_arg(
        args,
        1,
        "files.write content (use writeJSON for other values)",
    )?;
    host.with(context, |s| s.write_file(path, content))?;
    Ok(JsValue::undefined())
}

fn write_json(
    _: &JsValue,
    args: &[JsValue],
    host: &Host,
    context: &mut Context,
) -> JsResult<JsValue> {
    let path = path_arg(args, host, context)?;
    let Some(json) = host.stringify(&arg(args, 1), context)? else {
        return Err(JsNativeError::typ()
            .with_message("files.writeJSON: the value has no JSON form")
            .into());
    };
    host.with(context, |s| s.write_file(path, json))?;
    Ok(JsValue::undefined())
}

fn delete(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let path = path_arg(args, host, context)?;
    host.with(context, |s| {
        s.delete_file(path);
        Ok(())
    })?;
    Ok(JsValue::undefined())
}

fn exists(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let path = path_arg(args, host, context)?;
    Ok(read_text(&path, host, context)?.is_some().into())
}

/// `files.list(prefix = "")` → `[{path, size, updatedAt}]`, in path order.
fn list(_: &JsValue, args: &[JsValue], host: &Host, context: &mut Context) -> JsResult<JsValue> {
    let raw = match arg(args, 0) {
        v if v.is_null_or_undefined() => String::new(),
        v => to_text(&v, context)?,
    };
    let prefix = normalize_prefix(&raw).map_err(|e| {
        host.throw(
            ApiError::Refused(format!("bad prefix {raw:?}: {e}")),
            context,
        )
    })?;
    let files = host.with(context, |s| s.list_files(&prefix))?;
    let entries: Vec<JsValue> = files
        .into_iter()
        .map(|f| {
            ObjectInitializer::new(context)
                .property(js_string!("path"), js_string!(f.path), Attribute::all())
                .property(js_string!("size"), f.size as f64, Attribute::all())
                .property(
                    js_string!("updatedAt"),
                    js_string!(thwonk_core::time::rfc3339_millis(f.updated_at_ms)),
                    Attribute::all(),
                )
                .build()
                .into()
        })
        .collect();
    Ok(array(entries, context))
}
