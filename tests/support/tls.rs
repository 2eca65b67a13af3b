//! Throw-away TLS material made in process with rcgen (an ECDSA P-256 CA and
//! its leaves for 127.0.0.1), the files a `--web.config.file` names, and an
//! exporter started with such a file.

use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::collect::RuntimeOptions;
use m365_exporter::config::Config;
use m365_exporter::web::web_config::WebConfig;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Ca {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// (cert PEM, key PEM) of a leaf for 127.0.0.1.
    pub fn leaf(&self, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "m365-exporter test");
        p.extended_key_usages = vec![purpose];
        let c = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (c.pem(), key.serialize_pem())
    }
}

/// A temporary directory for a web config and the files it names.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `server.crt` and `server.key`: a leaf of `ca` (see [`TLS`]).
    pub fn server_cert(&self, ca: &Ca) {
        let (c, k) = ca.leaf(ExtendedKeyUsagePurpose::ServerAuth);
        self.write("server.crt", &c);
        self.write("server.key", &k);
    }
}

/// The `tls_server_config` of [`Files::server_cert`]'s files.
pub const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

fn config() -> Config {
    // Collectors fail fast against a closed port; the endpoint is what is tested.
    Config::parse(
        "tenants:\n  - name: contoso\n    tenant_id: 8f3c2a1e-1111-2222-3333-444455556666\n    client_id: 0c1d2e3f-1111-2222-3333-444455556666\n    client_secret: x\n    endpoints: {login: \"http://127.0.0.1:1\", graph: \"http://127.0.0.1:1\"}\n",
        "t.yml",
    )
    .unwrap()
}

/// An exporter with the web config at `web_yml` (none: plain HTTP), header
/// read and TLS handshake timeouts of `timeout`.
pub async fn start(web_yml: Option<&Path>, timeout: Duration) -> Running {
    let web = WebOptions {
        web_config: match web_yml {
            Some(p) => WebConfig::load(p).unwrap(),
            None => WebConfig::default(),
        },
        header_read_timeout: timeout,
        tls_handshake_timeout: timeout,
        ..WebOptions::default()
    };
    Running::start(&config(), &web, &RuntimeOptions::default())
        .await
        .unwrap()
}

/// A reqwest client trusting only `ca`, with a client certificate when given.
pub fn client(ca: &str, identity: Option<(String, String)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// A rustls client configuration trusting only `ca`, offering `alpn`.
pub fn rustls_client(ca: &str, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut c = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    std::sync::Arc::new(c)
}
