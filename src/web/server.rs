//! HTTP: `/metrics`, `/probe?target=`, `/-/healthy`, `/-/ready`, and the
//! status page at `/`. A scrape never calls Microsoft: it renders the
//! collectors' latest outcomes.

use crate::collect::Store;
use crate::metrics::Encoding;
use crate::web::basic_auth::Verdict;
use crate::web::listener::ListenOptions;
use crate::web::live_config::LiveWebConfig;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
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
    pub reloader: Arc<crate::config::reload::Reloader>,
    /// `--web.enable-lifecycle`: `POST /-/reload` is served.
    pub lifecycle: bool,
    /// `--web.config.file` as it is now (basic auth, headers).
    pub web: Arc<LiveWebConfig>,
}

/// Longest `/probe?target=` accepted (tenant names are short).
const MAX_TARGET_LEN: usize = 128;

/// Paths the concurrency limit never sheds: an orchestrator must be able to
/// tell "busy" from "dead".
fn never_shed(path: &str) -> bool {
    matches!(path, "/-/healthy" | "/-/ready")
}

/// The routes alone (no limit, no authentication): see [`app`].
pub fn router(state: AppState) -> Router {
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
        .with_state(state)
}

/// The main listener's routes as served: the concurrency limit first (so a
/// flood of bad passwords is shed before any bcrypt work), then basic auth
/// and the configured headers, then the routes.
pub fn app(state: AppState, max_requests: usize) -> Router {
    app_with_limit(state, Arc::new(Semaphore::new(max_requests.max(1))))
}

/// [`app`] with the concurrency limit given (tests exhaust it).
pub fn app_with_limit(state: AppState, limit: Arc<Semaphore>) -> Router {
    let web = state.web.clone();
    limited(secured(router(state), web), limit)
}

fn limited(router: Router, limit: Arc<Semaphore>) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let limit = limit.clone();
        async move {
            if never_shed(req.uri().path()) {
                return next.run(req).await;
            }
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
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    exposition(&s, None, &headers)
}

async fn probe(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match q.get("target") {
        Some(t) if s.store.has_tenant(t) => exposition(&s, Some(t), &headers),
        Some(t) if t.len() > MAX_TARGET_LEN => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, TEXT)],
            format!("target longer than {MAX_TARGET_LEN} bytes: not a configured tenant name\n"),
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

/// A metrics body, gzip when the client accepts it (Prometheus always does).
fn exposition(s: &AppState, only: Option<&str>, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let encoding = Encoding::negotiate(accept);
    let body = s.store.scrape(only, encoding);
    let mut r = ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response();
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if encoding == Encoding::Gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
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

/// A request a browser sent on behalf of another site (a form posted
/// cross-site): its `Sec-Fetch-Site` says so, or, from older browsers, its
/// `Origin` names another host than the one asked.
fn cross_site(headers: &HeaderMap) -> bool {
    let value = |h| headers.get(h).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = value(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    match (value(header::ORIGIN), value(header::HOST)) {
        (None, _) => false,
        (Some(origin), host) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h);
            origin_host.is_none() || origin_host != host
        }
    }
}

fn refused(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body).into_response()
}

/// `POST /-/reload` (with `--web.enable-lifecycle`, as Prometheus): 200
/// once applied, 500 when refused, with the reason in the log only (it may
/// quote the files).
async fn reload(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !s.lifecycle {
        return refused(
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled (--web.enable-lifecycle).\n",
        );
    }
    if cross_site(&headers) {
        tracing::warn!("POST /-/reload refused: a cross-site request");
        return refused(StatusCode::FORBIDDEN, "Cross-site requests are refused.\n");
    }
    match s.reloader.reload().await {
        Ok(_) => ([(header::CONTENT_TYPE, TEXT)], "Reloaded\n").into_response(),
        // Reloader::reload logged why.
        Err(_) => refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to reload config; the reason is in the exporter's log\n",
        ),
    }
}

/// Status page: see [`crate::web::status_page`].
async fn index(State(s): State<AppState>) -> Html<String> {
    Html(crate::web::status_page::render(
        &s.store,
        &s.telemetry_path,
        crate::timefmt::now_unix(),
    ))
}

/// Basic auth and the configured response headers around `router`
/// (`--web.config.file`, as it is at each request); every path is
/// protected, as in exporter-toolkit.
pub fn secured(router: Router, web: Arc<LiveWebConfig>) -> Router {
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let web = web.current();
        async move {
            let mut resp = match &web.auth {
                None => next.run(req).await,
                Some(auth) => match auth.check(req.headers()).await {
                    Verdict::Allowed => next.run(req).await,
                    Verdict::Denied => crate::web::basic_auth::unauthorized(),
                    Verdict::Busy => crate::web::basic_auth::busy(),
                },
            };
            for (k, v) in &web.headers {
                resp.headers_mut().insert(k.clone(), v.clone());
            }
            resp
        }
    }))
}

/// Serve until `shutdown` resolves; in-flight requests finish.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    max_requests: usize,
    opts: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    crate::web::listener::serve(listener, app(state, max_requests), opts, shutdown)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{build, RuntimeOptions, Store};
    use tower::ServiceExt;

    fn state() -> AppState {
        let config = crate::config::Config::parse(
            "tenants:\n  - name: contoso\n    tenant_id: 8f3c2a1e-1111-2222-3333-444455556666\n    client_id: 0c1d2e3f-1111-2222-3333-444455556666\n    client_secret: x\n    endpoints: {login: \"http://127.0.0.1:1\", graph: \"http://127.0.0.1:1\"}\n",
            "t.yml",
        )
        .unwrap();
        let live = Arc::new(crate::metrics::Live::new());
        // Not reloaded here: the fleet only has to exist.
        let fleet = Arc::new(crate::collect::fleet::Fleet::new(
            live.clone(),
            RuntimeOptions::default(),
        ));
        let opts = RuntimeOptions::default();
        let contoso = build::tenant(&config.tenants[0], &build::http_client(&opts), &live, &opts);
        AppState {
            store: Arc::new(Store::new(vec![Arc::new(contoso.runtime)], live)),
            telemetry_path: "/metrics".into(),
            reloader: Arc::new(crate::config::reload::Reloader::new(
                crate::config::ConfigSource::Fixed(config),
                None,
                fleet,
            )),
            lifecycle: false,
            web: LiveWebConfig::fixed(Default::default()),
        }
    }

    async fn get(r: &Router, path: &str) -> (StatusCode, String) {
        let resp = r
            .clone()
            .oneshot(Request::get(path).body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_endpoints_are_never_shed() {
        let limit = Arc::new(Semaphore::new(2));
        let r = app_with_limit(state(), limit.clone());
        let _held = limit.clone().try_acquire_many_owned(2).unwrap();
        let (s, b) = get(&r, "/metrics").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(b.starts_with("Too many"), "{b}");
        assert_eq!(get(&r, "/-/healthy").await.0, StatusCode::OK);
        // Not ready (nothing refreshed), but answered, not shed.
        let (s, b) = get(&r, "/-/ready").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(b.starts_with("Not ready"), "{b}");
    }

    /// The request limit comes before authentication: a shed request
    /// costs no bcrypt comparison.
    #[tokio::test]
    async fn the_request_limit_sheds_before_any_password_check() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let web = crate::web::web_config::WebConfig {
            basic_auth_users: [("prom".to_string(), hash)].into(),
            ..Default::default()
        };
        let mut st = state();
        st.web = LiveWebConfig::fixed(web);
        let live = st.web.clone();
        let limit = Arc::new(Semaphore::new(1));
        let r = app_with_limit(st, limit.clone());
        let _held = limit.clone().try_acquire_owned().unwrap();
        let req = Request::get("/metrics")
            .header(header::AUTHORIZATION, "Basic cHJvbTp3cm9uZw==")
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = r.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(live.bcrypt().peak(), 0, "no comparison ran");
    }

    #[tokio::test]
    async fn probe_target_is_bounded() {
        let r = app(state(), 4);
        let long = "a".repeat(10_000);
        let (s, b) = get(&r, &format!("/probe?target={long}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.len() < 200, "{}", b.len());
        assert_eq!(get(&r, "/probe?target=contoso").await.0, StatusCode::OK);
    }
}
