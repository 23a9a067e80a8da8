//! This run's buffered file writes, laid over the store's files so reads see them.

use std::collections::BTreeMap;

use thwonk_core::run::{FileInfo, VfsReader};

/// Paths written (`Some(content)`) or deleted (`None`) during this run. A `BTreeMap` so that
/// listings come out in path order without a sort that could depend on insertion order.
#[derive(Debug, Default)]
pub struct Overlay {
    entries: BTreeMap<String, Option<String>>,
}

impl Overlay {
    pub fn write(&mut self, path: String, content: String) {
        self.entries.insert(path, Some(content));
    }

    pub fn delete(&mut self, path: String) {
        self.entries.insert(path, None);
    }

    /// The file as this run sees it. Bytes that are not UTF-8 are replaced: scripts deal in
    /// strings.
    pub fn read(&self, path: &str, reader: &mut dyn VfsReader) -> Result<Option<String>, String> {
        if let Some(entry) = self.entries.get(path) {
            return Ok(entry.clone());
        }
        Ok(reader
            .read(path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The store's listing with this run's writes and deletes applied; files written in this
    /// run carry the trigger time as their update time.
    pub fn list(
        &self,
        prefix: &str,
        reader: &mut dyn VfsReader,
        now_ms: i64,
    ) -> Result<Vec<FileInfo>, String> {
        let mut files: BTreeMap<String, FileInfo> = reader
            .list(prefix)?
            .into_iter()
            .map(|f| (f.path.clone(), f))
            .collect();
        for (path, entry) in self.entries.range(prefix.to_string()..) {
            if !path.starts_with(prefix) {
                break;
            }
            match entry {
                Some(content) => {
                    files.insert(
                        path.clone(),
                        FileInfo {
                            path: path.clone(),
                            size: content.len() as u64,
                            updated_at_ms: now_ms,
                        },
                    );
                }
                None => {
                    files.remove(path);
                }
            }
        }
        Ok(files.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Files(HashMap<String, String>);
    impl VfsReader for Files {
        fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(path).map(|s| s.as_bytes().to_vec()))
        }
        fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String> {
            let mut v: Vec<_> = self
                .0
                .iter()
                .filter(|(p, _)| p.starts_with(prefix))
                .map(|(p, c)| FileInfo {
                    path: p.clone(),
                    size: c.len() as u64,
                    updated_at_ms: 1,
                })
                .collect();
            v.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(v)
        }
    }

    fn store() -> Files {
        Files(HashMap::from([
            ("a/1".to_string(), "one".to_string()),
            ("a/2".to_string(), "two".to_string()),
            ("b".to_string(), "bee".to_string()),
        ]))
    }

    #[test]
    fn reads_see_own_writes_and_deletes_first() {
        let mut o = Overlay::default();
        let mut r = store();
        o.write("a/1".into(), "uno".into());
        o.delete("b".into());
        assert_eq!(o.read("a/1", &mut r).unwrap().as_deref(), Some("uno"));
        assert_eq!(o.read("a/2", &mut r).unwrap().as_deref(), Some("two"));
        assert_eq!(o.read("b", &mut r).unwrap(), None);
    }

    #[test]
    fn listing_merges_writes_and_hides_deletes() {
        let mut o = Overlay::default();
        let mut r = store();
        o.write("a/3".into(), "three!".into());
        o.delete("a/1".into());
        o.write("c".into(), "x".into());
        let l = o.list("a/", &mut r, 99).unwrap();
        let paths: Vec<_> = l
            .iter()
            .map(|f| (f.path.as_str(), f.size, f.updated_at_ms))
            .collect();
        assert_eq!(paths, vec![("a/2", 3, 1), ("a/3", 6, 99)]);
    }
}
