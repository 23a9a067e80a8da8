//! The bytes of message bodies that all sessions hold at once (`smtp.max_bytes_in_flight`).
//!
//! Each session's [`crate::data::DataReader`] reserves room here as its body grows, in
//! [`GRANULE`] steps, and gives it back when the message is stored (or refused). A body that
//! cannot get room is dropped and read to its end, and the session answers 452 4.3.1: many
//! big transfers at once cannot take the daemon's memory, and the senders retry later.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Room is taken in steps of this many bytes, so that a body does not touch the shared
/// counter for every read.
pub(crate) const GRANULE: u64 = 256 * 1024;

/// The shared count of reserved bytes, and its cap.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    used: Arc<AtomicU64>,
    max: u64,
}

impl InFlight {
    pub(crate) fn new(max: u64) -> InFlight {
        InFlight {
            used: Arc::new(AtomicU64::new(0)),
            max,
        }
    }

    /// An empty reservation on this counter.
    pub(crate) fn reservation(&self) -> Reservation {
        Reservation {
            pool: self.clone(),
            held: 0,
        }
    }

    /// Bytes reserved right now by every session.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// Room held by one body; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: InFlight,
    held: u64,
}

impl Reservation {
    /// Make sure at least `bytes` are held; false (and nothing more held) if the cap does
    /// not allow it.
    pub(crate) fn cover(&mut self, bytes: u64) -> bool {
        if bytes <= self.held {
            return true;
        }
        let want = bytes.div_ceil(GRANULE).saturating_mul(GRANULE) - self.held;
        let max = self.pool.max;
        let taken = self
            .pool
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(want).filter(|after| *after <= max)
            });
        match taken {
            Ok(_) => {
                self.held += want;
                true
            }
            Err(_) => false,
        }
    }

    /// Give everything back now.
    pub(crate) fn release(&mut self) {
        if self.held > 0 {
            self.pool.used.fetch_sub(self.held, Ordering::AcqRel);
            self.held = 0;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_taken_in_granules_up_to_the_cap_and_given_back() {
        let pool = InFlight::new(4 * GRANULE);
        let mut a = pool.reservation();
        assert!(a.cover(1));
        assert_eq!(pool.used(), GRANULE);
        assert!(a.cover(3 * GRANULE));
        assert_eq!(pool.used(), 3 * GRANULE);
        let mut b = pool.reservation();
        assert!(b.cover(GRANULE));
        assert!(!b.cover(GRANULE + 1), "past the cap");
        assert_eq!(pool.used(), 4 * GRANULE);
        drop(a);
        assert_eq!(pool.used(), GRANULE);
        assert!(b.cover(2 * GRANULE));
        b.release();
        assert_eq!(pool.used(), 0);
    }
}
