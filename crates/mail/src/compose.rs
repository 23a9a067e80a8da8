//! Compose one outgoing message from a script's send: headers, MIME body, envelope.
//!
//! New messages and replies are built with lettre's message builder (RFC 2047 subjects, line
//! folding, body encodings, multipart boundaries); forwards splice the original bytes (see
//! [`crate::forward`]). Every kind leaves with the thwonk's VERP bounce address as envelope
//! sender (`bounces+TOKEN@{thwonk domain}`, see [`crate::verp`]), so bounces come back to
//! Thwonk, matched to their outbox row, rather than to whoever wrote the original.

use crate::error::ComposeError;
use crate::headers::{append_to_header_block, check_extra_headers, clean_msg_id, write_fields};
use base64::Engine as _;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use thwonk_core::run::{OutgoingAttachment, SendKind, SendRequest};
use thwonk_core::time::system_time;

/// What composing needs besides the send itself.
#[derive(Debug, Clone, Copy)]
pub struct ComposeContext<'a> {
    /// The thwonk's rules address: the envelope sender, the default `From`, and the domain of
    /// every `Message-ID` Thwonk writes.
    pub thwonk_address: &'a str,
    /// The `Date:` of the message, ms since the epoch (the run's time, so a run is
    /// reproducible).
    pub date_ms: i64,
    /// The original raw message, for [`SendKind::Forward`].
    pub original: Option<&'a [u8]>,
    /// The outbox row's bounce token (ASCII letters and digits,
    /// [`thwonk_core::ids::new_token`]): the envelope sender is
    /// `bounces+{bounce_token}@{thwonk domain}`.
    pub bounce_token: &'a str,
    /// The loop marks (`X-Thwonk-Loop` addresses) of the message that triggered the run
    /// ([`crate::loop_mark::inherited`]); new messages and replies carry them after their own
    /// (a forward carries the original's already). Empty for runs no message triggered.
    pub loop_marks: &'a [String],
}

/// A message ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// Envelope sender (MAIL FROM): the thwonk's bounce address, lower case.
    pub mail_from: String,
    /// Envelope recipients (RCPT TO): to + cc + bcc, lower case, first occurrence kept.
    pub rcpt_to: Vec<String>,
    /// The whole RFC 5322 message, CRLF line ends.
    pub raw: Vec<u8>,
    /// The id Thwonk gave the message, without angle brackets (`{send.id}@{thwonk domain}`):
    /// its `Message-ID` for new messages and replies, its `Resent-Message-ID` for forwards.
    pub message_id: String,
}

/// Every check [`compose`] makes on what a script asked for: recipients, `from` and
/// `replyTo` as mailboxes, the extra headers (no reserved field, see [`crate::headers`]) and
/// attachments. The sandbox calls it when the script calls `send`/`reply`/`forward`, so a
/// refusal is an exception the script can catch; [`compose`] calls it again at commit, so
/// the two can never disagree. What it cannot know (the original of a forward, the thwonk's
/// own address) is left to [`compose`].
pub fn check_send(send: &SendRequest) -> Result<(), ComposeError> {
    let to = mailboxes("to", &send.to)?;
    let cc = mailboxes("cc", &send.cc)?;
    let bcc = mailboxes("bcc", &send.bcc)?;
    if envelope_recipients([&to, &cc, &bcc]).is_empty() {
        return Err(ComposeError::NoRecipients);
    }
    match &send.kind {
        SendKind::Forward { .. } => check_extra_headers(&send.headers, &[]),
        SendKind::New | SendKind::Reply { .. } => {
            // A reply writes Auto-Submitted itself.
            let also_reserved: &[&str] = match send.kind {
                SendKind::Reply { .. } => &["auto-submitted"],
                _ => &[],
            };
            check_extra_headers(&send.headers, also_reserved)?;
            if let Some(f) = &send.from {
                mailbox("from", f)?;
            }
            if let Some(r) = &send.reply_to {
                mailbox("replyTo", r)?;
            }
            for a in &send.attachments {
                attachment(a)?;
            }
            Ok(())
        }
    }
}

/// Compose one outgoing message. The runner calls this at commit time, once per send (and a
/// dry run does too, to report what the commit would refuse).
pub fn compose(send: &SendRequest, ctx: &ComposeContext<'_>) -> Result<Composed, ComposeError> {
    check_send(send)?;
    let thwonk: lettre::Address = ctx
        .thwonk_address
        .trim()
        .parse()
        .map_err(|_| ComposeError::BadThwonkAddress(ctx.thwonk_address.to_string()))?;
    if !is_id_left(&send.id) {
        return Err(ComposeError::BadId(send.id.clone()));
    }
    let mail_from = crate::verp::bounce_address(ctx.bounce_token, thwonk.domain());
    if crate::verp::bounce_token(&mail_from).is_none() {
        return Err(ComposeError::BadBounceToken(ctx.bounce_token.to_string()));
    }
    let message_id = format!("{}@{}", send.id, thwonk.domain().to_lowercase());

    let to = mailboxes("to", &send.to)?;
    let cc = mailboxes("cc", &send.cc)?;
    let bcc = mailboxes("bcc", &send.bcc)?;
    let rcpt_to = envelope_recipients([&to, &cc, &bcc]);
    if rcpt_to.is_empty() {
        return Err(ComposeError::NoRecipients);
    }

    let raw = match &send.kind {
        SendKind::New | SendKind::Reply { .. } => {
            build_message(send, ctx, &thwonk, &message_id, &to, &cc)?
        }
        SendKind::Forward { subject_prefix, .. } => {
            let original = ctx.original.ok_or(ComposeError::MissingOriginal)?;
            crate::forward::forward(
                original,
                &crate::forward::Resent {
                    from: thwonk.as_ref(),
                    date_ms: ctx.date_ms,
                    message_id: &message_id,
                    subject_prefix: subject_prefix.as_deref(),
                    extra_headers: &send.headers,
                },
            )?
        }
    };

    // The loop mark names the thwonk (what the ingress compares with its recipients); the
    // envelope sender stays the row's VERP bounce address.
    let inherited = match send.kind {
        SendKind::Forward { .. } => &[][..],
        SendKind::New | SendKind::Reply { .. } => ctx.loop_marks,
    };
    let raw = crate::loop_mark::mark(raw, &thwonk.to_string().to_lowercase(), inherited);
    Ok(Composed {
        mail_from,
        rcpt_to,
        raw,
        message_id,
    })
}

/// A new message or a reply, built with lettre.
fn build_message(
    send: &SendRequest,
    ctx: &ComposeContext<'_>,
    thwonk: &lettre::Address,
    message_id: &str,
    to: &[Mailbox],
    cc: &[Mailbox],
) -> Result<Vec<u8>, ComposeError> {
    // The script's fields passed `check_send` (called by `compose`).
    let reply_fields = match &send.kind {
        SendKind::Reply {
            in_reply_to,
            references,
        } => reply_fields(in_reply_to.as_deref(), references),
        _ => Vec::new(),
    };

    let from = match &send.from {
        // The sandbox has checked that `from` belongs to this thwonk; only the address is used
        // ("display name none"), so a script cannot dress a message up as someone else.
        Some(f) => Mailbox::new(None, mailbox("from", f)?.email),
        None => Mailbox::new(None, thwonk.clone()),
    };
    let mut builder = Message::builder()
        .from(from)
        .message_id(Some(format!("<{message_id}>")))
        .date(system_time(ctx.date_ms))
        .subject(one_line(&send.subject));
    for m in to {
        builder = builder.to(m.clone());
    }
    for m in cc {
        builder = builder.cc(m.clone());
    }
    // Bcc recipients are only in the envelope: no Bcc header is ever written.
    if let Some(r) = &send.reply_to {
        builder = builder.reply_to(mailbox("replyTo", r)?);
    }
    let rcpts: Vec<lettre::Address> = to.iter().chain(cc).map(|m| m.email.clone()).collect();
    // An explicit envelope: lettre would otherwise derive one from To/Cc and refuse a
    // Bcc-only message. The real envelope is `Composed::rcpt_to`; this one is never sent.
    let envelope = lettre::address::Envelope::new(Some(thwonk.clone()), {
        if rcpts.is_empty() {
            vec![thwonk.clone()]
        } else {
            rcpts
        }
    })
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    builder = builder.envelope(envelope);

    let body = body(send)?;
    let single = matches!(body, Body::Single(_));
    let message = builder
        .multipart_or_single(body)
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    let mut formatted = message.formatted();
    if single && formatted.ends_with(b"\r\n\r\n") {
        // lettre ends a single-part body with two CRLFs of its own; at the top level there is
        // no boundary to absorb one, so the reader would see an extra empty line.
        formatted.truncate(formatted.len() - 2);
    }

    // Reply fields and script fields go in as text: lettre keeps one value per header name,
    // and a script may repeat a field.
    let mut fields = reply_fields;
    fields.extend(send.headers.iter().cloned());
    let lines = write_fields(&fields)?;
    Ok(append_to_header_block(&formatted, &lines))
}

/// `In-Reply-To`, `References` and `Auto-Submitted` (RFC 3834 §5: an automatic reply says
/// so, so that other robots do not answer it back).
fn reply_fields(in_reply_to: Option<&str>, references: &[String]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if let Some(id) = in_reply_to.and_then(clean_msg_id) {
        fields.push(("In-Reply-To".to_string(), format!("<{id}>")));
    }
    let refs: Vec<String> = references
        .iter()
        .filter_map(|r| clean_msg_id(r))
        .map(|id| format!("<{id}>"))
        .collect();
    if !refs.is_empty() {
        fields.push(("References".to_string(), refs.join(" ")));
    }
    fields.push(("Auto-Submitted".to_string(), "auto-replied".to_string()));
    fields
}

/// The MIME body: text and/or HTML (alternative when both), then attachments (mixed).
enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

fn body(send: &SendRequest) -> Result<Body, ComposeError> {
    let main = match (&send.text, &send.html) {
        (Some(t), Some(h)) => Body::Multi(MultiPart::alternative_plain_html(t.clone(), h.clone())),
        (None, Some(h)) => Body::Single(SinglePart::html(h.clone())),
        (Some(t), None) => Body::Single(SinglePart::plain(t.clone())),
        (None, None) => Body::Single(SinglePart::plain(String::new())),
    };
    if send.attachments.is_empty() {
        return Ok(main);
    }
    let mut mixed = match main {
        Body::Single(p) => MultiPart::mixed().singlepart(p),
        Body::Multi(p) => MultiPart::mixed().multipart(p),
    };
    for a in &send.attachments {
        mixed = mixed.singlepart(attachment(a)?);
    }
    Ok(Body::Multi(mixed))
}

fn attachment(a: &OutgoingAttachment) -> Result<SinglePart, ComposeError> {
    let bad = |reason: String| ComposeError::BadAttachment {
        filename: a.filename.clone(),
        reason,
    };
    let content_type = ContentType::parse(&a.content_type)
        .map_err(|_| bad(format!("{:?} is not a MIME content type", a.content_type)))?;
    // Scripts produce base64 in many shapes (line-wrapped, with spaces): ignore white space.
    let compact: Vec<u8> = a
        .content_base64
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| bad(format!("content is not valid base64: {e}")))?;
    let filename = one_line(&a.filename);
    Ok(Attachment::new(filename).body(content, content_type))
}

trait MultipartOrSingle {
    fn multipart_or_single(self, body: Body) -> Result<Message, lettre::error::Error>;
}

impl MultipartOrSingle for lettre::message::MessageBuilder {
    fn multipart_or_single(self, body: Body) -> Result<Message, lettre::error::Error> {
        match body {
            Body::Single(p) => self.singlepart(p),
            Body::Multi(p) => self.multipart(p),
        }
    }
}

/// Parse each address of a field (`a@b` or `Name <a@b>`).
fn mailboxes(field: &'static str, list: &[String]) -> Result<Vec<Mailbox>, ComposeError> {
    list.iter().map(|a| mailbox(field, a)).collect()
}

fn mailbox(field: &'static str, s: &str) -> Result<Mailbox, ComposeError> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|_| ComposeError::BadAddress {
            field,
            address: s.to_string(),
        })
}

/// to + cc + bcc as envelope recipients: lower case, each once, in first-seen order.
fn envelope_recipients(fields: [&Vec<Mailbox>; 3]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in fields.into_iter().flatten() {
        let a = m.email.to_string().to_lowercase();
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The left part of a Message-ID we write: dot-atom text (RFC 5322 §3.6.4). Send ids are
/// `{run_id}.{n}`, which always qualifies; anything else is a bug upstream, refused here.
fn is_id_left(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
}

/// A header text on one line: a subject or file name with line breaks from a script would
/// otherwise be encoded with the breaks inside.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
