//! The loop marker on outgoing mail: `X-Thwonk-Loop: <thwonk address>` in front of every
//! message a thwonk sends ([`thwonk_core::loop_mark`]). Forwards keep the markers the
//! original carried, so a message that went A → B → A is recognised by A's ingress.

use thwonk_core::loop_mark::LOOP_HEADER;

/// `raw` with the loop field for `thwonk_address` (lower case, as composed) put first.
pub fn mark(raw: Vec<u8>, thwonk_address: &str) -> Vec<u8> {
    let field = format!("{LOOP_HEADER}: {thwonk_address}\r\n");
    let mut out = Vec::with_capacity(field.len() + raw.len());
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&raw);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_goes_first_and_the_message_is_untouched() {
        let out = mark(b"Subject: x\r\n\r\nbody\r\n".to_vec(), "list@example.org");
        assert_eq!(
            out,
            b"X-Thwonk-Loop: list@example.org\r\nSubject: x\r\n\r\nbody\r\n"
        );
    }
}
