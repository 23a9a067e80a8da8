//! A fair share of one runner process's tasks: at most `runner.owner_concurrency` runs of
//! one owner's thwonks at once (a thwonk without an owner counts as its own owner), so that
//! one owner's heavy, slow thwonks cannot take every task while another owner's mail waits
//! behind them in the queue. A job over its owner's share is put back for a moment and the
//! task takes the next job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Runs in progress per owner in this process (cheap to clone).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shares {
    running: Arc<Mutex<HashMap<String, u32>>>,
}

/// One run's place in its owner's share; given back when dropped.
#[derive(Debug)]
pub(crate) struct Share {
    shares: Shares,
    key: String,
}

impl Shares {
    /// A place for `key` (an owner's id, or `thwonk:ID`) if it has fewer than `cap` runs now.
    pub fn try_enter(&self, key: &str, cap: u32) -> Option<Share> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(key.to_string()).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Share {
            shares: self.clone(),
            key: key.to_string(),
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut running = self
            .shares
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_gets_at_most_its_share_and_gets_it_back() {
        let s = Shares::default();
        let a1 = s.try_enter("a", 2).unwrap();
        let _a2 = s.try_enter("a", 2).unwrap();
        assert!(s.try_enter("a", 2).is_none(), "a is at its share");
        let _b = s.try_enter("b", 2).expect("b is not held up by a");
        drop(a1);
        assert!(s.try_enter("a", 2).is_some(), "a place given back");
    }
}
