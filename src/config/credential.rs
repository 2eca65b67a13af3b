//! The credential keys of a tenant: exactly one of `client_secret`,
//! `client_secret_file`, `client_certificate_path`, `federated_token_file`,
//! `managed_identity`. The files they name are read once here, so a missing
//! or unusable one fails at load; the credential (`crate::auth::credentials`)
//! reads them again at every token request.

use super::error::{ConfigError, ErrFn};
use super::values::is_guid;
use crate::certificate::CertificateMaterial;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the tenant proves itself (see `credentials` for each kind).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    ClientSecret(Secret),
    /// Read afresh on every token request, so a rotated secret is picked up.
    ClientSecretFile(PathBuf),
    /// PEM with certificate and RSA key; re-read when it changes.
    #[serde(rename = "client_certificate_path")]
    ClientCertificate(PathBuf),
    /// Projected service-account token (workload identity); read per request.
    FederatedTokenFile(PathBuf),
    /// IMDS or App Service identity; `client_id` picks a user-assigned one.
    ManagedIdentity {
        client_id: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManagedIdentity {
    pub(super) client_id: Option<String>,
}

/// A tenant's credential keys, as written.
pub(super) struct RawCredential {
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_certificate_path: Option<PathBuf>,
    pub federated_token_file: Option<PathBuf>,
    pub managed_identity: Option<RawManagedIdentity>,
}

/// The one credential `t` names.
pub(super) fn credential(t: RawCredential, err: &ErrFn) -> Result<Credential, ConfigError> {
    // Exactly one credential.
    let given: Vec<&str> = [
        ("client_secret", t.client_secret.is_some()),
        ("client_secret_file", t.client_secret_file.is_some()),
        (
            "client_certificate_path",
            t.client_certificate_path.is_some(),
        ),
        ("federated_token_file", t.federated_token_file.is_some()),
        ("managed_identity", t.managed_identity.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    Ok(match given.as_slice() {
        [] => return Err(err(
            "client_secret_file",
            "no credential: set exactly one of client_secret_file, client_secret, client_certificate_path, federated_token_file, managed_identity".into(),
        )),
        [_] => {
            if let Some(s) = t.client_secret {
                if s.is_empty() {
                    return Err(err("client_secret", "empty".into()));
                }
                Credential::ClientSecret(Secret::new(s))
            } else if let Some(p) = t.client_secret_file {
                nonempty_file("client_secret_file", &p, err)?;
                Credential::ClientSecretFile(p)
            } else if let Some(p) = t.client_certificate_path {
                let pem = std::fs::read(&p).map_err(|e| err("client_certificate_path", format!("cannot read {}: {e}", p.display())))?;
                CertificateMaterial::from_pem(&pem)
                    .map_err(|e| err("client_certificate_path", format!("{}: {e}", p.display())))?;
                Credential::ClientCertificate(p)
            } else if let Some(p) = t.federated_token_file {
                nonempty_file("federated_token_file", &p, err)?;
                Credential::FederatedTokenFile(p)
            } else if let Some(mi) = t.managed_identity {
                if let Some(id) = &mi.client_id {
                    if !is_guid(id) {
                        return Err(err("managed_identity.client_id", format!("{id:?} is not a GUID (the user-assigned identity's client id)")));
                    }
                }
                Credential::ManagedIdentity { client_id: mi.client_id }
            } else {
                unreachable!("one credential was given")
            }
        }
        many => return Err(err(many[1], format!("more than one credential given ({}): set exactly one", many.join(", ")))),
    })
}

/// A credential file must be readable and not blank (checked at load; the
/// credential reads it again at every token request).
fn nonempty_file(key: &str, p: &Path, err: &ErrFn) -> Result<(), ConfigError> {
    match std::fs::read_to_string(p) {
        Ok(s) if !s.trim().is_empty() => Ok(()),
        Ok(_) => Err(err(key, format!("{} is empty", p.display()))),
        Err(e) => Err(err(key, format!("cannot read {}: {e}", p.display()))),
    }
}
