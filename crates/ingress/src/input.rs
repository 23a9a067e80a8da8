//! A session's read buffer, and how command lines are cut out of it.
//!
//! One fixed-size buffer per session holds whatever the client sent that is not consumed
//! yet. PIPELINING depends on it: a client may send MAIL, RCPT, RCPT and DATA in one write,
//! and every byte after the first command must wait here for its turn. The buffer never
//! grows: a command line longer than the limit is skipped up to its line feed and answered
//! once, so a client that never sends a line feed costs no more than the buffer.

/// What [`InputBuffer::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed {
    /// A whole command line, its line end (CRLF or a bare LF) included.
    Line(Vec<u8>),
    /// A command line longer than the limit was skipped, up to and including its line feed.
    TooLong,
    /// No whole line is buffered yet: read more.
    NeedMore,
}

/// The not-yet-consumed input of a session: `buf[start..end]`.
pub(crate) struct InputBuffer {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// An over-long command line is being skipped: drop input up to its line feed.
    skipping_long_line: bool,
}

impl InputBuffer {
    pub(crate) fn new(capacity: usize) -> InputBuffer {
        InputBuffer {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            skipping_long_line: false,
        }
    }

    /// The buffered, unconsumed bytes.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drop the first `n` buffered bytes (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read into, after moving the buffered bytes to the front. Empty only
    /// when the whole buffer is unconsumed input, which the readers never allow (a command
    /// line is shorter than the buffer; DATA consumes everything it is given).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Record that `n` bytes were read into [`InputBuffer::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Cut the next command line (at most `max_line` bytes, line end included).
    pub(crate) fn next_line(&mut self, max_line: usize) -> Framed {
        loop {
            let data = self.buffered();
            if self.skipping_long_line {
                return match data.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        self.consume(lf + 1);
                        self.skipping_long_line = false;
                        Framed::TooLong
                    }
                    None => {
                        self.consume(data.len());
                        Framed::NeedMore
                    }
                };
            }
            let window = &data[..data.len().min(max_line)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                let line = window[..=lf].to_vec();
                self.consume(lf + 1);
                return Framed::Line(line);
            }
            if data.len() < max_line {
                return Framed::NeedMore;
            }
            // No line feed within the limit: the line is too long whatever follows.
            self.skipping_long_line = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(input: &mut InputBuffer, bytes: &[u8]) {
        let spare = input.spare();
        spare[..bytes.len()].copy_from_slice(bytes);
        input.filled(bytes.len());
    }

    #[test]
    fn pipelined_lines_come_out_one_by_one_and_keep_the_rest() {
        let mut input = InputBuffer::new(64);
        push(&mut input, b"MAIL FROM:<>\r\nRCPT TO:<a@b>\nDA");
        assert_eq!(
            input.next_line(32),
            Framed::Line(b"MAIL FROM:<>\r\n".to_vec())
        );
        assert_eq!(
            input.next_line(32),
            Framed::Line(b"RCPT TO:<a@b>\n".to_vec())
        );
        assert_eq!(input.next_line(32), Framed::NeedMore);
        push(&mut input, b"TA\r\nhello");
        assert_eq!(input.next_line(32), Framed::Line(b"DATA\r\n".to_vec()));
        assert_eq!(input.buffered(), b"hello");
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_end_and_reported_once() {
        let mut input = InputBuffer::new(16);
        push(&mut input, b"NOOP 0123456789");
        assert_eq!(input.next_line(8), Framed::NeedMore);
        assert!(input.buffered().is_empty(), "skipped bytes are not kept");
        push(&mut input, b"abcdef\r\nQUIT\r\n");
        assert_eq!(input.next_line(8), Framed::TooLong);
        assert_eq!(input.next_line(8), Framed::Line(b"QUIT\r\n".to_vec()));
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut input = InputBuffer::new(16);
        push(&mut input, b"NOOP 12\r\n");
        assert_eq!(input.next_line(9), Framed::Line(b"NOOP 12\r\n".to_vec()));
        push(&mut input, b"NOOP 123\r\n");
        assert_eq!(input.next_line(9), Framed::TooLong);
    }

    #[test]
    fn spare_space_is_reclaimed_after_consumption() {
        let mut input = InputBuffer::new(8);
        push(&mut input, b"ab\ncdefg");
        assert_eq!(input.next_line(8), Framed::Line(b"ab\n".to_vec()));
        assert_eq!(input.spare().len(), 3);
        input.consume(100);
        assert_eq!(input.spare().len(), 8);
    }
}
