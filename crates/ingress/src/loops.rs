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

/// Read the header block of `message` for `Received:` and loop fields naming `rcpts`.
pub(crate) fn scan(message: &[u8], rcpts: &[Address]) -> Path {
    let mut path = Path {
        received: 0,
        hops: 0,
        looping: vec![false; rcpts.len()],
    };
    // The loop field being read (its value may be folded over several lines).
    let mut loop_value: Option<Vec<u8>> = None;
    let finish = |value: Option<Vec<u8>>, path: &mut Path| {
        if let Some(v) = value {
            let text = String::from_utf8_lossy(&v);
            let named = text
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            if let Ok(addr) = Address::parse(named) {
                for (i, rcpt) in rcpts.iter().enumerate() {
                    if *rcpt == addr {
                        path.looping[i] = true;
                    }
                }
            }
        }
    };
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some(v) = &mut loop_value {
                v.extend_from_slice(line);
            }
            continue;
        }
        finish(loop_value.take(), &mut path);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Not a field: the header block is broken; keep looking at what follows.
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"received") {
            path.received += 1;
        } else if name.eq_ignore_ascii_case(LOOP_HEADER.as_bytes()) {
            path.hops += 1;
            loop_value = Some(line[colon + 1..].to_vec());
        }
    }
    finish(loop_value.take(), &mut path);
    path
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
