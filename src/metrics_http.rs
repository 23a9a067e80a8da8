//! `GET /metrics` for processes without the HTTP API (`thwonk ingress|runner|egress`), when
//! `metrics.listen` is set, served by axum (the API's HTTP stack).
//!
//! Scrapers are the only clients, but the port may be reachable by anyone: every answer
//! closes the connection (`Connection: close`), so a scrape holds nothing open, and anything
//! but `GET /metrics` gets 405 (another method) or 404 (another path) with a short body.

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use thwonk_thoonk::Redis;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Serve until `shutdown`.
pub async fn serve(listener: TcpListener, redis: Redis, shutdown: CancellationToken) {
    let app = Router::new()
        .fallback(answer)
        .with_state(redis)
        .layer(axum::middleware::map_response(close));
    let stop = async move { shutdown.cancelled().await };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        debug!(error = %e, "metrics: server failed");
    }
}

/// One connection, one answer: a scrape every few seconds gains nothing from keep-alive.
async fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What a request gets, from its method and path alone.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    BadMethod,
}

fn route(method: &Method, uri: &Uri) -> Route {
    if method != Method::GET {
        return Route::BadMethod;
    }
    match uri.path() {
        "/metrics" => Route::Metrics,
        _ => Route::NotFound,
    }
}

async fn answer(
    axum::extract::State(redis): axum::extract::State<Redis>,
    method: Method,
    uri: Uri,
) -> Response {
    match route(&method, &uri) {
        Route::Metrics => (
            [(header::CONTENT_TYPE, thwonk_core::metrics::CONTENT_TYPE)],
            thwonk_control::metrics::render_all(&redis).await,
        )
            .into_response(),
        Route::NotFound => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "not found\n",
        )
            .into_response(),
        Route::BadMethod => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "text/plain")],
            "only GET\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(route(&Method::GET, &uri("/metrics")), Route::Metrics);
        assert_eq!(route(&Method::GET, &uri("/metrics?x=1")), Route::Metrics);
        assert_eq!(route(&Method::GET, &uri("/")), Route::NotFound);
        assert_eq!(route(&Method::POST, &uri("/metrics")), Route::BadMethod);
        assert_eq!(route(&Method::HEAD, &uri("/metrics")), Route::BadMethod);
    }
}
