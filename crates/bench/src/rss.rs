//! Peak resident memory of the daemon under load, read from `/proc`: the daemon and every
//! process below it (its private redis-server, its sandbox workers).

use std::collections::HashMap;

/// Peak resident memory (`VmHWM`) of a process tree, in KiB: the root, and every process
/// ever seen below it (each one's own peak, summed).
#[derive(Debug, Default, Clone)]
pub struct PeakRss {
    pub root_kib: u64,
    /// pid → (command name, peak KiB) for each descendant seen.
    pub descendants: HashMap<u32, (String, u64)>,
}

impl PeakRss {
    pub fn total_kib(&self) -> u64 {
        self.root_kib + self.descendants.values().map(|(_, k)| k).sum::<u64>()
    }

    /// Look at the tree under `root` once and keep each process's highest peak.
    pub fn sample(&mut self, root: u32) {
        if let Some((_, kib)) = vm_hwm(root) {
            self.root_kib = self.root_kib.max(kib);
        }
        for pid in descendants(root) {
            if let Some((name, kib)) = vm_hwm(pid) {
                let e = self.descendants.entry(pid).or_insert((name, 0));
                e.1 = e.1.max(kib);
            }
        }
    }
}

/// (command name, VmHWM in KiB) of a live process.
fn vm_hwm(pid: u32) -> Option<(String, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut name = String::new();
    let mut hwm = None;
    for line in status.lines() {
        if let Some(n) = line.strip_prefix("Name:") {
            name = n.trim().to_string();
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            hwm = v.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    Some((name, hwm?))
}

/// Every live process below `root`, found through the parent pid in `/proc/*/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: fields after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent_of.insert(pid, ppid);
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| **pp == p)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}
