//! Throw-away RSA test certificates, made with the `openssl` command at test
//! time (nothing private is committed). Everything is read back with openssl
//! too, so the exporter's own parsing is checked against an independent one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestCert {
    /// The certificate alone (what an app registration holds).
    pub cert_pem: String,
    /// Certificate then private key, PKCS#8 (`PRIVATE KEY`).
    pub pem_pkcs8: String,
    /// Certificate then private key, PKCS#1 (`RSA PRIVATE KEY`).
    pub pem_pkcs1: String,
    /// SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    pub public_key_pem: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// base64url of the SHA-256 and SHA-1 fingerprints (x5t#S256, x5t).
    pub x5t_s256: String,
    pub x5t: String,
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fingerprint(cert: &str, digest: &str) -> String {
    let line = openssl(&["x509", "-in", cert, "-noout", "-fingerprint", digest]);
    let hex = line.trim().rsplit('=').next().unwrap().replace(':', "");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new self-signed RSA-2048 certificate valid for `days`, files in `dir`.
pub fn make(dir: &Path, name: &str, days: u32) -> TestCert {
    let p = |s: &str| -> PathBuf { dir.join(format!("{name}-{s}.pem")) };
    let (key, cert, key1) = (p("key"), p("cert"), p("key-pkcs1"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-subj",
        &format!("/CN=m365-exporter test {name}"),
        "-days",
        &days.to_string(),
        "-keyout",
        &s(&key),
        "-out",
        &s(&cert),
    ]);
    openssl(&["rsa", "-in", &s(&key), "-traditional", "-out", &s(&key1)]);
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    let key8 = std::fs::read_to_string(&key).unwrap();
    let key1 = std::fs::read_to_string(&key1).unwrap();
    assert!(key8.contains("BEGIN PRIVATE KEY") && key1.contains("BEGIN RSA PRIVATE KEY"));
    let end = openssl(&["x509", "-in", &s(&cert), "-noout", "-enddate"]);
    let end = end.trim().trim_start_matches("notAfter=");
    let end = end.split_whitespace().collect::<Vec<_>>().join(" ");
    let not_after = chrono::NaiveDateTime::parse_from_str(&end, "%b %d %H:%M:%S %Y GMT")
        .unwrap_or_else(|e| panic!("notAfter {end:?}: {e}"))
        .and_utc()
        .timestamp();
    TestCert {
        public_key_pem: openssl(&["x509", "-in", &s(&cert), "-noout", "-pubkey"]),
        x5t_s256: fingerprint(&s(&cert), "-sha256"),
        x5t: fingerprint(&s(&cert), "-sha1"),
        pem_pkcs8: format!("{cert_pem}{key8}"),
        pem_pkcs1: format!("{cert_pem}{key1}"),
        cert_pem,
        not_after,
    }
}
