//! The wire between a runner and a sandbox worker: length-prefixed JSON frames on the
//! worker's stdin and stdout.
//!
//! A frame is a u32 big-endian byte count followed by that many bytes of JSON. The count is
//! checked against [`MAX_FRAME_BYTES`] before anything is read, and the body is read as it
//! arrives rather than allocated up front, so a broken (or subverted) worker cannot make the
//! parent allocate gigabytes by sending four bytes.
//!
//! One exchange per job: the parent sends [`ToWorker::Run`] (or `Check`, `Probe`); the worker
//! may ask for files any number of times ([`FromWorker::VfsRead`]/[`FromWorker::VfsList`],
//! each answered by one [`ToWorker::VfsReply`]) and ends with exactly one final frame
//! (`Outcome`, `Checked`, `Probed`). A fresh worker first sends [`FromWorker::Ready`].

use std::borrow::Cow;
use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thwonk_core::run::{FileInfo, RunOutcome, RunRequest, SandboxLimits, StoredFeedItem};

use crate::check::{CheckError, ScriptInfo};
use crate::wall::{ProbeReport, WallReport};

/// The largest frame either side accepts. A request carries the incoming message up to four
/// times (raw, text, html, attachments), each base64 (4/3 of its size whatever bytes it holds,
/// see `MessageView`): 256 MiB leaves room for the largest message the ingress accepts
/// (`smtp.max_message_size`, 25 MiB by default).
pub const MAX_FRAME_BYTES: u32 = 256 * 1024 * 1024;

/// Parent → worker. Borrowed when sent (a request may carry a 25 MiB message: it is
/// serialised in place, never cloned), owned when received.
// One frame exists at a time and is never stored: boxing the request would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker<'a> {
    /// Run a script; the worker answers with `Outcome`.
    Run(Cow<'a, RunRequest>),
    /// The answer to the worker's last `VfsRead` or `VfsList`.
    VfsReply(VfsReply),
    /// Deploy-time check; the worker answers with `Checked`.
    Check {
        source: Cow<'a, str>,
        limits: Cow<'a, SandboxLimits>,
    },
    /// Try what the wall should forbid; the worker answers with `Probed`.
    Probe,
}

/// A file read answered by the parent's `VfsReader`.
#[derive(Debug, Serialize, Deserialize)]
pub enum VfsReply {
    Read(Result<Option<Vec<u8>>, String>),
    List(Result<Vec<FileInfo>, String>),
    Feed(Result<Vec<StoredFeedItem>, String>),
}

/// Worker → parent.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// Sent once, when the wall is up and the worker waits for its first job.
    Ready(WallReport),
    VfsRead {
        path: String,
    },
    VfsList {
        prefix: String,
    },
    /// `feed(name).items()`: the newest `limit` items of the feed.
    FeedItems {
        feed: String,
        limit: usize,
    },
    Outcome(Box<RunOutcome>),
    Checked(Result<ScriptInfo, CheckError>),
    Probed(ProbeReport),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the pipe failed: {0}")]
    Io(#[from] io::Error),
    #[error("the other side closed the pipe")]
    Closed,
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME_BYTES}")]
    TooLarge(u64),
    #[error("a frame is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("an unexpected frame: {0}")]
    Unexpected(String),
}

/// Writes one frame and flushes it.
pub fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let mut bytes = vec![0u8; 4];
    serde_json::to_writer(&mut bytes, message)?;
    let len = bytes.len() - 4;
    if len > MAX_FRAME_BYTES as usize {
        return Err(FrameError::TooLarge(len as u64));
    }
    bytes[..4].copy_from_slice(&(len as u32).to_be_bytes());
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame. A pipe closed before the first byte of a frame is [`FrameError::Closed`].
pub fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        match input.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(prefix);
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(u64::from(len)));
    }
    let mut body = Vec::new();
    input.take(u64::from(len)).read_to_end(&mut body)?;
    if body.len() != len as usize {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut pipe = Vec::new();
        write_frame(
            &mut pipe,
            &FromWorker::VfsRead {
                path: "a.json".into(),
            },
        )
        .unwrap();
        write_frame(&mut pipe, &ToWorker::Probe).unwrap();
        let mut input = &pipe[..];
        let first: FromWorker = read_frame(&mut input).unwrap();
        assert!(matches!(first, FromWorker::VfsRead { path } if path == "a.json"));
        let second: ToWorker = read_frame(&mut input).unwrap();
        assert!(matches!(second, ToWorker::Probe));
        assert!(matches!(
            read_frame::<ToWorker>(&mut input),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_body() {
        let mut input = &(MAX_FRAME_BYTES + 1).to_be_bytes()[..];
        assert!(matches!(
            read_frame::<ToWorker>(&mut input),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn a_truncated_frame_is_an_error_not_a_hang() {
        let mut pipe = Vec::new();
        write_frame(&mut pipe, &ToWorker::Probe).unwrap();
        pipe.pop();
        let mut input = &pipe[..];
        assert!(matches!(
            read_frame::<ToWorker>(&mut input),
            Err(FrameError::Io(_))
        ));
    }
}
