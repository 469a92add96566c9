//! `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::metrics::Metrics;
use super::sync::Health;

pub const HEALTHZ_PATH: &str = "/healthz";
pub const READYZ_PATH: &str = "/readyz";
pub const METRICS_PATH: &str = "/metrics";

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

pub fn router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(HEALTHZ_PATH, get(healthz))
        .route(READYZ_PATH, get(readyz))
        .route(METRICS_PATH, get(metrics_text))
        .with_state(AppState { health, metrics })
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.live() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "sync loop not running\n")
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    use super::sync::NotReady;
    match s.health.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(NotReady::NeverApplied) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no ruleset applied yet\n".to_string(),
        ),
        Err(NotReady::Failing(n)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the last {n} applies failed; the previous ruleset stays in place\n"),
        ),
    }
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

/// Binds `addr` (failing at start-up if it cannot) and returns the bound address and the server.
pub async fn bind(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SocketAddr, impl std::future::Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--listen): {e}"))?;
    let local = listener.local_addr()?;
    let app = router(health, metrics);
    Ok((local, async move { axum::serve(listener, app).await }))
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    async fn body_text(body: axum::body::Body) -> String {
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    async fn get_path(app: &Router, path: &str) -> (StatusCode, String) {
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        (status, body_text(res.into_body()).await)
    }

    #[tokio::test]
    async fn endpoints_follow_the_sync_loop() {
        let health = Arc::new(Health::default());
        let metrics = Arc::new(Metrics::new());
        let app = router(health.clone(), metrics.clone());

        assert_eq!(
            get_path(&app, HEALTHZ_PATH).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            get_path(&app, READYZ_PATH).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );

        health.set_for_test(true, false);
        assert_eq!(get_path(&app, HEALTHZ_PATH).await.0, StatusCode::OK);
        assert_eq!(
            get_path(&app, READYZ_PATH).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );

        health.set_for_test(true, true);
        assert_eq!(get_path(&app, READYZ_PATH).await.0, StatusCode::OK);

        metrics.apply_failures.inc();
        let (status, text) = get_path(&app, METRICS_PATH).await;
        assert_eq!(status, StatusCode::OK);
        for name in crate::agent::metrics::METRIC_NAMES {
            assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
        }
        assert!(text.contains("policyc_apply_failures_total 1"), "{text}");
        assert!(
            text.contains("policyc_watch_events_total{kind=\"Pod\"} 0"),
            "{text}"
        );
        assert_eq!(get_path(&app, "/nope").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn bind_serves_over_tcp_and_names_the_flag_on_failure() {
        let health = Arc::new(Health::default());
        let metrics = Arc::new(Metrics::new());
        let (addr, server) = bind("127.0.0.1:0".parse().unwrap(), health.clone(), metrics.clone())
            .await
            .unwrap();
        let task = tokio::spawn(server);
        // The port is taken now: a second bind must fail and say which flag.
        let err = bind(addr, health, metrics).await.err().expect("port in use");
        assert!(err.to_string().contains("--listen"), "{err}");

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
        task.abort();
    }
}
