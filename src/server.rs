//! HTTP: `/metrics`, `/probe?target=`, `/-/healthy`, `/-/ready`, and the
//! status page at `/`. A scrape never calls Microsoft: it renders the
//! collectors' latest outcomes.

use crate::collect::Store;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub telemetry_path: String,
    pub reloader: Arc<crate::reload::Reloader>,
}

pub fn router(state: AppState, max_requests: usize) -> Router {
    let limit = Arc::new(Semaphore::new(max_requests.max(1)));
    Router::new()
        .route(&state.telemetry_path, get(metrics))
        .route("/probe", get(probe))
        .route(
            "/-/healthy",
            get(|| async { ([(header::CONTENT_TYPE, TEXT)], "Healthy\n") }),
        )
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/", get(index))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, TEXT)],
                "Not found\n",
            )
        })
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let limit = limit.clone();
            async move {
                // Shed load instead of queueing scrapes behind each other.
                match limit.try_acquire() {
                    Ok(_permit) => next.run(req).await,
                    Err(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::CONTENT_TYPE, TEXT)],
                        "Too many concurrent requests\n",
                    )
                        .into_response(),
                }
            }
        }))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        s.store.render(None),
    )
        .into_response()
}

async fn probe(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    match q.get("target") {
        Some(t) if s.store.has_tenant(t) => (
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            s.store.render(Some(t)),
        )
            .into_response(),
        Some(t) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, TEXT)],
            format!("unknown target {t:?}: not a configured tenant name\n"),
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, TEXT)],
            "missing ?target=TENANT\n",
        )
            .into_response(),
    }
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.store.ready() {
        ([(header::CONTENT_TYPE, TEXT)], "Ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            "Not ready: first refresh still running\n",
        )
            .into_response()
    }
}

/// `POST /-/reload`: 200 once applied, 500 with the reason when refused
/// (as Prometheus answers).
async fn reload(State(s): State<AppState>) -> Response {
    match s.reloader.reload().await {
        Ok(_) => ([(header::CONTENT_TYPE, TEXT)], "Reloaded\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, TEXT)],
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

/// Status page: see [`crate::status_page`].
async fn index(State(s): State<AppState>) -> Html<String> {
    Html(crate::status_page::render(
        &s.store,
        &s.telemetry_path,
        crate::timefmt::now_unix(),
    ))
}

/// Bind and serve until `shutdown` resolves; in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    max_requests: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, max_requests))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
