//! Serve a router on a TCP listener, plain or TLS, with the limits a slow
//! or hostile peer must not get around. Reusable by every listener of the
//! process (the main one, the webhook receiver's).
//!
//! - **First request deadline**: from `accept` to the first complete request
//!   header — TLS handshake and HTTP/1-vs-HTTP/2 detection included — within
//!   [`ListenOptions::header_read_timeout`], or the connection is closed. A
//!   peer that sends nothing, half a preface, a whole HTTP/2 preface and no
//!   request, or finishes a handshake and goes quiet, is gone by then.
//! - **Later requests**: an HTTP/1 connection waiting for its next request
//!   is bound by hyper's header-read timeout; HTTP/2 connections are pinged
//!   (closed when a ping goes unanswered); any connection with no request in
//!   flight for [`ListenOptions::idle_timeout`] is closed gracefully.
//! - **Connection cap** ([`Connections`], `--web.max-connections`): at most
//!   that many connections are served. Past it, up to [`RESERVE`] more are
//!   served one request each, answering only the health endpoints
//!   (`/-/healthy`, `/-/ready`) and 503 for anything else, so an
//!   orchestrator can still tell "full" from "dead"; past that a connection
//!   is closed as soon as it is accepted. Every connection is one file
//!   descriptor: the listeners hold at most `max + RESERVE` of them.
//! - **Protocols**: HTTP/2 only where asked: over TLS when ALPN chose `h2`
//!   (`http_server_config.http2`, on by default), on a plain listener only
//!   with [`ListenOptions::h2c`]. Everything else is served HTTP/1 only,
//!   whatever the peer then sends.
//! - **Shutdown**: graceful; in-flight requests finish within
//!   [`ListenOptions::drain_timeout`].

use crate::web::tls::Acceptor;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Connections past the cap that are still served (health endpoints only).
pub const RESERVE: usize = 16;
/// `--web.max-connections` when not given.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The open-connection cap, shared by every listener of the process (one
/// budget of file descriptors).
#[derive(Debug)]
pub struct Connections {
    max: usize,
    normal: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
}

impl Connections {
    pub fn new(max: usize) -> Arc<Connections> {
        let max = max.max(1);
        Arc::new(Connections {
            max,
            normal: Arc::new(Semaphore::new(max)),
            reserve: Arc::new(Semaphore::new(RESERVE)),
        })
    }

    /// Connections open now (both lanes).
    pub fn open(&self) -> usize {
        self.max - self.normal.available_permits() + RESERVE - self.reserve.available_permits()
    }

    fn admit(&self) -> Option<(Lane, OwnedSemaphorePermit)> {
        if let Ok(p) = self.normal.clone().try_acquire_owned() {
            return Some((Lane::Normal, p));
        }
        self.reserve
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| (Lane::HealthOnly, p))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    Normal,
    /// Over the cap: one request, health endpoints only.
    HealthOnly,
}

#[derive(Clone)]
pub struct ListenOptions {
    /// `None`: plain HTTP.
    pub tls: Option<Arc<Acceptor>>,
    /// From accept to the first complete request header (TLS handshake and
    /// protocol detection included); then the header-read timeout of each
    /// later HTTP/1 request.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// HTTP/2 with prior knowledge on a plain listener (h2c): set from the
    /// web configuration, which may change while running. (Over TLS the
    /// [`Acceptor`] says whether ALPN may choose HTTP/2.)
    pub h2c: Arc<AtomicBool>,
    /// HTTP/2 keep-alive: a ping this long after the last frame received …
    pub keepalive_interval: Duration,
    /// … closes the connection when its answer takes longer than this.
    pub keepalive_timeout: Duration,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    pub connections: Arc<Connections>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            h2c: Arc::new(AtomicBool::new(false)),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            connections: Connections::new(DEFAULT_MAX_CONNECTIONS),
        }
    }
}

/// Which protocols a connection is served with.
#[derive(Clone, Copy)]
enum Protocol {
    Http1,
    Http2,
    /// Detected from the first bytes (h2c allowed, or TLS without ALPN
    /// with HTTP/2 on).
    Auto,
}

fn builder(opts: &ListenOptions, protocol: Protocol, lane: Lane) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        // Over the cap: one request, then the connection is closed.
        .keep_alive(lane == Lane::Normal);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(opts.keepalive_interval)
        .keep_alive_timeout(opts.keepalive_timeout)
        .max_concurrent_streams(match lane {
            Lane::Normal => 64,
            Lane::HealthOnly => 1,
        });
    match protocol {
        Protocol::Http1 => b.http1_only(),
        Protocol::Http2 => b.http2_only(),
        Protocol::Auto => b,
    }
}

/// When a connection last did something, shared with its service.
struct Activity {
    since: Instant,
    /// A request's headers were complete (the service was called).
    seen: AtomicBool,
    inflight: AtomicUsize,
    /// Milliseconds after `since` of the last request's end.
    last_ms: AtomicU64,
}

impl Activity {
    fn new(since: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            since,
            seen: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.seen.store(true, Ordering::Release);
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn last(&self) -> Instant {
        self.since + Duration::from_millis(self.last_ms.load(Ordering::Acquire))
    }
}

/// One request being answered; its end is the connection's last activity.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.since.elapsed().as_millis() as u64;
        self.0.last_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn health_path(path: &str) -> bool {
    matches!(path, "/-/healthy" | "/-/ready")
}

fn over_capacity() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            ),
            (axum::http::header::CONNECTION, "close"),
        ],
        "Too many open connections\n",
    )
        .into_response()
}

/// Accept and serve until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Arc::new(Semaphore::new(0));
    let mut count = 0u32;
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off a moment instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let accepted = Instant::now();
        let Some((lane, permit)) = opts.connections.admit() else {
            // Over the cap and its reserve: closed at once, the descriptor freed.
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        count += 1;
        let conn = Conn {
            opts: opts.clone(),
            router: router.clone(),
            lane,
            deadline: accepted + opts.header_read_timeout,
            activity: Activity::new(accepted),
            stop: stop_rx.clone(),
        };
        let open = open.clone();
        tokio::spawn(async move {
            conn.run(tcp).await;
            drop(permit);
            open.add_permits(1);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task gives one permit back when it ends.
    if tokio::time::timeout(opts.drain_timeout, open.acquire_many(count))
        .await
        .is_err()
    {
        tracing::debug!("shutdown: connections still open after the drain timeout");
    }
    Ok(())
}

struct Conn {
    opts: ListenOptions,
    router: Router,
    lane: Lane,
    /// The first request's headers must be complete by then.
    deadline: Instant,
    activity: Arc<Activity>,
    stop: watch::Receiver<bool>,
}

impl Conn {
    async fn run(self, tcp: tokio::net::TcpStream) {
        match self.opts.tls.clone() {
            None => {
                let protocol = match self.opts.h2c.load(Ordering::Relaxed) {
                    true => Protocol::Auto,
                    false => Protocol::Http1,
                };
                self.serve(tcp, protocol).await
            }
            Some(acceptor) => {
                let stream =
                    match tokio::time::timeout_at(self.deadline, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake: deadline passed");
                            return;
                        }
                    };
                // What ALPN chose is what is served: a peer that agreed on
                // http/1.1 and then speaks HTTP/2 is not understood.
                let http2 = acceptor.http2();
                let protocol = match stream.get_ref().1.alpn_protocol() {
                    Some(b"h2") if http2 => Protocol::Http2,
                    Some(_) => Protocol::Http1,
                    None if http2 => Protocol::Auto,
                    None => Protocol::Http1,
                };
                self.serve(stream, protocol).await
            }
        }
    }

    async fn serve<I>(mut self, io: I, protocol: Protocol)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let builder = builder(&self.opts, protocol, self.lane);
        let inner = TowerToHyperService::new(self.router.clone());
        let (activity, lane) = (self.activity.clone(), self.lane);
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let guard = activity.begin();
                let refused = lane == Lane::HealthOnly && !health_path(req.uri().path());
                let call = (!refused).then(|| hyper::service::Service::call(&inner, req));
                async move {
                    let resp = match call {
                        Some(c) => c.await,
                        None => Ok(over_capacity()),
                    };
                    drop(guard);
                    resp
                }
            });
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let idle = self.opts.idle_timeout;
        let mut closing: Option<Instant> = None;
        loop {
            let wake = match closing {
                Some(at) => at + self.opts.drain_timeout,
                None if !self.activity.seen.load(Ordering::Acquire) => self.deadline,
                None if self.activity.inflight.load(Ordering::Acquire) > 0 => Instant::now() + idle,
                None => self.activity.last() + idle,
            };
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tokio::time::sleep_until(wake) => {
                    if closing.is_some() {
                        // Did not finish draining in time.
                        return;
                    }
                    if !self.activity.seen.load(Ordering::Acquire) {
                        // No complete request header by the deadline: closed
                        // without a word (it may not even speak HTTP).
                        tracing::debug!("connection closed: no request before the deadline");
                        return;
                    }
                    let quiet = self.activity.inflight.load(Ordering::Acquire) == 0
                        && self.activity.last() + idle <= Instant::now();
                    if quiet {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now());
                    }
                }
                _ = self.stop.wait_for(|s| *s), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
        }
    }
}
