//! `--web.config.file` end to end over real sockets: HTTPS with the
//! configured certificate, plain HTTP refused, basic auth, mutual TLS,
//! certificate rotation without restart, slow and half-open clients, and a
//! bad file exiting 2 with the key named.

mod support;

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::Config;
use m365_exporter::web::web_config::WebConfig;
use rcgen::ExtendedKeyUsagePurpose;
use std::time::{Duration, Instant};
use support::tls::{client, start, Ca, Files, TLS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Status of a GET through a fresh client (a new handshake) trusting `ca`;
/// `None` when the connection fails.
async fn status_with(ca: &str, url: &str) -> Option<u16> {
    client(ca, None)
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn https_with_the_configured_certificate_and_plain_http_refused() {
    let ca = Ca::new("ca1");
    let f = Files::new();
    f.server_cert(&ca);
    let web = f.write(
        "web.yml",
        &format!("{TLS}http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"),
    );
    let r = start(Some(&web), Duration::from_secs(10)).await;
    assert!(r.url().starts_with("https://"));
    let resp = client(&ca.pem(), None)
        .get(format!("{}/metrics", r.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("m365_exporter_build_info"));
    // The same port over plain HTTP: 400 (as docs/security.md promises),
    // never the metrics, and never a bare connection error.
    for _ in 0..20 {
        let plain = reqwest::Client::new()
            .get(format!("http://{}/metrics", r.addr))
            .send()
            .await
            .expect("plain HTTP on the TLS port is answered");
        assert_eq!(plain.status(), 400);
        assert!(plain.text().await.unwrap().contains("HTTPS server"));
    }
    // A client that does not trust the CA cannot connect.
    let other = Ca::new("other");
    assert!(client(&other.pem(), None)
        .get(format!("{}/metrics", r.url()))
        .send()
        .await
        .is_err());
    r.stop().await.unwrap();
}

#[tokio::test]
async fn basic_auth_none_or_wrong_is_401_right_is_200() {
    let ca = Ca::new("ca1");
    let f = Files::new();
    f.server_cert(&ca);
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let web = f.write(
        "web.yml",
        &format!("{TLS}basic_auth_users:\n  prometheus: '{hash}'\n"),
    );
    let r = start(Some(&web), Duration::from_secs(10)).await;
    let c = client(&ca.pem(), None);
    let url = format!("{}/metrics", r.url());
    let none = c.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    for (user, pass) in [("prometheus", "wrong"), ("nobody", "correct horse")] {
        let resp = c
            .get(&url)
            .basic_auth(user, Some(pass))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{user}");
    }
    let ok = c
        .get(&url)
        .basic_auth("prometheus", Some("correct horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    r.stop().await.unwrap();
}

#[tokio::test]
async fn healthcheck_follows_the_web_config() {
    let ca = Ca::new("ca1");
    let f = Files::new();
    f.server_cert(&ca);
    let hash = bcrypt::hash("pw", 4).unwrap();
    let web = f.write(
        "web.yml",
        &format!("{TLS}basic_auth_users:\n  p: '{hash}'\n"),
    );
    let r = start(Some(&web), Duration::from_secs(10)).await;
    let addr = r.addr.to_string();
    let t = Duration::from_secs(5);
    use m365_exporter::cli::healthcheck::check;
    check(&addr, t, &WebConfig::load(&web).unwrap())
        .await
        .unwrap();
    // Without the web config it asks plain HTTP and gets the 400.
    assert!(check(&addr, t, &WebConfig::default()).await.is_err());
    r.stop().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let ca = Ca::new("ca1");
    let client_ca = Ca::new("clients");
    let f = Files::new();
    f.server_cert(&ca);
    f.write("clients.crt", &client_ca.pem());
    let web = f.write(
        "web.yml",
        &format!(
            "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n"
        ),
    );
    let r = start(Some(&web), Duration::from_secs(10)).await;
    let url = format!("{}/metrics", r.url());
    assert!(
        client(&ca.pem(), None).get(&url).send().await.is_err(),
        "no client certificate"
    );
    let stranger = Ca::new("stranger").leaf(ExtendedKeyUsagePurpose::ClientAuth);
    assert!(
        client(&ca.pem(), Some(stranger))
            .get(&url)
            .send()
            .await
            .is_err(),
        "certificate from another CA"
    );
    let id = client_ca.leaf(ExtendedKeyUsagePurpose::ClientAuth);
    let resp = client(&ca.pem(), Some(id)).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    r.stop().await.unwrap();
}

#[tokio::test]
async fn rotated_certificate_is_served_without_restart() {
    let (ca1, ca2) = (Ca::new("ca1"), Ca::new("ca2"));
    let f = Files::new();
    f.server_cert(&ca1);
    let web = f.write("web.yml", TLS);
    let r = start(Some(&web), Duration::from_secs(10)).await;
    let url = format!("{}/-/healthy", r.url());
    assert_eq!(status_with(&ca1.pem(), &url).await, Some(200));
    assert_eq!(status_with(&ca2.pem(), &url).await, None);
    // Rotate: a certificate from another CA. A half-written state (new
    // cert, old key) must not break serving: the old pair stays in use.
    let (c2, k2) = ca2.leaf(ExtendedKeyUsagePurpose::ServerAuth);
    f.write("server.crt", &c2);
    assert_eq!(status_with(&ca1.pem(), &url).await, Some(200));
    f.write("server.key", &k2);
    assert_eq!(status_with(&ca2.pem(), &url).await, Some(200));
    assert_eq!(status_with(&ca1.pem(), &url).await, None);
    r.stop().await.unwrap();
}

/// Open `n` connections that send `prefix` and then stall.
async fn stall(addr: std::net::SocketAddr, n: usize, prefix: &[u8]) -> Vec<tokio::net::TcpStream> {
    let mut socks = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(prefix).await.unwrap();
        socks.push(s);
    }
    socks
}

/// Wait until the server has closed `s` (read sees EOF or an error).
async fn closed_within(s: &mut tokio::net::TcpStream, d: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

/// Whether the server still holds `s` open (nothing to read, no EOF).
fn still_open(s: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn stalled_and_half_sent_clients_do_not_delay_a_scrape() {
    // Header-read and handshake timeouts far beyond the test: a scrape that
    // waited for the stalled connections could only be answered after the
    // server had dropped them.
    let long = Duration::from_secs(120);
    // TLS: 60 connections that never finish (or start) a handshake.
    let ca = Ca::new("ca1");
    let f = Files::new();
    f.server_cert(&ca);
    let web = f.write("web.yml", TLS);
    let tls = start(Some(&web), long).await;
    let mut tls_socks = stall(tls.addr, 30, b"").await;
    tls_socks.extend(stall(tls.addr, 30, &[0x16, 0x03, 0x01, 0x00]).await);
    let c = client(&ca.pem(), None);
    let resp = c
        .get(format!("{}/metrics", tls.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    assert!(
        tls_socks.iter().all(still_open),
        "the TLS scrape was answered only once the stalled handshakes were dropped"
    );

    // Plain: 60 requests whose headers never end.
    let plain = start(None, long).await;
    let plain_socks = stall(
        plain.addr,
        60,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    )
    .await;
    let resp = reqwest::get(format!("{}/metrics", plain.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    assert!(
        plain_socks.iter().all(still_open),
        "the plain scrape was answered only once the half-sent requests were dropped"
    );
    tls.stop().await.unwrap();
    plain.stop().await.unwrap();
}

#[tokio::test]
async fn stalled_and_half_sent_clients_are_let_go() {
    // Header-read and handshake timeouts of 2 s.
    let short = Duration::from_secs(2);
    let ca = Ca::new("ca1");
    let f = Files::new();
    f.server_cert(&ca);
    let web = f.write("web.yml", TLS);
    let tls = start(Some(&web), short).await;
    let mut tls_socks = stall(tls.addr, 1, b"").await;
    tls_socks.extend(stall(tls.addr, 1, &[0x16, 0x03, 0x01, 0x00]).await);
    let plain = start(None, short).await;
    let mut plain_socks = stall(
        plain.addr,
        1,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    )
    .await;
    // Generous deadlines: the timeouts are 2 s, the test only waits for
    // the server to close them at all.
    let wait = Duration::from_secs(60);
    assert!(
        closed_within(&mut plain_socks[0], wait).await,
        "half-sent request still open"
    );
    assert!(
        closed_within(&mut tls_socks[0], wait).await,
        "stalled handshake still open"
    );
    assert!(
        closed_within(&mut tls_socks[1], wait).await,
        "partial handshake still open"
    );
    tls.stop().await.unwrap();
    plain.stop().await.unwrap();
}

#[test]
fn bad_web_config_exits_2_naming_the_key() {
    let f = Files::new();
    let cases = [
        ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "tls_server_config.cert_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n", "tls_server_config.min_version"),
        ("basic_auth_users:\n  prom: plaintext-password\n", "basic_auth_users.prom"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file"),
    ];
    for (text, key) in cases {
        let p = f.write("web.yml", text);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
            .args(["--web.listen-address=127.0.0.1:0", "--web.config.file"])
            .arg(&p)
            .env_clear()
            .env("AZURE_TENANT_ID", "8f3c2a1e-1111-2222-3333-444455556666")
            .env("AZURE_CLIENT_ID", "0c1d2e3f-1111-2222-3333-444455556666")
            .env("AZURE_CLIENT_SECRET", "x")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(&format!("{}: {key}: ", p.display())), "{err}");
        assert!(!err.contains("plaintext-password"), "{err}");
    }
}

/// The audit feed's webhook receiver under `--web.config.file`: TLS applies
/// on the main listener and on `--webhook.listen-address` alike, basic auth
/// on neither (Microsoft authenticates with the authId and cannot send it),
/// while `/metrics` on the same main listener still demands basic auth.
#[tokio::test]
async fn webhook_receiver_takes_tls_but_not_basic_auth_on_either_listener() {
    const AUTH_ID: &str = "wh-auth-3b9e61d2c4";
    let ca = Ca::new("ca1");
    let f = Files::new();
    f.server_cert(&ca);
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let web_yml = f.write(
        "web.yml",
        &format!("{TLS}basic_auth_users:\n  prometheus: '{hash}'\n"),
    );
    let config = Config::parse(
        &format!(
            "tenants:\n  - name: contoso\n    tenant_id: 8f3c2a1e-1111-2222-3333-444455556666\n    client_id: 0c1d2e3f-1111-2222-3333-444455556666\n    client_secret: x\n    endpoints: {{login: \"http://127.0.0.1:1\", graph: \"http://127.0.0.1:1\", management: \"http://127.0.0.1:1\"}}\n    activity: {{enabled: true, interval: 1s, webhook: {{address: \"https://exporter.example/webhook/contoso\", auth_id: {AUTH_ID}}}}}\n"
        ),
        "t.yml",
    )
    .unwrap();
    for own_listener in [false, true] {
        let web = WebOptions {
            web_config: WebConfig::load(&web_yml).unwrap(),
            webhook_listen: own_listener.then(|| "127.0.0.1:0".to_string()),
            ..WebOptions::default()
        };
        let r = Running::start(&config, &web, &RuntimeOptions::default())
            .await
            .unwrap();
        let hook_addr = r.webhook_addr.unwrap_or(r.addr);
        assert_eq!(r.webhook_addr.is_some(), own_listener);
        let c = client(&ca.pem(), None);
        let validation = |auth: &'static str| {
            c.post(format!("https://{hook_addr}/webhook/contoso"))
                .header("Webhook-AuthID", auth)
                .header("Webhook-ValidationCode", "v")
                .body(r#"{"validationCode":"v"}"#)
                .send()
        };
        assert_eq!(
            validation(AUTH_ID).await.unwrap().status(),
            200,
            "own listener: {own_listener}: the webhook needs no basic auth"
        );
        assert_eq!(validation("wrong").await.unwrap().status(), 401);
        // Plain HTTP on the webhook's port is refused like on the main one.
        let resp = reqwest::Client::new()
            .post(format!("http://{hook_addr}/webhook/contoso"))
            .header("Webhook-AuthID", AUTH_ID)
            .body(r#"{"validationCode":"v"}"#)
            .send()
            .await
            .expect("plain HTTP on the webhook's TLS port is answered");
        assert_eq!(resp.status(), 400);
        // The rest of the main listener keeps its basic auth.
        let metrics = c.get(format!("{}/metrics", r.url())).send().await.unwrap();
        assert_eq!(metrics.status(), 401);
        r.stop().await.unwrap();
    }
}
