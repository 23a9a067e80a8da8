//! The admin socket: the same API on a Unix domain socket, `{data_dir}/admin.sock`, mode
//! 0600. Whoever can open it is the daemon's own user, so its requests are admin without a
//! token ([`crate::auth::TrustedAdmin`]). The CLI talks to a running daemon through it.
//!
//! The socket is never world-accessible, not even for an instant: it is bound inside a fresh
//! directory of mode 0700, made 0600, and only then renamed to its public path. A socket
//! file left by a daemon that died is replaced; one that answers belongs to a live daemon,
//! and binding is refused.

use axum::Extension;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};

use crate::ApiState;
use crate::auth::TrustedAdmin;

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// Where the admin socket of a data directory is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

#[derive(Debug, thiserror::Error)]
pub enum AdminSocketError {
    #[error("{0}: another thwonk daemon is serving this data directory")]
    InUse(PathBuf),
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AdminSocketError + '_ {
    move |source| AdminSocketError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Bind the admin socket at `path` (mode 0600).
pub async fn bind(path: &Path) -> Result<UnixListener, AdminSocketError> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(AdminSocketError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io(path))?;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let private = dir.join(format!(".admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(io(&private))?;
    let staged = private.join("s");
    let bound = (|| {
        let listener = UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound.map_err(io(path))
}

/// Serve the API on the admin socket until `state.shutdown`, then remove the socket file.
pub async fn serve(listener: UnixListener, path: PathBuf, state: ApiState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let app = crate::routes::router(state).layer(Extension(TrustedAdmin));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    let _ = std::fs::remove_file(&path);
    served
}
