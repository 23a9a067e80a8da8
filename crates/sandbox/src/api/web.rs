//! The web side of `thwonk`: `thwonk.url(path)` and `thwonk.crypto` (`hmacSha256`,
//! `timingSafeEqual`) for verifying webhooks.

use boa_engine::object::{IntegrityLevel, ObjectInitializer};
use boa_engine::{Context, JsNativeError, JsObject, JsResult, JsValue, js_string};
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::host::{Host, string_arg};

/// `thwonk.url(path)`: the absolute public URL of one of this thwonk's paths,
/// `{public.base_url}/pub/{address}/{path}`; `path` may carry a `?query`. Throws when the
/// server has no `public.base_url`, and for a `..` segment or control characters.
pub fn url(_: &JsValue, args: &[JsValue], host: &Host, _: &mut Context) -> JsResult<JsValue> {
    let path = match args.first() {
        None => String::new(),
        Some(v) if v.is_undefined() => String::new(),
        Some(_) => string_arg(args, 0, "url's path")?,
    };
    let Some(base) = host.state.borrow().public_url.clone() else {
        return Err(JsNativeError::error()
            .with_message("thwonk.url: this server has no public.base_url configured")
            .into());
    };
    Ok(js_string!(public_url(&base, &path)?).into())
}

/// `base` + `/` + `path`, the path part percent-encoded where a URL needs it.
fn public_url(base: &str, path: &str) -> JsResult<String> {
    let refuse = |why: &str| -> JsResult<String> {
        Err(JsNativeError::error()
            .with_message(format!("thwonk.url({path:?}): {why}"))
            .into())
    };
    if path.chars().any(char::is_control) {
        return refuse("control characters are not allowed");
    }
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let path_part = path_part.strip_prefix('/').unwrap_or(path_part);
    if path_part.split('/').any(|s| s == ".." || s == ".") {
        return refuse("no . or .. segments");
    }
    let mut out = format!("{base}/");
    encode_into(&mut out, path_part, b"-._~/!$&'()*+,;=:@");
    if let Some(q) = query {
        out.push('?');
        encode_into(&mut out, q, b"-._~/!$&'()*+,;=:@?%");
    }
    Ok(out)
}

fn encode_into(out: &mut String, text: &str, keep: &[u8]) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `thwonk.crypto`: `hmacSha256(key, data)` → lower-case hex, `timingSafeEqual(a, b)` → bool.
pub fn crypto_object(host: &Host, context: &mut Context) -> JsResult<JsObject> {
    let crypto = ObjectInitializer::new(context)
        .function(host.function(hmac_sha256), js_string!("hmacSha256"), 2)
        .function(
            host.function(timing_safe_equal),
            js_string!("timingSafeEqual"),
            2,
        )
        .build();
    crypto.set_integrity_level(IntegrityLevel::Frozen, context)?;
    Ok(crypto)
}

/// HMAC-SHA-256 of the UTF-8 bytes of `data` under the UTF-8 bytes of `key`, as hex.
fn hmac_sha256(_: &JsValue, args: &[JsValue], _: &Host, _: &mut Context) -> JsResult<JsValue> {
    let key = string_arg(args, 0, "hmacSha256's key")?;
    let data = string_arg(args, 1, "hmacSha256's data")?;
    Ok(js_string!(hmac_hex(key.as_bytes(), data.as_bytes())).into())
}

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether two strings are equal, in time that depends only on their lengths (a signature
/// compared this way leaks nothing about how much of it was right).
fn timing_safe_equal(
    _: &JsValue,
    args: &[JsValue],
    _: &Host,
    _: &mut Context,
) -> JsResult<JsValue> {
    let a = string_arg(args, 0, "timingSafeEqual's first argument")?;
    let b = string_arg(args, 1, "timingSafeEqual's second argument")?;
    Ok(bool::from(a.as_bytes().ct_eq(b.as_bytes())).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_are_encoded_and_traversal_refused() {
        let base = "https://x.example/pub/list@x.example";
        assert_eq!(
            public_url(base, "/archive/a b.html?id=1 2").unwrap(),
            "https://x.example/pub/list@x.example/archive/a%20b.html?id=1%202"
        );
        assert_eq!(public_url(base, "").unwrap(), format!("{base}/"));
        assert!(public_url(base, "../x").is_err());
    }
}
