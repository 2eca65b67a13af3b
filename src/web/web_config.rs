//! `--web.config.file`: the Prometheus exporter-toolkit web configuration
//! (TLS, mutual TLS, basic auth, response headers), read with the same YAML
//! rules as the main configuration and validated into plain values. Any
//! problem is a [`ConfigError`] naming the file and the key (exit 2).
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths: to this file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//!   min_version: TLS12             # TLS12 | TLS13 (rustls has no 1.0/1.1)
//!   cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]   # TLS 1.2 only, as in Go
//! http_server_config:
//!   headers: {Strict-Transport-Security: max-age=31536000}
//!   http2: false                   # HTTP/1 only (true without TLS: h2c too)
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hash
//! ```

use crate::config::ConfigError;
use crate::web::tls::{ClientAuth, TlsSettings, TlsVersion, CURVES, TLS12_SUITES};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    /// Accepted for compatibility: rustls always picks in server order.
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebConfig {
    pub tls: Option<TlsSettings>,
    /// User → bcrypt hash. Empty: no authentication.
    pub basic_auth_users: BTreeMap<String, String>,
    /// Extra response headers (exporter-toolkit's allowed set).
    pub headers: Vec<(String, String)>,
    /// HTTP/2 over TLS when ALPN chooses it (`http2`, on unless false).
    pub http2: bool,
    /// HTTP/2 with prior knowledge on a plain listener: only when `http2`
    /// is set to true explicitly and there is no TLS.
    pub h2c: bool,
}

/// The headers exporter-toolkit lets a web config set.
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let (text, source) = crate::config::yaml::read_file(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let cfg = Self::parse(&text, &source, base)?;
        // Fail at start, not at the first handshake, on unreadable or
        // mismatched certificate files.
        if let Some(t) = &cfg.tls {
            crate::web::tls::server_config(t).map_err(|(key, reason)| ConfigError {
                source: source.clone(),
                key: format!("tls_server_config.{key}"),
                reason,
            })?;
        }
        Ok(cfg)
    }

    /// Validate YAML text; relative file names resolve against `base`.
    pub fn parse(text: &str, source: &str, base: &Path) -> Result<WebConfig, ConfigError> {
        let err = |key: &str, reason: String| ConfigError {
            source: source.to_string(),
            key: key.to_string(),
            reason,
        };
        // An empty file is a valid, empty configuration (as in exporter-toolkit).
        let raw: RawWebConfig = match text.trim().is_empty() {
            true => RawWebConfig::default(),
            false => crate::config::yaml::from_str::<Option<RawWebConfig>>(text, source)?
                .unwrap_or_default(),
        };
        let tls = raw
            .tls_server_config
            .map(|t| tls_settings(t, base, &err))
            .transpose()?;
        let mut users = BTreeMap::new();
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            let key = format!("basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(err(&key, "user names must be non-empty without ':'".into()));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                // Never echo the value: it may be a plaintext password by mistake.
                return Err(err(
                    &key,
                    "not a bcrypt hash (expected $2a$, $2b$ or $2y$...; make one with `htpasswd -nBC 10 USER`)".into(),
                ));
            }
            users.insert(user, hash);
        }
        let http = raw.http_server_config.unwrap_or_default();
        let mut headers = Vec::new();
        for (name, value) in http.headers.unwrap_or_default() {
            let key = format!("http_server_config.headers.{name}");
            let Some(canon) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(&name))
            else {
                return Err(err(
                    &key,
                    format!(
                        "header not allowed; allowed: {}",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            if axum::http::HeaderValue::from_str(&value).is_err() {
                return Err(err(&key, "not a valid header value".into()));
            }
            headers.push((canon.to_string(), value));
        }
        Ok(WebConfig {
            basic_auth_users: users,
            headers,
            h2c: http.http2 == Some(true) && tls.is_none(),
            http2: http.http2.unwrap_or(true),
            tls,
        })
    }
}

type ErrFn<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

fn tls_settings(t: RawTls, base: &Path, err: &ErrFn) -> Result<TlsSettings, ConfigError> {
    const K: &str = "tls_server_config";
    let path = |v: Option<String>| {
        v.filter(|s| !s.trim().is_empty())
            .map(|s| base.join(s.trim()))
    };
    let cert_file =
        path(t.cert_file).ok_or_else(|| err(&format!("{K}.cert_file"), "missing".into()))?;
    let key_file =
        path(t.key_file).ok_or_else(|| err(&format!("{K}.key_file"), "missing".into()))?;
    let client_ca_file = path(t.client_ca_file);
    let client_auth = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        v @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(err(
                &format!("{K}.client_auth_type"),
                format!("{v} accepts unverified certificates and is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
            ))
        }
        v => {
            return Err(err(
                &format!("{K}.client_auth_type"),
                format!("{v:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
            ))
        }
    };
    if client_auth != ClientAuth::NoClientCert && client_ca_file.is_none() {
        return Err(err(
            &format!("{K}.client_ca_file"),
            "required when client_auth_type verifies client certificates".into(),
        ));
    }
    if client_auth == ClientAuth::NoClientCert && client_ca_file.is_some() {
        return Err(err(
            &format!("{K}.client_auth_type"),
            "client_ca_file is set but client_auth_type is NoClientCert: set VerifyClientCertIfGiven or RequireAndVerifyClientCert".into(),
        ));
    }
    let version = |k: &str, v: Option<String>, d: TlsVersion| match v.as_deref() {
        None | Some("") => Ok(d),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(v @ ("TLS10" | "TLS11")) => Err(err(
            &format!("{K}.{k}"),
            format!("{v} is insecure and not supported (rustls speaks TLS12 and TLS13)"),
        )),
        Some(v) => Err(err(
            &format!("{K}.{k}"),
            format!("{v:?} is not one of TLS12, TLS13"),
        )),
    };
    let min_version = version("min_version", t.min_version, TlsVersion::Tls12)?;
    let max_version = version("max_version", t.max_version, TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err(err(
            &format!("{K}.max_version"),
            "lower than min_version".into(),
        ));
    }
    let mut cipher_suites = Vec::new();
    for s in t.cipher_suites.unwrap_or_default() {
        // Go spells the ChaCha suites without the trailing _SHA256.
        let canon = match s.ends_with("CHACHA20_POLY1305") {
            true => format!("{s}_SHA256"),
            false => s.clone(),
        };
        if !TLS12_SUITES.contains(&canon.as_str()) {
            return Err(err(
                &format!("{K}.cipher_suites"),
                format!(
                    "{s:?} is not supported by rustls; supported: {}",
                    TLS12_SUITES.join(", ")
                ),
            ));
        }
        cipher_suites.push(canon);
    }
    let mut curves = Vec::new();
    for c in t.curve_preferences.unwrap_or_default() {
        if !CURVES.contains(&c.as_str()) {
            return Err(err(
                &format!("{K}.curve_preferences"),
                format!("{c:?} is not supported; supported: {}", CURVES.join(", ")),
            ));
        }
        curves.push(c);
    }
    Ok(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
        max_version,
        cipher_suites,
        curves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";

    fn parse(s: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(s, "web.yml", Path::new("/etc/m365"))
    }
    fn fails(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn full_file() {
        let c = parse(&format!(
            "tls_server_config:\n  cert_file: s.crt\n  key_file: /abs/s.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  headers:\n    x-frame-options: deny\nbasic_auth_users:\n  prom: '{HASH}'\n"
        ))
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cert_file, Path::new("/etc/m365/s.crt"));
        assert_eq!(t.key_file, Path::new("/abs/s.key"));
        assert_eq!(t.client_auth, ClientAuth::RequireAndVerify);
        assert_eq!(t.min_version, TlsVersion::Tls13);
        assert_eq!(
            t.cipher_suites,
            ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
        );
        assert_eq!(c.headers, [("X-Frame-Options".into(), "deny".into())]);
        assert_eq!(c.basic_auth_users["prom"], HASH);
    }

    #[test]
    fn empty_file_is_empty_config() {
        assert_eq!(
            parse("").unwrap(),
            WebConfig {
                http2: true,
                ..Default::default()
            }
        );
        assert_eq!(parse("# nothing\n").unwrap().tls, None);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            fails("tls_server_config:\n  key_file: k\n"),
            "web.yml: tls_server_config.cert_file: missing"
        );
        assert!(fails("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n")
            .starts_with("web.yml: tls_server_config.client_ca_file: required"));
        assert!(
            fails("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n")
                .starts_with("web.yml: tls_server_config.min_version: TLS10 is insecure")
        );
        assert!(fails("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n")
            .starts_with("web.yml: tls_server_config.cipher_suites: \"TLS_RSA_WITH_RC4_128_SHA\" is not supported"));
        assert!(fails(
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Maybe\n"
        )
        .starts_with("web.yml: tls_server_config.client_auth_type: \"Maybe\""));
        assert!(fails("tls_server_config:\n  cert_file: c\n  kee_file: k\n")
            .starts_with("web.yml: tls_server_config: unknown field `kee_file`"));
        assert!(fails("http_server_config:\n  headers:\n    Server: x\n")
            .starts_with("web.yml: http_server_config.headers.Server: header not allowed"));
        assert!(fails("tls_server_config: [1]\n")
            .starts_with("web.yml: tls_server_config: invalid type"));
    }

    #[test]
    fn plaintext_password_is_refused_without_echo() {
        let e = fails("basic_auth_users:\n  prom: hunter2\n");
        assert!(
            e.starts_with("web.yml: basic_auth_users.prom: not a bcrypt hash"),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn missing_files_fail_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(
            &p,
            "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n",
        )
        .unwrap();
        let e = WebConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("tls_server_config.cert_file: cannot read"),
            "{e}"
        );
    }
}
