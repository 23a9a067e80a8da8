//! File reads during a run, served from the store.
//!
//! The worker pool is driven from a blocking thread: when the script in a sandbox worker
//! reads a file, the pool asks this reader synchronously and sends the answer back over the
//! worker's pipe; the reader enters the async store through the runtime handle.

use thwonk_core::run::{FileInfo, VfsReader};
use thwonk_store::Store;
use tokio::runtime::Handle;

/// Reads one thwonk's files from the store.
pub struct StoreVfs {
    store: Store,
    thwonk_id: String,
    handle: Handle,
}

impl StoreVfs {
    /// Must be created on a runtime thread (it captures the current runtime's handle) and
    /// used from a blocking thread.
    pub fn new(store: Store, thwonk_id: String) -> Self {
        StoreVfs {
            store,
            thwonk_id,
            handle: Handle::current(),
        }
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
}
