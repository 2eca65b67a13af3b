//! A client certificate file and the JWT client assertion it signs, as the
//! Microsoft identity platform's current "certificate credentials" page
//! documents it: header `alg` PS256 (RSASSA-PSS with SHA-256) with
//! `x5t#S256` (the certificate's SHA-256 thumbprint), claims `aud` = the
//! token endpoint the request is posted to, `iss` = `sub` = the client id,
//! a fresh `jti`, `nbf`/`iat` = now, `exp` = now + 10 min. The older page's
//! pair (RS256 with the SHA-1 `x5t`) is the other documented one; a mix of
//! the two is neither (docs/credentials.md says why this pair).
//!
//! A leaf shared by three rooms: the configuration refuses a file that does
//! not parse here (at load, exit 2), the certificate credential
//! (`crate::auth::credentials::certificate`) signs with it, and the
//! simulator verifies what was signed.

use crate::timefmt::now_unix;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Lifetime of one client assertion (Microsoft accepts up to 10 min).
pub const ASSERTION_LIFETIME: i64 = 600;

/// The signature algorithm of the assertion (with `x5t#S256`).
pub const ASSERTION_ALGORITHM: Algorithm = Algorithm::PS256;

/// The algorithm/thumbprint pairs Microsoft documents for a certificate
/// assertion: the current page's (PS256, `x5t#S256`) and the older page's
/// (RS256, `x5t`). The simulator accepts exactly these.
pub fn documented_pair(alg: Algorithm, x5t: bool, x5t_s256: bool) -> bool {
    matches!(
        (alg, x5t, x5t_s256),
        (Algorithm::PS256, false, true) | (Algorithm::RS256, true, false)
    )
}

/// A parsed certificate and its private key.
pub struct CertificateMaterial {
    key: EncodingKey,
    /// base64url(SHA-1(DER)) (not sent: the older page's header).
    pub x5t: String,
    /// base64url(SHA-256(DER)), sent as `x5t#S256`.
    pub x5t_s256: String,
    /// The certificate's notAfter, Unix seconds.
    pub not_after: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub jti: String,
    pub nbf: i64,
    pub iat: i64,
    pub exp: i64,
}

/// Thumbprints of a DER certificate: (x5t, x5t#S256).
pub fn thumbprints(der: &[u8]) -> (String, String) {
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    let sha256 = ring::digest::digest(&ring::digest::SHA256, der);
    (
        URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        URL_SAFE_NO_PAD.encode(sha256.as_ref()),
    )
}

/// A certificate's DER, notAfter and RSA public key, from the first
/// `CERTIFICATE` block of a PEM text.
pub struct ParsedCertificate {
    pub der: Vec<u8>,
    pub not_after: i64,
    pub public_key: DecodingKey,
}

pub fn parse_certificate(pem_text: &[u8]) -> Result<ParsedCertificate, String> {
    let blocks = pem::parse_many(pem_text).map_err(|e| format!("not a PEM file: {e}"))?;
    let cert = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or("no CERTIFICATE block")?;
    let der = cert.contents().to_vec();
    let (_, x509) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let not_after = x509.validity().not_after.timestamp();
    let public_key = DecodingKey::from_rsa_der(&x509.public_key().subject_public_key.data);
    Ok(ParsedCertificate {
        der,
        not_after,
        public_key,
    })
}

impl CertificateMaterial {
    /// Parse a PEM holding the certificate and its RSA private key, and
    /// check that the key belongs to the certificate.
    pub fn from_pem(pem_text: &[u8]) -> Result<CertificateMaterial, String> {
        let cert = parse_certificate(pem_text)?;
        let blocks = pem::parse_many(pem_text).map_err(|e| format!("not a PEM file: {e}"))?;
        let key_block = blocks
            .iter()
            .find(|b| b.tag().ends_with("PRIVATE KEY"))
            .ok_or("no private key block (RSA PRIVATE KEY or PRIVATE KEY)")?;
        match key_block.tag() {
            "RSA PRIVATE KEY" | "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err("the private key is encrypted: store it unencrypted (file mode 0600) or use a secret store".into())
            }
            other => return Err(format!("{other} is not supported: the key must be RSA")),
        }
        let key = EncodingKey::from_rsa_pem(pem::encode(key_block).as_bytes())
            .map_err(|e| format!("the private key is not a readable RSA key ({e})"))?;
        let (x5t, x5t_s256) = thumbprints(&cert.der);
        let material = CertificateMaterial {
            key,
            x5t,
            x5t_s256,
            not_after: cert.not_after,
        };
        // Sign once and verify with the certificate: a key from another
        // certificate is a configuration error, not a 401 an hour later.
        let probe = material.assertion("urn:check", "check")?;
        let mut v = Validation::new(ASSERTION_ALGORITHM);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<AssertionClaims>(&probe, &cert.public_key, &v)
            .map_err(|_| "the private key does not belong to the certificate".to_string())?;
        Ok(material)
    }

    /// A signed client assertion for `token_url` (its `aud`: the endpoint
    /// the request goes to, in every cloud).
    pub fn assertion(&self, token_url: &str, client_id: &str) -> Result<String, String> {
        let now = now_unix() as i64;
        let claims = AssertionClaims {
            aud: token_url.to_string(),
            iss: client_id.to_string(),
            sub: client_id.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        let mut header = Header::new(ASSERTION_ALGORITHM);
        header.x5t_s256 = Some(self.x5t_s256.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the client assertion: {e}"))
    }
}
