//! Paths of a thwonk's virtual file system.
//!
//! A path is `/`-separated and relative to the thwonk's root. One leading `/` is tolerated and
//! dropped (`/members.json` is `members.json`); `..`, `.`, empty segments, NUL, backslashes and
//! paths over 512 bytes are refused, so no spelling of a path can name another thwonk's files.

/// The longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 512;

/// Why a VFS path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path contains a backslash; use '/' to separate segments")]
    Backslash,
    #[error("path has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("path has a '.' or '..' segment")]
    DotSegment,
}

/// Validate a file path and return its normal form (no leading `/`).
pub fn normalize_path(path: &str) -> Result<String, PathError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let p = path.strip_prefix('/').unwrap_or(path);
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.contains('\0') {
        return Err(PathError::Nul);
    }
    if p.contains('\\') {
        return Err(PathError::Backslash);
    }
    for seg in p.split('/') {
        if seg.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return Err(PathError::DotSegment);
        }
    }
    Ok(p.to_string())
}

/// Validate a listing prefix: empty (everything) or a path prefix with the same rules, where a
/// trailing `/` is allowed (`archive/` lists the folder).
pub fn normalize_prefix(prefix: &str) -> Result<String, PathError> {
    let p = prefix.strip_prefix('/').unwrap_or(prefix);
    if p.is_empty() {
        return Ok(String::new());
    }
    match p.strip_suffix('/') {
        Some(dir) => normalize_path(dir).map(|d| format!("{d}/")),
        None => normalize_path(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_and_lose_a_leading_slash() {
        assert_eq!(normalize_path("members.json").unwrap(), "members.json");
        assert_eq!(
            normalize_path("/archive/2026/1.txt").unwrap(),
            "archive/2026/1.txt"
        );
    }

    #[test]
    fn traversal_and_junk_are_refused() {
        assert_eq!(
            normalize_path("../other/members.json"),
            Err(PathError::DotSegment)
        );
        assert_eq!(normalize_path("a/../../b"), Err(PathError::DotSegment));
        assert_eq!(normalize_path("./a"), Err(PathError::DotSegment));
        assert_eq!(normalize_path("a//b"), Err(PathError::EmptySegment));
        assert_eq!(normalize_path("a/"), Err(PathError::EmptySegment));
        assert_eq!(normalize_path("//etc/passwd"), Err(PathError::EmptySegment));
        assert_eq!(normalize_path("a\0b"), Err(PathError::Nul));
        assert_eq!(normalize_path("a\\..\\b"), Err(PathError::Backslash));
        assert_eq!(normalize_path(""), Err(PathError::Empty));
        assert_eq!(normalize_path("/"), Err(PathError::Empty));
        assert_eq!(normalize_path(&"a".repeat(513)), Err(PathError::TooLong));
        assert!(normalize_path(&"a".repeat(512)).is_ok());
    }

    #[test]
    fn prefixes_allow_a_trailing_slash() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert_eq!(normalize_prefix("archive/").unwrap(), "archive/");
        assert_eq!(normalize_prefix("arch").unwrap(), "arch");
        assert!(normalize_prefix("../").is_err());
    }
}
