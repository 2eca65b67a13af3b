//! `m365-exporter healthcheck`: GET `/-/healthy` on the exporter's own
//! address and exit 0 or 1. The container image has no curl or shell, so
//! this is its `HEALTHCHECK`.

use crate::web::web_config::WebConfig;
use std::time::Duration;

/// The URL of `/-/healthy` for a `--web.listen-address` value: a wildcard
/// address (`:9865`, `0.0.0.0:9865`, `[::]:9865`) is asked on loopback.
pub fn url(listen: &str) -> String {
    url_with_scheme(listen, "http")
}

fn url_with_scheme(listen: &str, scheme: &str) -> String {
    let addr = crate::cli::listen_addr(listen);
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (addr.as_str(), "9865"),
    };
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        h => h,
    };
    format!("{scheme}://{host}:{port}/-/healthy")
}

/// Ok when the exporter answers 200; Err says why not. Never through a
/// proxy: this is a call to the local process. With `--web.config.file`
/// TLS it asks over https (the certificate names the service, not
/// loopback, so it is not verified: the peer is this machine), and with
/// basic auth a 401 proves the process answers just as well.
pub async fn check(listen: &str, timeout: Duration, web: &WebConfig) -> Result<(), String> {
    let url = url_with_scheme(listen, if web.tls.is_some() { "https" } else { "http" });
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .danger_accept_invalid_certs(web.tls.is_some())
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    let auth = !web.basic_auth_users.is_empty();
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if auth && r.status() == reqwest::StatusCode::UNAUTHORIZED => Ok(()),
        Ok(r) => Err(format!("{url}: HTTP {}", r.status().as_u16())),
        Err(e) => Err(format!(
            "{url}: {}",
            crate::api::transport::transport_message(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_asked_on_loopback() {
        assert_eq!(url(":9865"), "http://127.0.0.1:9865/-/healthy");
        assert_eq!(url("0.0.0.0:1"), "http://127.0.0.1:1/-/healthy");
        assert_eq!(url("[::]:2"), "http://[::1]:2/-/healthy");
        assert_eq!(url("localhost:3"), "http://localhost:3/-/healthy");
        assert_eq!(url("10.1.2.3:4"), "http://10.1.2.3:4/-/healthy");
    }

    #[tokio::test]
    async fn answers_ok_or_says_why_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Nothing accepts yet on a closed port: a clear transport error.
        drop(listener);
        let err = check(&addr, Duration::from_secs(5), &WebConfig::default())
            .await
            .unwrap_err();
        assert!(err.contains("/-/healthy"), "{err}");
    }
}
