//! Line ends. SMTP (RFC 5321 §2.3.8) allows CR and LF only together as CRLF; mail stored or
//! written by tools often has bare LF. Both composing and delivering normalise with this one
//! function so the two can never disagree.

use std::borrow::Cow;

/// Turn every bare LF and bare CR into CRLF. Borrows when the input is already clean, which is
/// the common case for composed mail.
pub fn normalize_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    if is_crlf_clean(raw) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                // A CR followed by LF is one line end, not two.
                if raw.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn is_crlf_clean(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => return false,
            _ => i += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_input_is_borrowed() {
        assert!(matches!(normalize_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(normalize_crlf(b""), Cow::Borrowed(_)));
    }

    #[test]
    fn bare_lf_and_bare_cr_become_crlf() {
        assert_eq!(&*normalize_crlf(b"a\nb\rc\r\nd"), b"a\r\nb\r\nc\r\nd");
        assert_eq!(&*normalize_crlf(b"\n\n"), b"\r\n\r\n");
        assert_eq!(&*normalize_crlf(b"x\r"), b"x\r\n");
        assert_eq!(&*normalize_crlf(b"\r\r\n"), b"\r\n\r\n");
    }
}
