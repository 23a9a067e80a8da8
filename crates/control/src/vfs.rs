//! File reads during a run, served from the store.
//!
//! The worker pool is driven from a blocking thread: when the script in a sandbox worker
//! reads a file, the pool asks this reader synchronously and sends the answer back over the
//! worker's pipe; the reader enters the async store through the runtime handle.

use thwonk_core::run::{FileInfo, StoredFeedItem, VfsReader};
use thwonk_store::{Store, Thwonk};
use thwonk_thoonk::{Feed, Redis};
use tokio::runtime::Handle;

/// Reads one thwonk's files from the store (and its feeds from Redis, when given).
pub struct StoreVfs {
    store: Store,
    thwonk_id: String,
    handle: Handle,
    /// Redis and the thwonk, for `feed(name).items()`; without them a feed reads as empty.
    feeds: Option<(Redis, Thwonk)>,
}

impl StoreVfs {
    /// Must be created on a runtime thread (it captures the current runtime's handle) and
    /// used from a blocking thread.
    pub fn new(store: Store, thwonk_id: String) -> Self {
        StoreVfs {
            store,
            thwonk_id,
            handle: Handle::current(),
            feeds: None,
        }
    }

    /// Serve `feed(name).items()` from the thwonk's Thoonk feeds on `redis`.
    pub fn with_feeds(mut self, redis: Redis, thwonk: &Thwonk) -> Self {
        self.feeds = Some((redis, thwonk.clone()));
        self
    }
}

impl VfsReader for StoreVfs {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.handle
            .block_on(self.store.read_file(&self.thwonk_id, path))
            .map_err(|e| e.to_string())
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<FileInfo>, String> {
        self.handle
            .block_on(self.store.list_files(&self.thwonk_id, prefix))
            .map_err(|e| e.to_string())
    }

    fn feed_items(&mut self, feed: &str, limit: usize) -> Result<Vec<StoredFeedItem>, String> {
        let Some((redis, thwonk)) = &self.feeds else {
            return Ok(Vec::new());
        };
        let feed = Feed::new(redis, &crate::feeds::thoonk_feed_name(thwonk, feed));
        let items = self
            .handle
            .block_on(feed.latest(limit))
            .map_err(|e| e.to_string())?;
        Ok(items
            .into_iter()
            .map(|i| StoredFeedItem {
                id: i.id,
                item: i.item,
            })
            .collect())
    }
}
