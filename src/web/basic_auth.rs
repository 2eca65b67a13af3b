//! HTTP basic authentication against bcrypt hashes (exporter-toolkit's
//! `basic_auth_users`). User names are compared in constant time and an
//! unknown user still costs one bcrypt check, so timing tells nothing about
//! which names exist. Verified credentials are remembered by a salted digest
//! (never in clear) so each scrape does not pay a bcrypt round; the memory
//! belongs to one web configuration (a changed file starts a new one).
//!
//! bcrypt is deliberately slow, so a flood of wrong passwords must not take
//! the CPU the collectors, the feed and TLS handshakes share: at most
//! [`BCRYPT_AT_ONCE`] comparisons run at a time (as exporter-toolkit, one),
//! and a request that finds them all busy is refused with 429 at once
//! instead of queueing. A remembered credential never waits for them.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// A valid bcrypt hash of nothing anyone sends: checked for unknown users.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DX2mKdFa1Ljs1Dk2fw0i.";
/// Verified credentials remembered at most (then the memory starts over).
const CACHE_MAX: usize = 1024;
/// bcrypt comparisons running at once, process-wide.
pub const BCRYPT_AT_ONCE: usize = 1;

/// The bcrypt slots of the process (shared by every generation of the web
/// configuration, so a change never doubles the bound), and how many ran
/// at once at most.
#[derive(Debug)]
pub struct BcryptSlots {
    slots: Semaphore,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Default for BcryptSlots {
    fn default() -> Self {
        BcryptSlots {
            slots: Semaphore::new(BCRYPT_AT_ONCE),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }
}

impl BcryptSlots {
    /// Most comparisons that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// `bcrypt::verify` in a free slot, off the async workers; None when
    /// every slot is busy.
    async fn verify(self: &Arc<Self>, pass: String, hash: String) -> Option<bool> {
        let permit = self.slots.try_acquire().ok()?;
        let me = self.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let now = me.running.fetch_add(1, Ordering::AcqRel) + 1;
            me.peak.fetch_max(now, Ordering::AcqRel);
            let ok = bcrypt::verify(pass, &hash).unwrap_or(false);
            me.running.fetch_sub(1, Ordering::AcqRel);
            ok
        })
        .await
        .unwrap_or(false);
        drop(permit);
        Some(ok)
    }
}

/// What a request's credentials got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Not remembered and every bcrypt slot busy: try again shortly (429).
    Busy,
}

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    salt: [u8; 16],
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt: Arc<BcryptSlots>,
}

impl BasicAuth {
    pub fn new(users: BTreeMap<String, String>, bcrypt: Arc<BcryptSlots>) -> Arc<Self> {
        Arc::new(BasicAuth {
            users,
            salt: rand::random(),
            verified: Mutex::default(),
            bcrypt,
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

    /// Allowed when the `Authorization` header carries a configured user
    /// and the password matching its hash.
    pub async fn check(self: &Arc<Self>, headers: &HeaderMap) -> Verdict {
        let Some((user, pass)) = credentials(headers) else {
            return Verdict::Denied;
        };
        let key = self.digest(&user, &pass);
        if self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
        {
            return Verdict::Allowed;
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
        let Some(ok) = self.bcrypt.verify(pass, hash).await else {
            return Verdict::Busy;
        };
        let ok = ok && bool::from(found);
        if ok {
            let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if v.len() >= CACHE_MAX {
                v.clear();
            }
            v.insert(key);
        }
        match ok {
            true => Verdict::Allowed,
            false => Verdict::Denied,
        }
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

/// Every bcrypt slot was busy: come back in a second.
pub fn busy() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, HeaderValue::from_static("1")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        "Too many password checks at once; try again\n",
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

    use Verdict::*;

    #[tokio::test]
    async fn checks_users_and_passwords() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let a = BasicAuth::new([("prom".to_string(), hash)].into(), Default::default());
        assert_eq!(a.check(&basic("prom", "s3cret")).await, Allowed);
        assert_eq!(
            a.check(&basic("prom", "s3cret")).await,
            Allowed,
            "from the cache"
        );
        assert_eq!(a.check(&basic("prom", "wrong")).await, Denied);
        assert_eq!(a.check(&basic("other", "s3cret")).await, Denied);
        assert_eq!(a.check(&HeaderMap::new()).await, Denied);
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(a.check(&h).await, Denied);
    }

    /// Every slot busy: a remembered credential is still let in, anything
    /// else is refused at once (429), and no more comparisons run than the
    /// slots allow.
    #[tokio::test]
    async fn busy_slots_refuse_new_checks_but_not_remembered_ones() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let slots = Arc::new(BcryptSlots::default());
        let a = BasicAuth::new([("prom".to_string(), hash)].into(), slots.clone());
        assert_eq!(a.check(&basic("prom", "s3cret")).await, Allowed);
        let held = slots.slots.try_acquire_many(BCRYPT_AT_ONCE as u32).unwrap();
        assert_eq!(a.check(&basic("prom", "wrong")).await, Busy);
        assert_eq!(a.check(&basic("nobody", "x")).await, Busy);
        assert_eq!(a.check(&basic("prom", "s3cret")).await, Allowed);
        drop(held);
        assert_eq!(a.check(&basic("prom", "wrong")).await, Denied);
        // Many at once: never more than the slots.
        let checks = (0..16).map(|i| {
            let a = a.clone();
            async move { a.check(&basic("prom", &format!("w{i}"))).await }
        });
        let got = futures::future::join_all(checks).await;
        assert!(got.iter().all(|v| *v != Allowed));
        assert!(got.contains(&Busy), "{got:?}");
        assert_eq!(slots.peak(), BCRYPT_AT_ONCE);
    }

    #[test]
    fn dummy_hash_is_valid() {
        assert!(DUMMY_HASH.parse::<bcrypt::HashParts>().is_ok());
    }
}
