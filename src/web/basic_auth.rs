//! HTTP basic authentication against bcrypt hashes (exporter-toolkit's
//! `basic_auth_users`). User names are compared in constant time and an
//! unknown user still costs one bcrypt check, so timing tells nothing about
//! which names exist. Verified credentials are remembered by a salted digest
//! (never in clear) so each scrape does not pay a bcrypt round.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// A valid bcrypt hash of nothing anyone sends: checked for unknown users.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DX2mKdFa1Ljs1Dk2fw0i.";
/// Verified credentials remembered at most (then the memory starts over).
const CACHE_MAX: usize = 1024;

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    salt: [u8; 16],
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl BasicAuth {
    pub fn new(users: BTreeMap<String, String>) -> Arc<Self> {
        Arc::new(BasicAuth {
            users,
            salt: rand::random(),
            verified: Mutex::default(),
        })
    }

    fn digest(&self, user: &str, pass: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(pass.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// True when the `Authorization` header carries a configured user and
    /// the password matching its hash.
    pub async fn check(self: &Arc<Self>, headers: &HeaderMap) -> bool {
        let Some((user, pass)) = credentials(headers) else {
            return false;
        };
        let key = self.digest(&user, &pass);
        if self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
        {
            return true;
        }
        // Look at every user, in constant time per name.
        let mut hash = DUMMY_HASH;
        let mut found = subtle::Choice::from(0);
        for (name, h) in &self.users {
            let eq = name.as_bytes().ct_eq(user.as_bytes());
            if bool::from(eq) {
                hash = h;
            }
            found |= eq;
        }
        let hash = hash.to_string();
        // bcrypt is deliberately slow: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        let ok = ok && bool::from(found);
        if ok {
            let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if v.len() >= CACHE_MAX {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"m365-exporter\""),
            ),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        "Unauthorized\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        h
    }

    #[tokio::test]
    async fn checks_users_and_passwords() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let a = BasicAuth::new([("prom".to_string(), hash)].into());
        assert!(a.check(&basic("prom", "s3cret")).await);
        assert!(a.check(&basic("prom", "s3cret")).await, "from the cache");
        assert!(!a.check(&basic("prom", "wrong")).await);
        assert!(!a.check(&basic("other", "s3cret")).await);
        assert!(!a.check(&HeaderMap::new()).await);
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(!a.check(&h).await);
    }

    #[test]
    fn dummy_hash_is_valid() {
        assert!(DUMMY_HASH.parse::<bcrypt::HashParts>().is_ok());
    }
}
