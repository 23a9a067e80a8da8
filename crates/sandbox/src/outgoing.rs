//! Rules for outgoing messages that need no engine: address checks, the `from` rule, reply
//! subjects and `References`.

use thwonk_core::run::SendRequest;

use crate::state::{ApiError, ApiResult};

/// A send the commit will accept: `thwonk_mail::check_send`, the very checks `compose` makes
/// at commit, made at the call so that a refusal (a reserved header such as `Bcc`, an address
/// no mailer can parse, an attachment that is not base64) is an `Error` the script can catch,
/// naming what is wrong.
pub fn composable(send: SendRequest) -> ApiResult<SendRequest> {
    thwonk_mail::check_send(&send).map_err(|e| ApiError::Refused(e.to_string()))?;
    Ok(send)
}

/// What `thwonk.reply` looks at before answering (RFC 3834 sections 2 and 3).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyCheck<'a> {
    /// The message's envelope sender (`msg.from`): where the reply goes.
    pub envelope_from: &'a str,
    /// Its `Auto-Submitted` field, if any.
    pub auto_submitted: Option<&'a str>,
    /// Its `Precedence` field, if any.
    pub precedence: Option<&'a str>,
    /// Whether it has a `List-Id` field.
    pub list_id: bool,
    /// Whether the thwonk already sent this very reply to the envelope sender lately (this
    /// run, or within `runner.auto_reply_interval_secs`).
    pub already_answered: bool,
    /// `reply(msg, {force: true})`: the script insists.
    pub force: bool,
}

/// Why `thwonk.reply` does not answer, or `None` when it may. Never to the null sender or a
/// bounce address (nothing can read the answer, and a bounce must never be answered), even
/// with `force`; without `force`, not to automatic or list mail (`Auto-Submitted` other than
/// `no`, `Precedence: bulk|junk|list`, `List-Id`) nor the same reply twice to one
/// correspondent in the interval.
pub fn reply_suppressed(c: &ReplyCheck<'_>) -> Option<String> {
    let to = c.envelope_from.trim();
    if to.is_empty() {
        return Some(
            "the message came from the null sender <> (a bounce or notification), which is never answered".into(),
        );
    }
    if thwonk_mail::verp::is_bounce_address(to) {
        return Some(format!("{to} is a bounce address, which is never answered"));
    }
    if c.force {
        return None;
    }
    let local = to.rsplit_once('@').map_or(to, |(l, _)| l);
    if local.eq_ignore_ascii_case("mailer-daemon") {
        return Some(format!("{to} is a mail system, not a person"));
    }
    if let Some(value) = c.auto_submitted {
        // The keyword, before any parameter (`;`) or comment (`(...)`, RFC 3834 section 5).
        let keyword = value
            .split([';', '('])
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if !keyword.eq_ignore_ascii_case("no") {
            return Some(format!(
                "the message is automatic (Auto-Submitted: {keyword})"
            ));
        }
    }
    if let Some(value) = c.precedence {
        let p = value.trim();
        if ["bulk", "junk", "list"]
            .iter()
            .any(|k| p.eq_ignore_ascii_case(k))
        {
            return Some(format!(
                "the message is bulk or list mail (Precedence: {p})"
            ));
        }
    }
    if c.list_id {
        return Some("the message came from a mailing list (List-Id)".into());
    }
    if c.already_answered {
        return Some(format!(
            "{to} was already sent this reply lately (once per runner.auto_reply_interval_secs)"
        ));
    }
    None
}

/// Loose address validation: something with an `@`, and nothing that could break a header
/// (CR, LF, NUL). Full parsing is `thwonk-mail`'s job when it composes the MIME.
pub fn check_address(address: &str) -> ApiResult<String> {
    let address = address.trim();
    if address.is_empty() || !address.contains('@') {
        return Err(ApiError::Refused(format!(
            "not an email address: {address:?}"
        )));
    }
    if address.contains(['\r', '\n', '\0']) {
        return Err(ApiError::Refused(format!(
            "an address may not contain line breaks: {address:?}"
        )));
    }
    Ok(address.to_string())
}

pub fn check_addresses(addresses: Vec<String>) -> ApiResult<Vec<String>> {
    addresses.iter().map(|a| check_address(a)).collect()
}

/// A header value or subject: one line.
pub fn check_one_line(what: &str, value: &str) -> ApiResult<()> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(ApiError::Refused(format!(
            "{what} may not contain line breaks"
        )));
    }
    Ok(())
}

/// `from` may only be the thwonk's own address (compared case-insensitively).
pub fn check_from(from: &str, own_address: &str) -> ApiResult<String> {
    let from = check_address(from)?;
    if !from.eq_ignore_ascii_case(own_address) {
        return Err(ApiError::Refused(format!(
            "from may only be this thwonk's address ({own_address}), not {from}"
        )));
    }
    Ok(own_address.to_string())
}

/// "Re: subject", without stacking "Re: Re:".
pub fn reply_subject(subject: &str) -> String {
    let trimmed = subject.trim_start();
    let already = trimmed
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("re:"));
    if already {
        subject.to_string()
    } else {
        format!("Re: {subject}")
    }
}

/// The `References` of a reply: the original's references, then its Message-ID, each without
/// angle brackets.
pub fn reply_references(existing: Option<&str>, message_id: Option<&str>) -> Vec<String> {
    let mut refs: Vec<String> = existing
        .unwrap_or("")
        .split_whitespace()
        .map(|r| r.trim_start_matches('<').trim_end_matches('>').to_string())
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(id) = message_id.filter(|id| !id.is_empty())
        && !refs.iter().any(|r| r == id)
    {
        refs.push(id.to_string());
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_an_at_and_no_line_breaks() {
        assert_eq!(check_address(" a@b.c ").unwrap(), "a@b.c");
        assert!(check_address("nobody").is_err());
        assert!(check_address("a@b.c\r\nBcc: x@y.z").is_err());
        assert!(check_address("").is_err());
    }

    #[test]
    fn from_must_be_the_thwonks_own_address() {
        assert_eq!(
            check_from("List@Example.org", "list@example.org").unwrap(),
            "list@example.org"
        );
        assert!(check_from("other@example.org", "list@example.org").is_err());
    }

    #[test]
    fn replies_follow_rfc_3834() {
        let person = ReplyCheck {
            envelope_from: "ann@example.net",
            ..Default::default()
        };
        assert_eq!(reply_suppressed(&person), None);
        let cases = [
            ReplyCheck {
                envelope_from: "",
                ..person
            },
            ReplyCheck {
                envelope_from: "bounces+ab12@example.org",
                ..person
            },
            ReplyCheck {
                envelope_from: "MAILER-DAEMON@example.net",
                ..person
            },
            ReplyCheck {
                auto_submitted: Some("auto-replied"),
                ..person
            },
            ReplyCheck {
                auto_submitted: Some(" Auto-Generated ; x"),
                ..person
            },
            ReplyCheck {
                precedence: Some("bulk"),
                ..person
            },
            ReplyCheck {
                precedence: Some(" JUNK "),
                ..person
            },
            ReplyCheck {
                precedence: Some("list"),
                ..person
            },
            ReplyCheck {
                list_id: true,
                ..person
            },
            ReplyCheck {
                already_answered: true,
                ..person
            },
        ];
        for c in &cases {
            assert!(reply_suppressed(c).is_some(), "{c:?}");
        }
        for c in [
            ReplyCheck {
                auto_submitted: Some("no"),
                ..person
            },
            ReplyCheck {
                auto_submitted: Some("No (a person)"),
                ..person
            },
            ReplyCheck {
                precedence: Some("first-class"),
                ..person
            },
        ] {
            assert_eq!(reply_suppressed(&c), None, "{c:?}");
        }
        // force overrides all but the null sender and bounce addresses.
        for c in &cases {
            let forced = ReplyCheck { force: true, ..*c };
            let never = c.envelope_from.is_empty() || c.envelope_from.starts_with("bounces+");
            assert_eq!(reply_suppressed(&forced).is_some(), never, "{c:?}");
        }
    }

    #[test]
    fn reply_subject_does_not_stack_re() {
        assert_eq!(reply_subject("hello"), "Re: hello");
        assert_eq!(reply_subject("Re: hello"), "Re: hello");
        assert_eq!(reply_subject("RE: hello"), "RE: hello");
        assert_eq!(reply_subject(""), "Re: ");
        assert_eq!(reply_subject("é"), "Re: é");
    }

    #[test]
    fn references_append_the_message_id_once() {
        assert_eq!(
            reply_references(Some("<a@x> <b@x>"), Some("c@x")),
            vec!["a@x", "b@x", "c@x"]
        );
        assert_eq!(reply_references(None, Some("c@x")), vec!["c@x"]);
        assert_eq!(reply_references(Some("<c@x>"), Some("c@x")), vec!["c@x"]);
        assert!(reply_references(None, None).is_empty());
    }
}
