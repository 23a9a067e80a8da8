//! The loop marker on outgoing mail: `X-Thwonk-Loop: <thwonk address>` in front of every
//! message a thwonk sends ([`thwonk_core::loop_mark`]), one field per thwonk on the way.
//! Forwards keep the markers the original carried; new messages and replies a run makes carry
//! those of the message that triggered the run ([`inherited`]). So a message that went
//! A → B → A is recognised by A's ingress, and the number of fields is the message's hop
//! count between thwonks, which the ingress caps (`smtp.max_thwonk_hops`).

use thwonk_core::loop_mark::LOOP_HEADER;

/// Most fields carried over from a triggering message: far above any sane hop limit, so a
/// message stuffed with fields cannot make every send huge.
pub const INHERITED_MAX: usize = 100;

/// `raw` with the loop field for `thwonk_address` (lower case, as composed) put first, then
/// one field for each address of `inherited` (the trigger's marks, newest first).
pub fn mark(raw: Vec<u8>, thwonk_address: &str, inherited: &[String]) -> Vec<u8> {
    let mut fields = format!("{LOOP_HEADER}: {thwonk_address}\r\n");
    for address in inherited.iter().take(INHERITED_MAX) {
        fields.push_str(&format!("{LOOP_HEADER}: {address}\r\n"));
    }
    let mut out = Vec::with_capacity(fields.len() + raw.len());
    out.extend_from_slice(fields.as_bytes());
    out.extend_from_slice(&raw);
    out
}

/// The addresses of the loop fields in `raw`'s top-level header block, in order, lower case;
/// values that are not one plain address are left out, and at most [`INHERITED_MAX`].
pub fn inherited(raw: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    scan_header_block(
        raw,
        |_| {},
        |address| {
            if out.len() < INHERITED_MAX {
                out.push(address.as_str().to_lowercase());
            }
        },
    );
    out
}

/// One pass over `raw`'s top-level header block (up to the first empty line): `on_field`
/// with every field's name, and `on_loop` with the address of each loop field whose value
/// (unfolded) is one plain address, `<…>` or bare. A line that is not a field is skipped.
/// The ingress's loop checks and [`inherited`] both read the block through this.
pub fn scan_header_block(
    raw: &[u8],
    mut on_field: impl FnMut(&[u8]),
    mut on_loop: impl FnMut(thwonk_core::Address),
) {
    // The loop field being read (its value may be folded over several lines).
    let mut value: Option<Vec<u8>> = None;
    let mut finish = |value: Option<Vec<u8>>| {
        let Some(v) = value else { return };
        let text = String::from_utf8_lossy(&v);
        let named = text
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if let Ok(address) = thwonk_core::Address::parse(named) {
            on_loop(address);
        }
    };
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some(v) = &mut value {
                v.extend_from_slice(line);
            }
            continue;
        }
        finish(value.take());
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        on_field(name);
        if name.eq_ignore_ascii_case(LOOP_HEADER.as_bytes()) {
            value = Some(line[colon + 1..].to_vec());
        }
    }
    finish(value.take());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_goes_first_and_the_message_is_untouched() {
        let out = mark(
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            "list@example.org",
            &[],
        );
        assert_eq!(
            out,
            b"X-Thwonk-Loop: list@example.org\r\nSubject: x\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn the_triggers_marks_follow_our_own() {
        let out = mark(
            b"Subject: x\r\n\r\n".to_vec(),
            "b@example.org",
            &["a@example.org".to_string()],
        );
        assert_eq!(
            out,
            b"X-Thwonk-Loop: b@example.org\r\nX-Thwonk-Loop: a@example.org\r\nSubject: x\r\n\r\n"
        );
        assert_eq!(inherited(&out), ["b@example.org", "a@example.org"]);
    }

    #[test]
    fn inherited_marks_are_read_from_the_header_block_only() {
        let raw = b"x-thwonk-loop: <A@Example.org>\r\nX-Thwonk-Loop:\r\n c@example.org\r\nX-Thwonk-Loop: junk\r\n\r\nX-Thwonk-Loop: d@example.org\r\n";
        assert_eq!(inherited(raw), ["a@example.org", "c@example.org"]);
        let many = "X-Thwonk-Loop: a@example.org\r\n".repeat(500) + "\r\n";
        assert_eq!(inherited(many.as_bytes()).len(), INHERITED_MAX);
    }
}
