//! `export const publicRoutes = ["GET /archive/*", "POST /unsubscribe"]`: which requests may
//! reach a script's `onRequest` (or `methods`) without a token. Checked at deploy (a bad
//! entry refuses the script) and by the HTTP API before a public request becomes a run.
//!
//! An entry is `METHOD /path`: `METHOD` an HTTP method in upper case or `*` for any; `/path`
//! exact, or ending in `/*` for everything below that folder (`/archive/*` matches
//! `/archive/` and `/archive/2026/1.html`, not `/archive`). A `GET` entry also admits `HEAD`.
//! A public call of `methods.name` is the request `POST /invoke/name`.

/// The most entries a script may list.
pub const MAX_PUBLIC_ROUTES: usize = 64;

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRoute {
    /// `None`: any method.
    pub method: Option<String>,
    pub path: String,
    /// The path ends in `/*`: `path` is the folder's prefix, ending in `/`.
    pub prefix: bool,
}

impl PublicRoute {
    /// Parse `METHOD /path`, or say what is wrong with it.
    pub fn parse(entry: &str) -> Result<PublicRoute, String> {
        let bad = |why: &str| Err(format!("publicRoutes entry {entry:?}: {why}"));
        let Some((method, path)) = entry.split_once(' ') else {
            return bad("write it as \"METHOD /path\", e.g. \"GET /archive/*\"");
        };
        let method = if method == "*" {
            None
        } else if !method.is_empty()
            && method.len() <= 16
            && method.bytes().all(|b| b.is_ascii_uppercase())
        {
            Some(method.to_string())
        } else {
            return bad("the method must be upper case (GET, POST, ...) or *");
        };
        if !path.starts_with('/') || path.len() > 512 {
            return bad("the path must start with / (at most 512 bytes)");
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\' || b == b'?' || b == b'#')
        {
            return bad("the path may not hold spaces, \\, ?, # or control characters");
        }
        let (path, prefix) = match path.strip_suffix('*') {
            Some(folder) if folder.ends_with('/') => (folder.to_string(), true),
            Some(_) => return bad("* may only end the path, after a / (\"/archive/*\")"),
            None => (path.to_string(), false),
        };
        if path.contains('*') {
            return bad("* may only end the path, after a / (\"/archive/*\")");
        }
        if path.split('/').any(|s| s == ".." || s == ".") {
            return bad("no . or .. segments");
        }
        Ok(PublicRoute {
            method,
            path,
            prefix,
        })
    }

    /// Whether a request `method path` (path decoded, starting with `/`) is admitted.
    pub fn admits(&self, method: &str, path: &str) -> bool {
        let method_ok = match &self.method {
            None => true,
            Some(m) => m == method || (m == "GET" && method == "HEAD"),
        };
        method_ok
            && if self.prefix {
                path.starts_with(&self.path)
            } else {
                path == self.path
            }
    }
}

/// Parse every entry (and their number).
pub fn parse_all(entries: &[String]) -> Result<Vec<PublicRoute>, String> {
    if entries.len() > MAX_PUBLIC_ROUTES {
        return Err(format!(
            "publicRoutes lists {} entries; at most {MAX_PUBLIC_ROUTES}",
            entries.len()
        ));
    }
    entries.iter().map(|e| PublicRoute::parse(e)).collect()
}

/// Whether a method name is one `.../invoke/{name}` can call: a plain JS identifier of 1 to
/// 64 ASCII letters, digits, `_` and `$`, not starting with a digit.
pub fn is_method_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_match() {
        let r = PublicRoute::parse("GET /archive/*").unwrap();
        assert!(r.admits("GET", "/archive/"));
        assert!(r.admits("HEAD", "/archive/2026/1.html"));
        assert!(!r.admits("GET", "/archive"));
        assert!(!r.admits("POST", "/archive/x"));
        let r = PublicRoute::parse("* /hook").unwrap();
        assert!(r.admits("PUT", "/hook"));
        assert!(!r.admits("PUT", "/hook/x"));
    }

    #[test]
    fn bad_entries_are_refused() {
        for e in [
            "GET",
            "get /x",
            "GET x",
            "GET /a*",
            "GET /*/x",
            "GET /../x",
            "GET /a b",
        ] {
            assert!(PublicRoute::parse(e).is_err(), "{e}");
        }
    }

    #[test]
    fn method_names_are_identifiers() {
        assert!(is_method_name("hello"));
        assert!(is_method_name("_x$1"));
        assert!(!is_method_name("1x"));
        assert!(!is_method_name("a-b"));
        assert!(!is_method_name(""));
    }
}
