//! File reads during a run, served from the store.
//!
//! The sandbox runs on a blocking thread and calls the reader synchronously; the reader
//! enters the async store through the runtime handle. A worker process will later answer the
//! same trait over IPC.

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
