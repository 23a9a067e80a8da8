//! The DATA body: find its end, undo dot-stuffing, and never hold more than the size limit.
//!
//! [`DataReader`] is a byte-level state machine fed whatever arrived; it needs no line
//! buffer, so body lines of any length cost nothing beyond the message itself. That is why
//! there is no separate body line limit: the message size limit is the memory bound.
//!
//! **Line ends.** The message is stored exactly as received, minus the stuffing dots.
//! Which terminator ends the body depends on how the client ended its `DATA` command line
//! ([`LineEnds`]):
//! - `DATA<CRLF>` (every real MTA): only `<CRLF>.<CRLF>` ends the body, and only a dot after
//!   a CRLF is a stuffing dot. A bare `<LF>.<LF>` inside the body is content. Accepting it
//!   as an end would open the door to SMTP smuggling (a relay that passes bare LFs through
//!   would let a sender hide a second, forged transaction inside one message).
//! - `DATA<LF>` (a hand-written client that uses bare LFs throughout): a line holding only a
//!   dot ends the body whatever its line end (`<LF>.<LF>`, `<LF>.<CRLF>`), and a dot after
//!   any LF is a stuffing dot.
//!
//! **Size.** Past `max_size` bytes the reader drops what it has and only looks for the end,
//! so the session can answer 552 at the right moment and go on. The same happens when the
//! body cannot get room under `smtp.max_bytes_in_flight` ([`crate::in_flight`]): the session
//! answers 452 instead.

use crate::in_flight::Reservation;

/// Which line ends delimit the body's lines (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEnds {
    /// Only CRLF: the strict, smuggling-proof reading.
    Crlf,
    /// A bare LF also ends a line.
    BareLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (also the start of the body).
    LineStart,
    /// Inside a line.
    InLine,
    /// Inside a line, just after a CR (strict mode: a LF now ends the line).
    AfterCr,
    /// A dot at the start of a line: a stuffing dot, or the terminator.
    Dot,
    /// A dot and a CR at the start of a line: a LF now ends the body.
    DotCr,
    /// The terminator was seen.
    Done,
}

/// The body was larger than the limit (it was read to its end and dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// The body size that was seen, bytes.
    pub(crate) size: u64,
}

/// Reads one DATA body.
pub(crate) struct DataReader {
    line_ends: LineEnds,
    state: State,
    body: Vec<u8>,
    max_size: u64,
    /// Body bytes seen so far, kept or not.
    size: u64,
    /// Room for the body among every session's ([`crate::in_flight`]); None: unbounded.
    room: Option<Reservation>,
    /// The body could not get room and was dropped.
    out_of_room: bool,
}

impl DataReader {
    pub(crate) fn new(line_ends: LineEnds, max_size: u64) -> DataReader {
        DataReader {
            line_ends,
            state: State::LineStart,
            body: Vec::new(),
            max_size,
            size: 0,
            room: None,
            out_of_room: false,
        }
    }

    /// Hold the body's bytes in `room` as it grows.
    pub(crate) fn with_room(mut self, room: Reservation) -> DataReader {
        self.room = Some(room);
        self
    }

    /// True when the body was dropped for want of room (answer 452, not 552).
    pub(crate) fn out_of_room(&self) -> bool {
        self.out_of_room
    }

    /// The room the body holds: keep it as long as the body's bytes live.
    pub(crate) fn take_room(&mut self) -> Option<Reservation> {
        self.room.take()
    }

    /// True once the terminating dot line was consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Take body bytes from `input`; returns how many were consumed. Stops right after the
    /// terminator: what follows belongs to the next command.
    pub(crate) fn feed(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => return i,
                State::InLine => {
                    // Fast path: copy everything up to the next byte that can end a line.
                    let rest = &input[i..];
                    let stop = match self.line_ends {
                        LineEnds::Crlf => b'\r',
                        LineEnds::BareLf => b'\n',
                    };
                    match rest.iter().position(|&b| b == stop) {
                        Some(p) => {
                            self.keep(&rest[..=p]);
                            i += p + 1;
                            self.state = match self.line_ends {
                                LineEnds::Crlf => State::AfterCr,
                                LineEnds::BareLf => State::LineStart,
                            };
                        }
                        None => {
                            self.keep(rest);
                            i = input.len();
                        }
                    }
                }
                State::AfterCr => {
                    let b = input[i];
                    i += 1;
                    self.keep(&[b]);
                    self.state = if b == b'\n' {
                        State::LineStart
                    } else {
                        self.after(b)
                    };
                }
                State::LineStart => {
                    let b = input[i];
                    i += 1;
                    if b == b'.' {
                        // Held back: either stuffing (dropped) or the terminator.
                        self.state = State::Dot;
                    } else {
                        self.keep(&[b]);
                        self.state = self.after(b);
                    }
                }
                State::Dot => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => self.state = State::DotCr,
                        b'\n' if self.line_ends == LineEnds::BareLf => self.state = State::Done,
                        _ => {
                            // The dot was a stuffing dot: drop it, keep the rest of the line.
                            self.keep(&[b]);
                            self.state = self.after(b);
                        }
                    }
                }
                State::DotCr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.state = State::Done;
                    } else {
                        // ".\r" then something else: a stuffed line that starts with CR.
                        // Keep the CR and look at this byte again as the CR's successor.
                        self.keep(b"\r");
                        self.state = match self.line_ends {
                            LineEnds::Crlf => State::AfterCr,
                            LineEnds::BareLf => State::InLine,
                        };
                    }
                }
            }
        }
        i
    }

    /// The state after a kept byte `b` that is not at a line start.
    fn after(&self, b: u8) -> State {
        match (self.line_ends, b) {
            (LineEnds::Crlf, b'\r') => State::AfterCr,
            (LineEnds::BareLf, b'\n') => State::LineStart,
            _ => State::InLine,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size <= self.max_size && !self.out_of_room {
            let size = self.size;
            if self.room.as_mut().is_none_or(|room| room.cover(size)) {
                self.body.extend_from_slice(bytes);
            } else {
                self.out_of_room = true;
                self.body = Vec::new();
                if let Some(room) = self.room.as_mut() {
                    room.release();
                }
            }
        } else if !self.body.is_empty() {
            // Over the limit: free the memory now rather than at the end of the transfer.
            self.body = Vec::new();
        }
    }

    /// The body, or why there is none. Call once [`DataReader::is_done`].
    pub(crate) fn finish(self) -> Result<Vec<u8>, TooLarge> {
        if self.size > self.max_size {
            Err(TooLarge { size: self.size })
        } else {
            Ok(self.body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` one by one; the body and what was left after the terminator.
    fn read(
        line_ends: LineEnds,
        max: u64,
        chunks: &[&[u8]],
    ) -> (Result<Vec<u8>, TooLarge>, Vec<u8>) {
        let mut r = DataReader::new(line_ends, max);
        let mut rest = Vec::new();
        for chunk in chunks {
            if r.is_done() {
                rest.extend_from_slice(chunk);
                continue;
            }
            let n = r.feed(chunk);
            rest.extend_from_slice(&chunk[n..]);
        }
        assert!(r.is_done(), "no terminator found");
        (r.finish(), rest)
    }

    /// Feed the whole input one byte at a time, to test every state boundary.
    fn read_bytewise(line_ends: LineEnds, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let (body, rest) = read(line_ends, 1 << 20, &chunks);
        (body.unwrap(), rest)
    }

    #[test]
    fn crlf_body_ends_at_crlf_dot_crlf_and_keeps_what_follows() {
        let input = b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n";
        for (body, rest) in [
            {
                let (b, r) = read(LineEnds::Crlf, 1 << 20, &[input]);
                (b.unwrap(), r)
            },
            read_bytewise(LineEnds::Crlf, input),
        ] {
            assert_eq!(body, b"Subject: x\r\n\r\nhi\r\n");
            assert_eq!(rest, b"QUIT\r\n");
        }
    }

    #[test]
    fn stuffing_dots_are_removed() {
        let input = b"..x\r\n.\r\n..\r\na.b\r\n.\r\n";
        let (body, rest) = read_bytewise(LineEnds::Crlf, b"..x\r\n...\r\n..\r\na.b\r\n.\r\n");
        assert_eq!(body, b".x\r\n..\r\n.\r\na.b\r\n");
        assert!(rest.is_empty());
        // A lone dot line ends the body even when more follows.
        let (body, rest) = read_bytewise(LineEnds::Crlf, input);
        assert_eq!(body, b".x\r\n");
        assert_eq!(rest, b"..\r\na.b\r\n.\r\n");
    }

    #[test]
    fn an_empty_body_is_just_the_dot() {
        let (body, _) = read_bytewise(LineEnds::Crlf, b".\r\n");
        assert!(body.is_empty());
    }

    #[test]
    fn strict_mode_treats_bare_lf_dot_lines_as_content() {
        let input = b"a\n.\nMAIL FROM:<x@y>\r\n\r\n.\r\n";
        let (body, rest) = read_bytewise(LineEnds::Crlf, input);
        assert_eq!(body, b"a\n.\nMAIL FROM:<x@y>\r\n\r\n");
        assert!(rest.is_empty());
        let (body, _) = read_bytewise(LineEnds::Crlf, b"a\r.\r\nb\r\n.\r\n");
        assert_eq!(body, b"a\r.\r\nb\r\n");
        let (body, _) = read_bytewise(LineEnds::Crlf, b"a\n.\r\nb\r\n.\r\n");
        assert_eq!(body, b"a\n.\r\nb\r\n");
    }

    #[test]
    fn bare_lf_mode_ends_at_any_dot_line_and_unstuffs_after_lf() {
        let (body, rest) = read_bytewise(LineEnds::BareLf, b"hi\n..x\n.\nQUIT\n");
        assert_eq!(body, b"hi\n.x\n");
        assert_eq!(rest, b"QUIT\n");
        let (body, _) = read_bytewise(LineEnds::BareLf, b"hi\r\n.\r\n");
        assert_eq!(body, b"hi\r\n");
        let (body, _) = read_bytewise(LineEnds::BareLf, b"hi\n.\r\n");
        assert_eq!(body, b"hi\n");
    }

    #[test]
    fn a_stuffed_line_starting_with_cr_keeps_the_cr() {
        let (body, _) = read_bytewise(LineEnds::Crlf, b".\rx\r\n.\r\n");
        assert_eq!(body, b"\rx\r\n");
        let (body, _) = read_bytewise(LineEnds::Crlf, b".\r\r\n.\r\n");
        assert_eq!(body, b"\r\r\n");
    }

    #[test]
    fn long_lines_are_fine() {
        let mut input = vec![b'a'; 200_000];
        input.extend_from_slice(b"\r\n.\r\n");
        let (body, _) = read(LineEnds::Crlf, 1 << 20, &[&input]);
        assert_eq!(body.unwrap().len(), 200_002);
    }

    #[test]
    fn oversized_bodies_are_read_to_the_end_and_dropped() {
        let chunk = vec![b'a'; 1000];
        let mut chunks: Vec<&[u8]> = vec![&chunk; 10];
        chunks.push(b"\r\n.\r\nNOOP\r\n");
        let (body, rest) = read(LineEnds::Crlf, 5000, &chunks);
        assert_eq!(body, Err(TooLarge { size: 10_002 }));
        assert_eq!(rest, b"NOOP\r\n");
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_accepted() {
        let (body, _) = read(LineEnds::Crlf, 5, &[b"abc\r\n.\r\n"]);
        assert_eq!(body.unwrap(), b"abc\r\n");
        let (body, _) = read(LineEnds::Crlf, 4, &[b"abc\r\n.\r\n"]);
        assert_eq!(body, Err(TooLarge { size: 5 }));
    }
}
