//! Reading commands and bodies from a client, and writing replies back, with the idle
//! timeout and the shutdown signal applied to every wait.
//!
//! Replies are queued and written just before the session next waits for input. So a
//! pipelined batch of commands gets its replies in one write, in order, and a client that
//! waits for each reply still gets it at once. The stream type is generic so a TLS stream
//! can take the TCP stream's place after STARTTLS.

use crate::data::DataReader;
use crate::input::{Framed, InputBuffer};
use crate::limits::Limits;
use crate::reply::Reply;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// How a connection ended, when it was not by QUIT.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("client closed the connection")]
    Closed,
    #[error("client idle for longer than {0:?}")]
    Idle(Duration),
    #[error("server shutting down")]
    Shutdown,
    #[error("DATA took longer than {0:?}")]
    DataTooLong(Duration),
    #[error("DATA slower than {0} bytes/s")]
    DataTooSlow(u64),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// What the client sent when a command was expected.
#[derive(Debug)]
pub(crate) enum CommandLine {
    /// A command line, line end included.
    Line(Vec<u8>),
    /// A line over the command line limit (already skipped).
    TooLong,
}

/// How fast a DATA transfer must go: a total deadline, and a minimum average rate once a
/// grace period has passed. A client trickling a body (slowloris) holds its session no
/// longer than either allows, however often it sends a byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataPace {
    started: Instant,
    deadline: Duration,
    /// Bytes per second; 0: no minimum.
    min_rate: u64,
    grace: Duration,
}

impl DataPace {
    /// The pace of a transfer starting now.
    pub(crate) fn start(limits: &Limits) -> DataPace {
        DataPace {
            started: Instant::now(),
            deadline: limits.data_timeout,
            min_rate: limits.data_min_rate,
            grace: limits.data_rate_grace,
        }
    }

    /// When, after the start, `received` bytes stop being enough: the deadline, or the
    /// moment the average rate falls below the minimum.
    fn limit(&self, received: u64) -> (Duration, ConnectionError) {
        let too_long = (self.deadline, ConnectionError::DataTooLong(self.deadline));
        if self.min_rate == 0 {
            return too_long;
        }
        // received / t >= min_rate holds until t = received / min_rate.
        let enough_until = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        let slow_at = enough_until.max(self.grace);
        if slow_at < self.deadline {
            (slow_at, ConnectionError::DataTooSlow(self.min_rate))
        } else {
            too_long
        }
    }

    /// Err once the transfer is over its deadline or under its rate.
    fn check(&self, received: u64) -> Result<(), ConnectionError> {
        let (at, error) = self.limit(received);
        if self.started.elapsed() >= at {
            Err(error)
        } else {
            Ok(())
        }
    }

    /// How long the next read may wait, and what a wait that long means.
    fn wait(&self, received: u64) -> (Duration, ConnectionError) {
        let (at, error) = self.limit(received);
        (at.saturating_sub(self.started.elapsed()), error)
    }
}

pub(crate) struct Connection<T> {
    stream: T,
    input: InputBuffer,
    /// Replies not written yet.
    output: Vec<u8>,
    idle_timeout: Duration,
    max_command_line: usize,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Connection<T> {
    pub(crate) fn new(stream: T, limits: &Limits) -> Connection<T> {
        Connection {
            stream,
            // A whole command line must always fit, whatever the limits say.
            input: InputBuffer::new(limits.read_buffer.max(limits.max_command_line + 1)),
            output: Vec::new(),
            idle_timeout: limits.idle_timeout,
            max_command_line: limits.max_command_line,
        }
    }

    /// Queue a reply (written before the next wait for input, or by [`Connection::flush`]).
    pub(crate) fn send(&mut self, reply: &Reply) {
        reply.write_to(&mut self.output);
    }

    /// Write the queued replies. A client that takes nothing for the idle timeout is gone.
    pub(crate) async fn flush(&mut self) -> Result<(), ConnectionError> {
        if self.output.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(self.idle_timeout, write)
            .await
            .map_err(|_| ConnectionError::Idle(self.idle_timeout))??;
        self.output.clear();
        Ok(())
    }

    /// The next command line. While waiting for one, a shutdown ends the wait.
    pub(crate) async fn read_command(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<CommandLine, ConnectionError> {
        loop {
            match self.input.next_line(self.max_command_line) {
                Framed::Line(line) => return Ok(CommandLine::Line(line)),
                Framed::TooLong => return Ok(CommandLine::TooLong),
                Framed::NeedMore => self.fill(Some(shutdown)).await?,
            }
        }
    }

    /// Feed the body to `reader` until its terminator, at the `pace` the limits ask for.
    /// Not interrupted by shutdown: a transfer in progress may finish (the server bounds
    /// how long it waits).
    pub(crate) async fn read_data(
        &mut self,
        reader: &mut DataReader,
        pace: DataPace,
    ) -> Result<(), ConnectionError> {
        // What was pipelined behind DATA counts too.
        let mut received = self.input.buffered().len() as u64;
        loop {
            let n = reader.feed(self.input.buffered());
            self.input.consume(n);
            if reader.is_done() {
                return Ok(());
            }
            pace.check(received)?;
            received += self.fill_within(None, Some(pace.wait(received))).await? as u64;
        }
    }

    /// Read and drop `n` bytes (the chunk of a BDAT we do not support).
    pub(crate) async fn discard(&mut self, mut n: u64) -> Result<(), ConnectionError> {
        loop {
            let buffered = self.input.buffered().len();
            let take = usize::try_from(n).unwrap_or(usize::MAX).min(buffered);
            self.input.consume(take);
            n -= take as u64;
            if n == 0 {
                return Ok(());
            }
            self.fill(None).await?;
        }
    }

    /// Write what is queued, then read more input (within the idle timeout, and until the
    /// shutdown if one is given).
    async fn fill(&mut self, shutdown: Option<&CancellationToken>) -> Result<(), ConnectionError> {
        self.fill_within(shutdown, None).await.map(|_| ())
    }

    /// [`Connection::fill`], waiting no longer than `limit` when it is shorter than the idle
    /// timeout (and failing with its error then); how many bytes arrived.
    async fn fill_within(
        &mut self,
        shutdown: Option<&CancellationToken>,
        limit: Option<(Duration, ConnectionError)>,
    ) -> Result<usize, ConnectionError> {
        self.flush().await?;
        let spare = self.input.spare();
        if spare.is_empty() {
            // The readers consume input before asking for more, so this is a bug, not a
            // client's doing; end the session rather than spin.
            return Err(io::Error::other("read buffer full").into());
        }
        let (wait, timed_out) = match limit {
            Some((wait, error)) if wait < self.idle_timeout => (wait, error),
            _ => (self.idle_timeout, ConnectionError::Idle(self.idle_timeout)),
        };
        let read = tokio::time::timeout(wait, self.stream.read(spare));
        let n = match shutdown {
            Some(token) => tokio::select! {
                biased;
                _ = token.cancelled() => return Err(ConnectionError::Shutdown),
                r = read => r,
            },
            None => read.await,
        }
        .map_err(|_| timed_out)??;
        if n == 0 {
            return Err(ConnectionError::Closed);
        }
        self.input.filled(n);
        Ok(n)
    }

    /// The stream, to be replaced by its TLS form after STARTTLS.
    pub(crate) fn stream_mut(&mut self) -> &mut T {
        &mut self.stream
    }

    /// Drop every byte read but not consumed; how many. After STARTTLS, what the client sent
    /// behind the command in plain text must not be read as commands of the TLS session
    /// (the STARTTLS command injection attack, CVE-2011-0411 and its kin).
    pub(crate) fn discard_buffered(&mut self) -> usize {
        let n = self.input.buffered().len();
        self.input.consume(n);
        n
    }

    /// Write what is queued and close our side.
    pub(crate) async fn close(&mut self) -> Result<(), ConnectionError> {
        self.flush().await?;
        tokio::time::timeout(self.idle_timeout, self.stream.shutdown())
            .await
            .map_err(|_| ConnectionError::Idle(self.idle_timeout))??;
        Ok(())
    }
}
