//! The management commands' way through a running daemon: its admin socket
//! (`{data_dir}/admin.sock`, the HTTP API trusted as admin). Used when a daemon answers
//! there; otherwise [`crate::manage`] goes to the database directly. Each call answers the
//! API's own view type (`thwonk_control::views`), which `manage` prints the same way as
//! what it reads from the database.

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use thwonk_api::client::{AdminClient, Response, encode};
use thwonk_control::views::{
    DeployView, FeedItemsView, FileListView, FileWrittenView, InvokeView, RunListView,
    ThwonkListView, ThwonkView, VersionListView,
};
use thwonk_core::Config;

/// A client when a daemon answers on the admin socket.
pub async fn client(config: &Config) -> Option<AdminClient> {
    AdminClient::connect(&config.data_dir).await
}

async fn call(c: &AdminClient, method: &str, path: &str, body: &[u8]) -> Result<Response> {
    c.request(method, path, body)
        .await
        .context("the daemon's admin socket did not answer")
}

/// A successful answer's body as `T`, or the API's error message.
fn ok_view<T: DeserializeOwned>(r: Response) -> Result<T> {
    if !(200..300).contains(&r.status) {
        bail!("{}", r.error_message());
    }
    serde_json::from_slice(&r.body).context("the daemon's answer is not what this CLI expects")
}

fn thwonk_path(address: &str) -> String {
    format!("/v1/thwonks/{}", encode(address, false))
}

/// Deploy `source`: the deploy, or (`Err` inside) why the script was refused.
pub async fn deploy(
    c: &AdminClient,
    address: &str,
    source: &[u8],
) -> Result<Result<DeployView, String>> {
    let path = format!("{}/script", thwonk_path(address));
    let r = call(c, "PUT", &path, source).await?;
    if r.status == 422 {
        return Ok(Err(r.error_message()));
    }
    Ok(Ok(ok_view(r)?))
}

pub async fn list(c: &AdminClient) -> Result<ThwonkListView> {
    ok_view(call(c, "GET", "/v1/thwonks", b"").await?)
}

pub async fn runs(c: &AdminClient, address: &str, limit: i64) -> Result<RunListView> {
    let path = format!("{}/runs?limit={limit}", thwonk_path(address));
    ok_view(call(c, "GET", &path, b"").await?)
}

pub async fn versions(c: &AdminClient, address: &str) -> Result<VersionListView> {
    let path = format!("{}/versions", thwonk_path(address));
    ok_view(call(c, "GET", &path, b"").await?)
}

pub async fn rollback(c: &AdminClient, address: &str, version: i64) -> Result<ThwonkView> {
    let path = format!("{}/rollback", thwonk_path(address));
    let body = serde_json::json!({ "version": version }).to_string();
    ok_view(call(c, "POST", &path, body.as_bytes()).await?)
}

/// `enable` or `disable`.
pub async fn set_status(c: &AdminClient, address: &str, action: &str) -> Result<ThwonkView> {
    let path = format!("{}/{action}", thwonk_path(address));
    ok_view(call(c, "POST", &path, b"").await?)
}

pub async fn delete(c: &AdminClient, address: &str) -> Result<()> {
    let r = call(c, "DELETE", &thwonk_path(address), b"").await?;
    if r.status != 204 {
        bail!("{}", r.error_message());
    }
    Ok(())
}

pub async fn invoke(c: &AdminClient, address: &str, body: &[u8]) -> Result<InvokeView> {
    let path = format!("{}/invoke", thwonk_path(address));
    ok_view(call(c, "POST", &path, body).await?)
}

fn feed_path(address: &str, name: &str) -> String {
    format!("{}/feeds/{}", thwonk_path(address), encode(name, false))
}

pub async fn feed(c: &AdminClient, address: &str, name: &str) -> Result<FeedItemsView> {
    ok_view(call(c, "GET", &feed_path(address, name), b"").await?)
}

/// The feed's changes as they happen.
pub async fn feed_events(
    c: &AdminClient,
    address: &str,
    name: &str,
) -> Result<thwonk_api::client::EventStream> {
    let events = c
        .events(&format!("{}/events", feed_path(address, name)))
        .await
        .context("the daemon's admin socket did not answer")?;
    if events.status != 200 {
        let r = Response {
            status: events.status,
            headers: Vec::new(),
            body: events.body.clone(),
        };
        bail!("{}", r.error_message());
    }
    Ok(events)
}

/// A file's path in the URL, as given: the API applies the one rule (a leading `/` is
/// dropped, `//` refused). A leading `/` goes as `%2F`, so the URL has no `//` in it.
fn file_path(address: &str, path: &str) -> String {
    let encoded = match path.strip_prefix('/') {
        Some(rest) => format!("%2F{}", encode(rest, true)),
        None => encode(path, true),
    };
    format!("{}/files/{encoded}", thwonk_path(address))
}

pub async fn list_files(
    c: &AdminClient,
    address: &str,
    prefix: Option<&str>,
) -> Result<FileListView> {
    let base = format!("{}/files", thwonk_path(address));
    let path = match prefix {
        Some(p) => format!("{base}?prefix={}", encode(p, true)),
        None => base,
    };
    ok_view(call(c, "GET", &path, b"").await?)
}

pub async fn read_file(c: &AdminClient, address: &str, path: &str) -> Result<Vec<u8>> {
    let r = call(c, "GET", &file_path(address, path), b"").await?;
    if r.status != 200 {
        bail!("{}", r.error_message());
    }
    Ok(r.body)
}

pub async fn put_file(
    c: &AdminClient,
    address: &str,
    path: &str,
    bytes: &[u8],
) -> Result<FileWrittenView> {
    ok_view(call(c, "PUT", &file_path(address, path), bytes).await?)
}

pub async fn delete_file(c: &AdminClient, address: &str, path: &str) -> Result<()> {
    let r = call(c, "DELETE", &file_path(address, path), b"").await?;
    if r.status != 204 {
        bail!("{}", r.error_message());
    }
    Ok(())
}
