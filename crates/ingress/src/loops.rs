//! Loop protection: the checks made on a message's header block once DATA is complete.
//!
//! - Too many `Received:` fields (more than `smtp.max_received_headers`, RFC 5321 §6.3): the
//!   message is going round in circles somewhere; the whole message is refused (554 5.4.6).
//! - More `X-Thwonk-Loop` fields than `smtp.max_thwonk_hops`: the message went through that
//!   many thwonks (a run's sends carry the fields of the message that triggered it, plus
//!   their own), so thwonks are answering each other; refused (554 5.4.6).
//! - An `X-Thwonk-Loop` field naming a recipient ([`thwonk_core::loop_mark`]): the message
//!   already passed through that thwonk. Only that recipient is dropped (logged); the others
//!   still get the message. When every recipient loops, the message is refused (554 5.4.6).
//!
//! Only the top-level header block is read (up to the first empty line), one pass, no
//! allocation per field beyond the loop fields' values; a 2 MB header block costs one scan.

use thwonk_core::Address;
use thwonk_core::loop_mark::LOOP_HEADER;

/// What the header block says about the message's path.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Path {
    /// `Received:` fields already in the message (ours is added later).
    pub(crate) received: usize,
    /// `X-Thwonk-Loop` fields: the thwonks the message passed through.
    pub(crate) hops: usize,
    /// For each recipient given, whether an `X-Thwonk-Loop` field names it.
    pub(crate) looping: Vec<bool>,
}

/// Read the header block of `message` for `Received:` and loop fields naming `rcpts`
/// ([`thwonk_mail::loop_mark::scan_header_block`], one pass).
pub(crate) fn scan(message: &[u8], rcpts: &[Address]) -> Path {
    let mut received = 0;
    let mut hops = 0;
    let mut looping = vec![false; rcpts.len()];
    thwonk_mail::loop_mark::scan_header_block(
        message,
        |name| {
            if name.eq_ignore_ascii_case(b"received") {
                received += 1;
            } else if name.eq_ignore_ascii_case(LOOP_HEADER.as_bytes()) {
                hops += 1;
            }
        },
        |addr| {
            for (i, rcpt) in rcpts.iter().enumerate() {
                if *rcpt == addr {
                    looping[i] = true;
                }
            }
        },
    );
    Path {
        received,
        hops,
        looping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<Address> {
        list.iter().map(|a| Address::parse(a).unwrap()).collect()
    }

    #[test]
    fn received_fields_are_counted_in_the_header_block_only() {
        let m = b"Received: a\r\n\tb\r\nreceived:c\r\nSubject: x\r\n\r\nReceived: body\r\n";
        assert_eq!(scan(m, &[]).received, 2);
        assert_eq!(scan(b"Received: a\nReceived: b\n\nx", &[]).received, 2);
        assert_eq!(scan(b"", &[]).received, 0);
    }

    #[test]
    fn loop_fields_mark_the_recipients_they_name() {
        let rcpts = addrs(&["a@example.org", "b@example.org", "c@example.org"]);
        let m = b"X-Thwonk-Loop: A@Example.org\r\nx-thwonk-loop:\r\n <c@example.org>\r\n\r\nX-Thwonk-Loop: b@example.org\r\n";
        assert_eq!(scan(m, &rcpts).looping, [true, false, true]);
        assert_eq!(scan(m, &rcpts).hops, 2);
        let m = b"X-Thwonk-Loop: nonsense\r\nX-Thwonk-Loop: a@example.org.evil\r\n\r\n";
        assert_eq!(scan(m, &rcpts).looping, [false, false, false]);
    }
}
