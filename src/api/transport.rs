//! The wire below [`super::client::ApiClient`]: the shared reqwest client
//! (TLS, timeouts, proxy), a request as it is sent, and a body read with a
//! cap, into a buffer of its own or one from a pool.

use super::error::ApiError;
use crate::buffers::BufferPool;
use bytes::Bytes;
use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;

/// Build the shared reqwest client (rustls, timeouts, no redirects to
/// unchecked hosts). Outbound calls go through the proxy that
/// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` name (lower case too), except to
/// hosts `NO_PROXY` lists, as curl does; loopback is no exception.
pub fn client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    builder(connect_timeout, timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// [`client`] that ignores the proxy variables (the demo's own simulator).
pub fn direct_client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    builder(connect_timeout, timeout)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn builder(connect_timeout: Duration, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("m365-exporter/", env!("CARGO_PKG_VERSION")))
}

/// The request as it goes on the wire. A bodyless POST (`subscriptions/start`)
/// still says `Content-Length: 0`: without it the Management API's IIS front
/// end answers 411 Length Required, and the request never reaches the API.
pub(super) fn request(
    http: &reqwest::Client,
    method: &Method,
    url: &str,
    token: &str,
    json: Option<&[u8]>,
) -> reqwest::RequestBuilder {
    let builder = http
        .request(method.clone(), url)
        .bearer_auth(token)
        .header("Accept", "application/json");
    if let Some(body) = json {
        builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
    } else if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        builder.header(reqwest::header::CONTENT_LENGTH, "0")
    } else {
        builder
    }
}

pub fn transport_message(e: &reqwest::Error) -> String {
    // reqwest's own message includes the URL; a kind word plus the source
    // chain says what went wrong without it.
    let mut msg = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading body failed"
    } else {
        "request failed"
    });
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

pub(super) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
    operation: &'static str,
    pool: Option<&Arc<BufferPool>>,
) -> Result<Bytes, ApiError> {
    if resp.content_length().is_some_and(|n| n as usize > limit) {
        return Err(ApiError::TooLarge { operation, limit });
    }
    // Sized once from Content-Length (capped): growing by doubling would
    // copy and fault in a large blob's pages several times over.
    let size = resp.content_length().map_or(0, |n| n as usize).min(limit);
    let mut buf = match pool {
        Some(p) => p.take(size),
        None => Vec::with_capacity(size),
    };
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::TooLarge { operation, limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => {
                return Ok(match pool {
                    Some(p) => p.bytes(buf),
                    None => Bytes::from(buf),
                })
            }
            Err(e) => {
                return Err(ApiError::Transport {
                    operation,
                    message: transport_message(&e),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What actually reaches the server: a bodyless POST carries
    /// `content-length: 0` (IIS answers 411 otherwise); a GET carries none.
    #[tokio::test]
    async fn bodyless_post_says_content_length_zero() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/start", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut heads = Vec::new();
            for _ in 0..2 {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    n += sock.read(&mut buf[n..]).await.unwrap();
                }
                heads.push(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
                sock.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
            }
            heads
        });
        let http = client(Duration::from_secs(5), Duration::from_secs(5));
        for m in [Method::POST, Method::GET] {
            request(&http, &m, &url, "tok", None).send().await.unwrap();
        }
        let heads = server.await.unwrap();
        assert!(heads[0].starts_with("post "), "{}", heads[0]);
        assert!(
            heads[0].contains("\r\ncontent-length: 0\r\n"),
            "{}",
            heads[0]
        );
        assert!(
            heads[0].contains("authorization: bearer tok"),
            "{}",
            heads[0]
        );
        assert!(!heads[1].contains("content-length"), "{}", heads[1]);
    }
}
