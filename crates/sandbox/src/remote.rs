//! File reads across threads: the script thread asks, the calling thread answers.
//!
//! [`crate::run`] runs the engine on its own thread (big stack, panics contained), while the
//! runner's [`VfsReader`] is a borrowed, non-`Send` object that must stay on the calling
//! thread. So the script side holds a [`RemoteReader`] that sends each read over a channel,
//! and the calling thread [`serve`]s them until the script reports its outcome — the same
//! shape the frames between a worker and its parent have ([`crate::worker`]).

use std::sync::mpsc::{Receiver, Sender};

use thwonk_core::run::{FileInfo, RunOutcome, StoredFeedItem, VfsReader};

/// What the script thread sends to the calling thread.
pub enum ToCaller {
    Read(String),
    List(String),
    Feed(String, usize),
    /// The run is over; no more reads will come.
    Finished(Box<RunOutcome>),
}

/// Answers to `Read` and `List`.
pub enum FromCaller {
    Read(Result<Option<Vec<u8>>, String>),
    List(Result<Vec<FileInfo>, String>),
    Feed(Result<Vec<StoredFeedItem>, String>),
}

/// The script thread's reader: every call is a round trip to the calling thread.
pub struct RemoteReader {
    pub requests: Sender<ToCaller>,
    pub answers: Receiver<FromCaller>,
}

const GONE: &str = "the file reader is gone";

impl VfsReader for RemoteReader {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.requests
            .send(ToCaller::Read(path.to_string()))
            .map_err(|_| GONE.to_string())?;
        match self.answers.recv() {
            Ok(FromCaller::Read(r)) => r,
            _ => Err(GONE.to_string()),
        }
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String> {
        self.requests
            .send(ToCaller::List(prefix.to_string()))
            .map_err(|_| GONE.to_string())?;
        match self.answers.recv() {
            Ok(FromCaller::List(r)) => r,
            _ => Err(GONE.to_string()),
        }
    }

    fn feed_items(&mut self, feed: &str, limit: usize) -> Result<Vec<StoredFeedItem>, String> {
        self.requests
            .send(ToCaller::Feed(feed.to_string(), limit))
            .map_err(|_| GONE.to_string())?;
        match self.answers.recv() {
            Ok(FromCaller::Feed(r)) => r,
            _ => Err(GONE.to_string()),
        }
    }
}

/// Answers the script thread's reads until it finishes; returns its outcome, or `None` if the
/// script thread hung up without one (it panicked).
pub fn serve(
    reader: &mut dyn VfsReader,
    requests: Receiver<ToCaller>,
    answers: Sender<FromCaller>,
) -> Option<RunOutcome> {
    for request in requests {
        let answer = match request {
            ToCaller::Read(path) => FromCaller::Read(reader.read(&path)),
            ToCaller::List(prefix) => FromCaller::List(reader.list(&prefix)),
            ToCaller::Feed(feed, limit) => FromCaller::Feed(reader.feed_items(&feed, limit)),
            ToCaller::Finished(outcome) => return Some(*outcome),
        };
        if answers.send(answer).is_err() {
            return None;
        }
    }
    None
}
