//! Server-side TLS with rustls for any listener (the metrics endpoint, the
//! webhook receiver): builds the rustls configuration from
//! [`TlsSettings`], re-reads the certificate, key and client CA files when
//! they change (rotation without restart, as exporter-toolkit does), bounds
//! the handshake in time, and answers a plain-HTTP request with 400 instead
//! of serving it.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Who must show a client certificate (Go's `tls.ClientAuthType` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Asked for, not required, verified when given.
    VerifyIfGiven,
    /// Required and verified against `client_ca_file`.
    RequireAndVerify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites by IANA name; empty: rustls' defaults.
    pub cipher_suites: Vec<String>,
    /// Key-exchange groups by Go name (X25519, CurveP256, CurveP384); empty: defaults.
    pub curves: Vec<String>,
}

/// TLS 1.2 suites rustls (ring) implements, by Go/IANA name.
pub const TLS12_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

pub const CURVES: &[&str] = &["X25519", "CurveP256", "CurveP384"];

/// `(key under tls_server_config, reason)`.
pub type TlsError = (&'static str, String);

fn provider(s: &TlsSettings) -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    if !s.cipher_suites.is_empty() {
        // As in Go, the list restricts TLS 1.2; TLS 1.3 suites are always on.
        p.cipher_suites.retain(|cs| {
            cs.version() == &rustls::version::TLS13
                || s.cipher_suites.contains(&format!("{:?}", cs.suite()))
        });
    }
    if !s.curves.is_empty() {
        let wanted: Vec<rustls::NamedGroup> = s
            .curves
            .iter()
            .map(|c| match c.as_str() {
                "X25519" => rustls::NamedGroup::X25519,
                "CurveP256" => rustls::NamedGroup::secp256r1,
                _ => rustls::NamedGroup::secp384r1,
            })
            .collect();
        p.kx_groups.retain(|g| wanted.contains(&g.name()));
    }
    p
}

fn read_certs(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text =
        std::fs::read(path).map_err(|e| (key, format!("cannot read {}: {e}", path.display())))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            (
                key,
                format!("{}: not PEM certificates: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err((key, format!("{}: no PEM certificate in it", path.display())));
    }
    Ok(certs)
}

/// The rustls configuration for `s`, reading the files now.
pub fn server_config(s: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider(s));
    let certs = read_certs(&s.cert_file, "cert_file")?;
    let keytext = std::fs::read(&s.key_file).map_err(|e| {
        (
            "key_file",
            format!("cannot read {}: {e}", s.key_file.display()),
        )
    })?;
    // The error never includes the file's content.
    let key = PrivateKeyDer::from_pem_slice(&keytext).map_err(|_| {
        (
            "key_file",
            format!("{}: no PEM private key in it", s.key_file.display()),
        )
    })?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (s.min_version..=s.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| ("cipher_suites", format!("{e}")))?;
    let builder = match (s.client_auth, &s.client_ca_file) {
        (ClientAuth::NoClientCert, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca, "client_ca_file")? {
                roots
                    .add(c)
                    .map_err(|e| ("client_ca_file", format!("{}: {e}", ca.display())))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = match mode {
                ClientAuth::VerifyIfGiven => v.allow_unauthenticated(),
                _ => v,
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| ("client_ca_file", format!("{}: {e}", ca.display())))?,
            )
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| ("key_file", format!("does not match cert_file: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Digest of the files' contents: changes when one is replaced, whatever
/// the file system's timestamp granularity. A few KB read per handshake.
type Fingerprint = Vec<Option<ring::digest::Digest>>;

fn fingerprint(s: &TlsSettings) -> Fingerprint {
    [
        Some(&s.cert_file),
        Some(&s.key_file),
        s.client_ca_file.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| {
        std::fs::read(p)
            .ok()
            .map(|b| ring::digest::digest(&ring::digest::SHA256, &b))
    })
    .collect()
}

fn same(a: &Fingerprint, b: &Fingerprint) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => x.as_ref() == y.as_ref(),
            (None, None) => true,
            _ => false,
        })
}

/// A TLS acceptor for one or more listeners that picks up rotated files
/// and a changed web configuration.
pub struct Acceptor {
    /// The settings and whether ALPN offers `h2`; replaced by [`Acceptor::update`].
    wanted: Mutex<(TlsSettings, bool)>,
    handshake_timeout: Duration,
    current: Mutex<(Fingerprint, Arc<ServerConfig>)>,
}

impl Acceptor {
    /// Reads the files once now; a failure names the key.
    pub fn new(
        settings: TlsSettings,
        http2: bool,
        handshake_timeout: Duration,
    ) -> Result<Self, TlsError> {
        let fp = fingerprint(&settings);
        let cfg = with_alpn(server_config(&settings)?, http2);
        Ok(Acceptor {
            wanted: Mutex::new((settings, http2)),
            handshake_timeout,
            current: Mutex::new((fp, cfg)),
        })
    }

    /// New settings from a changed web configuration: the next handshake
    /// uses them (or keeps the last good ones when their files cannot be
    /// loaded, logged).
    pub fn update(&self, settings: TlsSettings, http2: bool) {
        let mut w = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if *w == (settings.clone(), http2) {
            return;
        }
        *w = (settings, http2);
        drop(w);
        // Forces a rebuild at the next handshake.
        self.current.lock().unwrap_or_else(|p| p.into_inner()).0 = Vec::new();
    }

    /// Whether HTTP/2 may be served when ALPN chose it.
    pub fn http2(&self) -> bool {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// The configuration for the next handshake: rebuilt when a file
    /// changed; a broken new file keeps the last good one (logged).
    fn config(&self) -> Arc<ServerConfig> {
        let (settings, http2) = self
            .wanted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let fp = fingerprint(&settings);
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if !same(&cur.0, &fp) {
            match server_config(&settings) {
                Ok(c) => {
                    tracing::info!(cert_file = %settings.cert_file.display(), "TLS files changed: reloaded");
                    *cur = (fp, with_alpn(c, http2));
                }
                Err((key, reason)) => {
                    // Keep serving with the last good files; retry on the next change.
                    tracing::warn!(key, error = %reason, "TLS files changed but cannot be loaded: keeping the previous ones");
                    cur.0 = fp;
                }
            }
        }
        cur.1.clone()
    }

    /// Handshake on `tcp` within the handshake timeout. A client that speaks
    /// plain HTTP gets `400` and the connection is closed.
    pub async fn accept(&self, mut tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let work = async {
            let mut first = [0u8; 1];
            let n = tcp.peek(&mut first).await?;
            // 0x16: a TLS handshake record. Anything else is not TLS.
            if n == 1 && first[0] != 0x16 {
                refuse_plain_http(&mut tcp).await;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "plain HTTP on a TLS listener",
                ));
            }
            tokio_rustls::TlsAcceptor::from(self.config())
                .accept(tcp)
                .await
        };
        tokio::time::timeout(self.handshake_timeout, work)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })?
    }
}

/// Answer a plain-HTTP request with 400 and close without a reset: what the
/// client sent is read and thrown away until it closes (64 KiB at most; the
/// handshake timeout bounds the time). Closing with its request unread
/// would send a TCP reset, which can destroy the answer before the client
/// has read it, leaving it a connection error instead of the 400.
async fn refuse_plain_http(tcp: &mut TcpStream) {
    let _ = tcp
        .write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
        .await;
    let _ = tcp.shutdown().await;
    let mut buf = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn with_alpn(cfg: Arc<ServerConfig>, http2: bool) -> Arc<ServerConfig> {
    if http2 {
        return cfg;
    }
    let mut c = (*cfg).clone();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}
