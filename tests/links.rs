//! Every link in the repository's Markdown resolves inside the repository.
//!
//! A reader of the repo has the repo and nothing else: a relative link (`[..](path)`,
//! `[..](path#anchor)`, `[..]: path`) must name a file or directory that exists and lies under
//! the repository root, and an anchor into a Markdown file (or `#anchor` alone) must name one
//! of its headings. Absolute links (`https://`, `mailto:`, any `scheme:`) are not checked.
//! The team's working notes, which live beside the repository and not in it, must not be
//! referred to at all, in Markdown or in Rust comments: `docs/` holds what the repo relies on.
//!
//! Files are the tracked ones plus new ones not ignored (`git ls-files`), or, without git, a
//! walk of the tree that skips `target/`, `.git/` and `node_modules/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Repository files whose names end with one of `exts`, relative to the root, sorted.
fn files(root: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let wanted = |p: &Path| exts.iter().any(|e| p.to_string_lossy().ends_with(e));
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let mut out: Vec<PathBuf> = match listed {
        Ok(o) if o.status.success() => o
            .stdout
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
            // Deleted in the work tree but still in the index: not there for a reader.
            .filter(|p| root.join(p).is_file())
            .collect(),
        _ => walk(root),
    };
    out.retain(|p| wanted(p));
    out.sort();
    out.dedup();
    out
}

/// Every file under `root`, skipping build output, git's own files and node modules.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = dir.join(e.file_name());
            let name = e.file_name().to_string_lossy().into_owned();
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    if !matches!(name.as_str(), "target" | ".git" | "node_modules") {
                        dirs.push(rel);
                    }
                }
                Ok(_) => out.push(rel),
                Err(_) => {}
            }
        }
    }
    out
}

/// One link found in a Markdown file.
#[derive(Debug)]
struct Link {
    line: usize,
    target: String,
}

/// The lines of `text` outside fenced code blocks, numbered from 1, with inline code spans
/// blanked out (a link shown as code is not a link).
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        if marker.len() >= 3 && marker.chars().all(|c| c == marker.chars().next().unwrap()) {
            match &fence {
                None => {
                    fence = Some(marker);
                    continue;
                }
                Some(open) if marker.starts_with(open.as_str()) => {
                    fence = None;
                    continue;
                }
                Some(_) => {}
            }
        }
        if fence.is_none() {
            out.push((i + 1, blank_code_spans(line)));
        }
    }
    out
}

/// `line` with the contents of its `code spans` replaced by spaces.
fn blank_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let opener = &rest[start..start + ticks];
        let after = &rest[start + ticks..];
        match after.find(opener) {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str(&" ".repeat(ticks * 2 + after[..end].chars().count()));
                rest = &after[end + ticks..];
            }
            None => {
                out.push_str(&rest[..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Inline links and images (`[text](target "title")`) and reference definitions
/// (`[label]: target`).
fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (line, prose) in prose_lines(text) {
        let trimmed = prose.trim_start();
        if trimmed.starts_with('[')
            && let Some(close) = trimmed.find("]:")
        {
            let target = trimmed[close + 2..].split_whitespace().next().unwrap_or("");
            if !target.is_empty() {
                out.push(Link {
                    line,
                    target: target.trim_matches(|c| c == '<' || c == '>').to_string(),
                });
            }
            continue;
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let target = if let Some(inner) = after.strip_prefix('<') {
                inner.split('>').next().unwrap_or("")
            } else {
                // Up to the closing parenthesis, allowing balanced ones inside.
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, c) in after.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' if depth == 0 => {
                            end = i;
                            break;
                        }
                        ')' => depth -= 1,
                        c if c.is_whitespace() => {
                            end = i;
                            break;
                        }
                        _ => {}
                    }
                }
                &after[..end]
            };
            out.push(Link {
                line,
                target: target.to_string(),
            });
            rest = after;
        }
    }
    out
}

/// `scheme:...` (https, mailto, ...): not a path in the repo.
fn is_absolute_url(target: &str) -> bool {
    let Some((scheme, _)) = target.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `%20` and friends decoded (targets are URLs).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `base` joined with `rel` and normalised without touching the file system; `None` when
/// `..` climbs above the repository root.
fn resolve(base: &Path, rel: &str) -> Option<PathBuf> {
    let joined = match rel.strip_prefix('/') {
        // GitHub resolves `/path` from the repository root.
        Some(from_root) => PathBuf::from(from_root),
        None => base.join(rel),
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// GitHub's anchors for the headings of a Markdown text: lower case, punctuation dropped,
/// spaces as `-`, a repeated heading numbered `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut fence: Option<char> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            let c = t.chars().next().unwrap();
            fence = match fence {
                None => Some(c),
                Some(open) if open == c => None,
                other => other,
            };
            continue;
        }
        if fence.is_some() || !t.starts_with('#') {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        let title = &t[level..];
        if level > 6 || !(title.is_empty() || title.starts_with(' ')) {
            continue;
        }
        let title = title.trim().trim_end_matches('#').trim();
        let slug = slug(&link_text_only(title));
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// A heading's text with `[text](target)` reduced to `text`.
fn link_text_only(title: &str) -> String {
    let mut out = String::new();
    let mut rest = title;
    while let Some(at) = rest.find("](") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        rest = after.find(')').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out.replace('[', "")
}

fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Why `link` (in the Markdown file `file`, relative to `root`) does not resolve, if it does
/// not.
fn broken(root: &Path, file: &Path, text: &str, link: &Link) -> Option<String> {
    let target = link.target.trim();
    if target.is_empty() {
        return Some("empty link target".into());
    }
    if is_absolute_url(target) {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let path = percent_decode(path.split('?').next().unwrap_or(""));
    let (resolved, resolved_text) = if path.is_empty() {
        (file.to_path_buf(), Some(text.to_string()))
    } else {
        let base = file.parent().unwrap_or(Path::new(""));
        let Some(resolved) = resolve(base, &path) else {
            return Some(format!("{target}: outside the repository"));
        };
        let full = root.join(&resolved);
        if !full.exists() {
            return Some(format!(
                "{target}: no such file or directory ({})",
                resolved.display()
            ));
        }
        let is_md = resolved.extension().is_some_and(|e| e == "md");
        let text = if is_md && full.is_file() {
            std::fs::read_to_string(&full).ok()
        } else {
            None
        };
        (resolved, text)
    };
    match (anchor, resolved_text) {
        (Some(anchor), Some(text)) if !anchor.is_empty() => {
            let anchor = percent_decode(anchor).to_lowercase();
            if anchors(&text).contains(&anchor) {
                None
            } else {
                Some(format!(
                    "{target}: no heading with the anchor #{anchor} in {}",
                    resolved.display()
                ))
            }
        }
        _ => None,
    }
}

#[test]
fn every_relative_markdown_link_resolves_inside_the_repository() {
    let root = root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in files(&root, &[".md"]) {
        let text = std::fs::read_to_string(root.join(&file)).expect("readable Markdown");
        for link in links(&text) {
            checked += 1;
            if let Some(why) = broken(&root, &file, &text, &link) {
                problems.push(format!("{}:{}: {why}", file.display(), link.line));
            }
        }
    }
    assert!(
        checked > 0,
        "no links found: is {} the repo?",
        root.display()
    );
    assert!(
        problems.is_empty(),
        "{} broken link(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn nothing_refers_to_notes_outside_the_repository() {
    let root = root();
    // The notes' folder and their names. What the repo needs from them has a home in docs/:
    // the Redis wire format in thoonk.md, crate notes in dependencies.md, the script API in
    // rule-scripts.md. Spelled in two halves so that this file does not match itself.
    let needles = [
        concat!("..", "/shared/"),
        concat!("THOONK", ".md"),
        concat!("CRATES", ".md"),
        concat!("DESIGN", ".md"),
        concat!("STYLE", ".md"),
        concat!("JS-API", ".md"),
    ];
    let mut problems = Vec::new();
    for file in files(&root, &[".md", ".rs"]) {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                problems.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} mention(s) of notes outside the repository (point at docs/ instead):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

mod parsing {
    use super::*;

    #[test]
    fn finds_inline_reference_and_image_links_but_not_code() {
        let text = "See [a](docs/a.md#x) and ![i](img.png \"t\").\n\
                    `[not](a link)` and\n\
                    ```\n[nor](this)\n```\n\
                    [ref]: ../up.md\n";
        let found: Vec<(usize, String)> = links(text)
            .into_iter()
            .map(|l| (l.line, l.target))
            .collect();
        assert_eq!(
            found,
            vec![
                (1, "docs/a.md#x".to_string()),
                (1, "img.png".to_string()),
                (6, "../up.md".to_string()),
            ]
        );
    }

    #[test]
    fn resolves_inside_and_refuses_outside_the_root() {
        assert_eq!(
            resolve(Path::new("examples/workers"), "../../docs/thoonk.md"),
            Some(PathBuf::from("docs/thoonk.md"))
        );
        assert_eq!(resolve(Path::new(""), "../elsewhere/NOTES.md"), None);
        assert_eq!(
            resolve(Path::new("a"), "/docs/x.md"),
            Some(PathBuf::from("docs/x.md"))
        );
        assert!(is_absolute_url("https://example.org"));
        assert!(is_absolute_url("mailto:a@example.org"));
        assert!(!is_absolute_url("docs/a.md"));
    }

    #[test]
    fn anchors_follow_github() {
        let a = anchors("# Thoonk on Redis\n## The `inbound` queue (mail)\n## Keys\n## Keys\n");
        for want in [
            "thoonk-on-redis",
            "the-inbound-queue-mail",
            "keys",
            "keys-1",
        ] {
            assert!(a.contains(want), "{want} in {a:?}");
        }
    }
}
