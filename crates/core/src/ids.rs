//! Identifiers. Every id is a UUID v7 in its hyphenated text form: time-ordered, so ids made
//! later sort later, and unique across hosts without coordination.

/// A new time-ordered unique id.
pub fn new_id() -> String {
    uuid_v7()
}

/// A new unguessable token: 128 random bits as 32 lower-case hex digits. Safe in a mail
/// local part and a file name; used where knowing the value must be the proof (a VERP bounce
/// address names its outbox row with one).
pub fn new_token() -> String {
    let mut rnd = [0u8; 16];
    fill_random(&mut rnd);
    rnd.iter().map(|x| format!("{x:02x}")).collect()
}

fn uuid_v7() -> String {
    // Build a v7 UUID by hand from the clock and OS randomness, so that core needs no
    // dependency for it: 48 bits of ms, version 7, 74 random bits, variant 10.
    let ms = u64::try_from(crate::time::now_ms()).unwrap_or(0);
    let mut rnd = [0u8; 10];
    fill_random(&mut rnd);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&rnd);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(buf).is_ok()
    {
        return;
    }
    // No /dev/urandom (a sandboxed process should never call this): fall back to a hash of
    // the time and a counter, which still keeps ids distinct within this process.
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v7_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7", "version nibble");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant bits");
    }

    #[test]
    fn tokens_are_hex_and_distinct() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, new_token());
    }

    #[test]
    fn later_ids_sort_later() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(b > a);
    }
}
