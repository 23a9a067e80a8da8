//! Incoming mail → the `msg` a rule script sees.
//!
//! Best effort by design: mail from the network is often malformed (broken boundaries, 8-bit
//! headers, no headers at all), and a rule script should still run on whatever could be read.
//! Nothing here returns an error or panics; a field that cannot be read is empty or `None`.

use base64::Engine as _;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
use thwonk_core::run::{AttachmentView, Mailbox, MessageView};
use thwonk_core::time::{ms_from_seconds, rfc3339_millis, rfc3339_seconds};

/// Most text parts joined into `msg.text`; the rest are left out (they are still in
/// `msg.raw`). A message of 10,000 tiny parts would otherwise make a 10,000-piece text.
pub const MAX_TEXT_PARTS: usize = 100;

/// Most attachments listed in `msg.attachments` (each is copied and base64-encoded into the
/// view); the rest are left out (still in `msg.raw`).
pub const MAX_ATTACHMENTS: usize = 1000;

/// What the SMTP session knew about the message (everything but its bytes).
#[derive(Debug, Clone, Copy)]
pub struct InboundEnvelope<'a> {
    /// The message's id in this system.
    pub id: &'a str,
    /// MAIL FROM, empty for the null sender.
    pub mail_from: &'a str,
    /// The rules address that received it.
    pub to: &'a str,
    /// The envelope recipients that belong to this thwonk.
    pub recipients: &'a [String],
    /// When the ingress accepted it, ms since the epoch.
    pub received_at_ms: i64,
}

/// Read a raw message into the script's view. Never fails, never panics.
pub fn parse_message(raw: &[u8], envelope: &InboundEnvelope<'_>) -> MessageView {
    let mut view = MessageView {
        id: envelope.id.to_string(),
        from: envelope.mail_from.to_string(),
        to: envelope.to.to_string(),
        recipients: envelope.recipients.to_vec(),
        raw: String::from_utf8_lossy(raw).into_owned(),
        size: raw.len() as u64,
        received_at: rfc3339_millis(envelope.received_at_ms),
        ..MessageView::default()
    };
    // mail-parser is fuzzed, but this is network input in a long-running process: a panic in
    // a third-party parser must cost one message its content, not the runner its loop.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut content = view.clone();
        read_content(raw, &mut content).map(|()| content)
    }));
    let mut view = match parsed {
        Ok(Some(content)) => content,
        // Nothing MIME could be read (empty input, no header block): the bytes are the text.
        _ => {
            view.text = view.raw.clone();
            view
        }
    };
    view.text = script_text(&view.text);
    view
}

/// `msg.text` as scripts compare it: every line end (CRLF, bare CR) becomes `\n`, and blank
/// lines at the end are dropped; the last line keeps its line end if it had one. `msg.raw`
/// keeps the bytes as received.
pub fn script_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let Some(last) = text.rfind(|c: char| !c.is_whitespace()) else {
        return String::new();
    };
    let after = last + text[last..].chars().next().map_or(1, char::len_utf8);
    match text[after..].find('\n') {
        Some(nl) => text[..after + nl + 1].to_string(),
        None => text,
    }
}

/// Fill the header-derived and body-derived fields; `None` when the input is not a message.
fn read_content(raw: &[u8], view: &mut MessageView) -> Option<()> {
    let repaired: Vec<u8>;
    let raw = match missing_separator(raw) {
        Some(pos) => {
            let line_end: &[u8] = if raw[..pos].ends_with(b"\r\n") {
                b"\r\n"
            } else {
                b"\n"
            };
            repaired = [&raw[..pos], line_end, &raw[pos..]].concat();
            &repaired[..]
        }
        None => raw,
    };
    let message = MessageParser::default().parse(raw)?;
    let root = message.raw_message.as_ref();
    let has_headers = message.headers().iter().any(|h| {
        root.get(h.offset_field as usize..h.offset_start as usize)
            .and_then(|n| std::str::from_utf8(n).ok())
            .is_some_and(|n| crate::headers::is_field_name(n.trim_end_matches(':').trim()))
    });
    if !has_headers {
        // Text without a header block: mail-parser reads its first line as a header name.
        return None;
    }

    view.subject = message.subject().unwrap_or_default().to_string();
    if let Some(addr) = message.from().and_then(|a| a.first()) {
        view.sender = Mailbox {
            name: addr.name().unwrap_or_default().to_string(),
            address: addr.address().unwrap_or_default().to_string(),
        };
    }
    view.date = message
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| ms_from_seconds(d.to_timestamp()))
        .map(rfc3339_seconds);
    view.message_id = message
        .message_id()
        .filter(|id| !id.is_empty())
        .map(str::to_string);

    view.headers = message
        .headers()
        .iter()
        .map(|h| {
            let name = root
                .get(h.offset_field as usize..h.offset_start as usize)
                .map(|n| {
                    String::from_utf8_lossy(n)
                        .trim_end_matches(':')
                        .trim()
                        .to_string()
                })
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| h.name.as_str().to_string());
            let value = root
                .get(h.offset_start as usize..h.offset_end as usize)
                .map(decode_unstructured)
                .unwrap_or_default();
            (name, value)
        })
        .collect();

    view.text = (0..message.text_body.len().min(MAX_TEXT_PARTS))
        .filter_map(|i| message.body_text(i))
        .collect::<Vec<_>>()
        .join("\n");
    if view.text.is_empty() {
        // A broken multipart (a wrong closing boundary, say) leaves mail-parser unsure what
        // the body is and files the text under attachments: show it rather than nothing.
        view.text = message
            .attachments()
            .find(|p| p.attachment_name().is_none() && matches!(p.body, PartType::Text(_)))
            .and_then(|p| p.text_contents())
            .unwrap_or_default()
            .to_string();
    }
    // mail-parser renders a text part as HTML when there is no HTML part; the script's `html`
    // is null in that case, so only real HTML parts count.
    let html: Vec<&str> = message
        .html_body
        .iter()
        .take(MAX_TEXT_PARTS)
        .filter_map(|&id| message.parts.get(id as usize))
        .filter_map(|p| match &p.body {
            PartType::Html(h) => Some(h.as_ref()),
            _ => None,
        })
        .collect();
    view.html = (!html.is_empty()).then(|| html.join("\n"));

    view.attachments = message
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| {
            let content = part.contents();
            AttachmentView {
                filename: part.attachment_name().unwrap_or_default().to_string(),
                content_type: part
                    .content_type()
                    .map(|ct| match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_string(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".to_string())
                    .to_ascii_lowercase(),
                size: content.len() as u64,
                content_base64: base64::engine::general_purpose::STANDARD.encode(content),
            }
        })
        .collect();
    Some(())
}

/// Where the body starts when the header block ends without its empty line: the first line
/// that is neither a field nor a continuation, after at least one field. Text sent with no
/// header block at all arrives like this once the ingress has put `Received:` in front, and
/// mail-parser would read the text as one long header name and show no text at all.
fn missing_separator(raw: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut seen_field = false;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| pos + p + 1);
        let line = &raw[pos..end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            return None;
        }
        let continuation = seen_field && matches!(content[0], b' ' | b'\t');
        let field = content
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| {
                std::str::from_utf8(&content[..colon])
                    .is_ok_and(|name| crate::headers::is_field_name(name.trim_end()))
            });
        if !continuation && !field {
            return seen_field.then_some(pos);
        }
        seen_field = true;
        pos = end;
    }
    None
}

/// Decode a raw header value: unfold, decode RFC 2047 encoded words, trim. Used for every
/// header so that `msg.headers` values are text whatever the field's type.
pub(crate) fn decode_unstructured(value: &[u8]) -> String {
    let trimmed = value
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n'))
        .map(|last| &value[..=last])
        .unwrap_or_default();
    // The unstructured parser reads up to the line end that closes a field.
    let mut line = Vec::with_capacity(trimmed.len() + 2);
    line.extend_from_slice(trimmed);
    line.extend_from_slice(b"\r\n");
    match mail_parser::parsers::MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(t) => t.trim().to_string(),
        _ => String::new(),
    }
}
