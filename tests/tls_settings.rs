//! The `tls_server_config` settings beyond the defaults, each proven in a
//! real handshake with a rustls client over loopback: `min_version` and
//! `max_version` (the version negotiated, and a client outside them
//! refused), `cipher_suites` (the suite negotiated against the client's own
//! preference, and a client with none of them refused), `curve_preferences`
//! (the group negotiated, and a client with none of them refused) and
//! `client_auth_type: VerifyClientCertIfGiven` (no certificate served, one
//! from the CA served, one from another CA refused).

mod support;

use rcgen::ExtendedKeyUsagePurpose;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CipherSuite, NamedGroup, ProtocolVersion, SupportedProtocolVersion};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::tls::{start, Ca, Files, TLS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a client offers: versions, TLS 1.2 suites (None: all), groups
/// (None: all), and a client certificate.
#[derive(Default)]
struct Offer {
    versions: Option<Vec<&'static SupportedProtocolVersion>>,
    suites: Option<Vec<CipherSuite>>,
    groups: Option<Vec<NamedGroup>>,
    identity: Option<(String, String)>,
}

/// What was negotiated, and the status line of `GET /-/healthy` over it.
#[derive(Debug)]
struct Negotiated {
    version: ProtocolVersion,
    suite: CipherSuite,
    group: Option<NamedGroup>,
    status: String,
}

fn client_config(ca: &str, offer: &Offer) -> Arc<rustls::ClientConfig> {
    let mut p: CryptoProvider = rustls::crypto::ring::default_provider();
    if let Some(suites) = &offer.suites {
        // The client's order is the list's: the server's choice shows.
        p.cipher_suites = suites
            .iter()
            .map(|s| {
                *p.cipher_suites
                    .iter()
                    .find(|cs| cs.suite() == *s)
                    .expect("a suite ring implements")
            })
            .collect();
    }
    if let Some(groups) = &offer.groups {
        p.kx_groups.retain(|g| groups.contains(&g.name()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let versions = offer
        .versions
        .clone()
        .unwrap_or_else(|| vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match &offer.identity {
        None => b.with_no_client_auth(),
        Some((cert, key)) => b
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(cfg)
}

/// A handshake with `offer`, then a request over it: Err when either fails
/// (with TLS 1.3 a refused client certificate shows only at the first read).
async fn connect(addr: SocketAddr, ca: &str, offer: &Offer) -> Result<Negotiated, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client_config(ca, offer));
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let work = async {
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (_, conn) = tls.get_ref();
        let version = conn
            .protocol_version()
            .expect("a version after the handshake");
        let suite = conn.negotiated_cipher_suite().expect("a suite").suite();
        let group = conn.negotiated_key_exchange_group().map(|g| g.name());
        tls.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&answer);
        let status = text.lines().next().unwrap_or_default().to_string();
        if status.is_empty() {
            return Err("no answer".to_string());
        }
        Ok(Negotiated {
            version,
            suite,
            group,
            status,
        })
    };
    // A generous bound, only so that a hung server fails the test.
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .map_err(|_| "no answer within 60 s".to_string())?
}

/// An exporter serving the web config `tls_extra` (added to [`TLS`]), and
/// the CA its certificate is from.
async fn serve(tls_extra: &str, files: &Files) -> (m365_exporter::cli::app::Running, Ca) {
    let ca = Ca::new("ca1");
    files.server_cert(&ca);
    let web = files.write("web.yml", &format!("{TLS}{tls_extra}"));
    (start(Some(&web), Duration::from_secs(30)).await, ca)
}

fn served(r: Result<Negotiated, String>) -> Negotiated {
    let n = r.unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(n.status.starts_with("HTTP/1.1 200"), "{n:?}");
    n
}

#[tokio::test]
async fn min_version_tls13_refuses_a_tls12_client() {
    let f = Files::new();
    let (r, ca) = serve("  min_version: TLS13\n", &f).await;
    let n = served(connect(r.addr, &ca.pem(), &Offer::default()).await);
    assert_eq!(n.version, ProtocolVersion::TLSv1_3);
    let tls12 = Offer {
        versions: Some(vec![&rustls::version::TLS12]),
        ..Offer::default()
    };
    let e = connect(r.addr, &ca.pem(), &tls12).await.unwrap_err();
    assert!(e.starts_with("handshake"), "{e}");
    r.stop().await.unwrap();
}

#[tokio::test]
async fn max_version_tls12_negotiates_tls12_and_refuses_a_tls13_client() {
    let f = Files::new();
    let (r, ca) = serve("  max_version: TLS12\n", &f).await;
    let n = served(connect(r.addr, &ca.pem(), &Offer::default()).await);
    assert_eq!(
        n.version,
        ProtocolVersion::TLSv1_2,
        "a client offering both"
    );
    let tls13 = Offer {
        versions: Some(vec![&rustls::version::TLS13]),
        ..Offer::default()
    };
    let e = connect(r.addr, &ca.pem(), &tls13).await.unwrap_err();
    assert!(e.starts_with("handshake"), "{e}");
    r.stop().await.unwrap();
}

#[tokio::test]
async fn cipher_suites_restrict_tls12_to_the_listed_ones() {
    use CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 as AES128,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 as AES256,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 as CHACHA,
    };
    let f = Files::new();
    let (r, ca) = serve(
        "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n",
        &f,
    )
    .await;
    let tls12 = |suites: Vec<CipherSuite>| Offer {
        versions: Some(vec![&rustls::version::TLS12]),
        suites: Some(suites),
        ..Offer::default()
    };
    // The client prefers two others; the listed one is what it gets.
    let n = served(connect(r.addr, &ca.pem(), &tls12(vec![AES128, CHACHA, AES256])).await);
    assert_eq!(n.suite, AES256);
    // Without the listed one: refused. (Control: the same client is
    // served by the default suites.)
    let e = connect(r.addr, &ca.pem(), &tls12(vec![AES128, CHACHA]))
        .await
        .unwrap_err();
    assert!(e.starts_with("handshake"), "{e}");
    r.stop().await.unwrap();
    let g = Files::new();
    let (d, ca) = serve("  max_version: TLS12\n", &g).await;
    let n = served(connect(d.addr, &ca.pem(), &tls12(vec![AES128, CHACHA])).await);
    assert_eq!(n.suite, AES128, "by default the client's first choice");
    d.stop().await.unwrap();
}

#[tokio::test]
async fn curve_preferences_restrict_the_key_exchange() {
    let f = Files::new();
    let (r, ca) = serve("  curve_preferences: [CurveP384]\n", &f).await;
    for versions in [vec![&rustls::version::TLS13], vec![&rustls::version::TLS12]] {
        let v = versions[0].version;
        // The client's first choice (X25519) is not listed: P-384 it is.
        let all = Offer {
            versions: Some(versions.clone()),
            ..Offer::default()
        };
        let n = served(connect(r.addr, &ca.pem(), &all).await);
        assert_eq!(n.group, Some(NamedGroup::secp384r1), "{v:?}");
        let x25519 = Offer {
            versions: Some(versions),
            groups: Some(vec![NamedGroup::X25519]),
            ..Offer::default()
        };
        let e = connect(r.addr, &ca.pem(), &x25519).await.unwrap_err();
        assert!(e.starts_with("handshake"), "{v:?}: {e}");
    }
    r.stop().await.unwrap();
}

#[tokio::test]
async fn verify_client_cert_if_given_serves_without_one_and_refuses_a_stranger() {
    let f = Files::new();
    let clients = Ca::new("clients");
    f.write("clients.crt", &clients.pem());
    let (r, ca) = serve(
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: clients.crt\n",
        &f,
    )
    .await;
    served(connect(r.addr, &ca.pem(), &Offer::default()).await);
    let with = |identity| Offer {
        identity: Some(identity),
        ..Offer::default()
    };
    let mine = clients.leaf(ExtendedKeyUsagePurpose::ClientAuth);
    served(connect(r.addr, &ca.pem(), &with(mine)).await);
    let stranger = Ca::new("stranger").leaf(ExtendedKeyUsagePurpose::ClientAuth);
    let e = connect(r.addr, &ca.pem(), &with(stranger))
        .await
        .unwrap_err();
    assert!(!e.contains("no answer within"), "refused, not hung: {e}");
    r.stop().await.unwrap();
}
