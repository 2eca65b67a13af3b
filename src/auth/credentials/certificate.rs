//! Certificate credential: each token request carries a JWT client assertion
//! signed PS256 with the certificate's private key, its `x5t#S256` header
//! naming the certificate ([`crate::certificate`] makes and checks it).
//!
//! The PEM file (certificate, then or after it the RSA private key, PKCS#1
//! `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) is re-read on every token
//! request and re-parsed when its bytes changed, so a rotated certificate is
//! used without restart.

use crate::auth::grant::{assertion_grant, local_error, AuthError, Credential, IssuedToken};
use crate::certificate::CertificateMaterial;
use crate::metrics::Live;
use crate::timefmt::{now_unix, rfc3339};
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Warn this long before the certificate's notAfter.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

struct Loaded {
    bytes: Vec<u8>,
    material: Arc<CertificateMaterial>,
    warned_at: Option<Instant>,
}

pub struct CertificateCredential {
    tenant: String,
    token_url: String,
    client_id: String,
    path: PathBuf,
    live: Arc<Live>,
    loaded: Mutex<Option<Loaded>>,
}

impl CertificateCredential {
    /// Loads the file at once so the expiry metric is there from the start
    /// (config validation has already parsed it once).
    pub fn new(
        tenant: &str,
        token_url: String,
        client_id: &str,
        path: PathBuf,
        live: Arc<Live>,
    ) -> Self {
        let c = CertificateCredential {
            tenant: tenant.to_string(),
            token_url,
            client_id: client_id.to_string(),
            path,
            live,
            loaded: Mutex::new(None),
        };
        if let Err(e) = c.material() {
            tracing::warn!(tenant = %c.tenant, error = %e.message, "client certificate not loaded");
        }
        c
    }

    /// The current material, re-parsed when the file's bytes changed.
    pub fn material(&self) -> Result<Arc<CertificateMaterial>, AuthError> {
        let bytes = std::fs::read(&self.path).map_err(|e| {
            local_error(format!(
                "cannot read client_certificate_path {}: {e}",
                self.path.display()
            ))
        })?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let changed = loaded.as_ref().is_none_or(|l| l.bytes != bytes);
        if changed {
            let material = CertificateMaterial::from_pem(&bytes)
                .map(Arc::new)
                .map_err(|e| {
                    local_error(format!(
                        "client_certificate_path {}: {e}",
                        self.path.display()
                    ))
                })?;
            if loaded.is_some() {
                tracing::info!(tenant = %self.tenant, not_after = %rfc3339(material.not_after), "client certificate changed on disk: using the new one");
            }
            self.live
                .certificate_expiry
                .with_label_values(&[self.tenant.as_str()])
                .set(material.not_after as f64);
            *loaded = Some(Loaded {
                bytes,
                material,
                warned_at: None,
            });
        }
        let l = loaded.as_mut().expect("set above");
        let left = l.material.not_after as f64 - now_unix();
        // Once a day while inside the warning window.
        if left < EXPIRY_WARNING.as_secs_f64()
            && l.warned_at
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(86_400))
        {
            l.warned_at = Some(Instant::now());
            tracing::warn!(
                tenant = %self.tenant,
                not_after = %rfc3339(l.material.not_after),
                days_left = (left / 86_400.0).floor() as i64,
                "client certificate expires soon: rotate it"
            );
        }
        Ok(l.material.clone())
    }
}

impl Credential for CertificateCredential {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
        audience: &'a str,
    ) -> BoxFuture<'a, Result<IssuedToken, AuthError>> {
        Box::pin(async move {
            let material = self.material()?;
            let assertion = material
                .assertion(&self.token_url, &self.client_id)
                .map_err(local_error)?;
            assertion_grant(http, &self.token_url, &self.client_id, &assertion, audience).await
        })
    }
}
