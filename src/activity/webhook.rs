//! The second source of the backlog: Management API webhook notifications.
//!
//! Each tenant with `activity.webhook` has an [`Inbox`]: the HTTP receiver
//! (`crate::web::receiver`) checks a notification's `Webhook-AuthID` against it
//! in constant time, parses the body here ([`parse`], a plain function over
//! bytes), and hands the tenant's items to [`Inbox::deliver`]; the feed
//! wakes at once and [`Inbox::drain`]s them into the same deduplicating
//! backlog the lister feeds, to download them. Listing never stops: see
//! [`Inbox::listing_interval`].

use super::backlog::Backlog;
use super::client::{parse_content_items, TenantContent};
use super::events::Events;
use super::{Changed, Content};
use crate::config::WebhookConfig;
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

/// Largest notification body accepted (413 above).
pub const MAX_BODY: usize = 1 << 20;
/// Items waiting for the feed at most; more are dropped (and counted): the
/// safety-net listing finds them.
pub const MAX_QUEUED: usize = 100_000;

pub use super::events::WEBHOOK_RESULTS as RESULTS;

/// What a webhook POST carries.
#[derive(Debug, PartialEq)]
pub enum Body {
    /// Microsoft's validation of the address during `subscriptions/start`.
    Validation,
    /// Content items, each with the `tenantId` it names; and how many items
    /// were unusable (no contentId, contentUri or contentCreated).
    Items(Vec<TenantContent>, usize),
}

/// Parse a notification body: a JSON array of content items, or the
/// validation object `{"validationCode": …}`. `Err` for anything else.
pub fn parse(body: &[u8]) -> Result<Body, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Validation {
        validation_code: serde_json::Value,
    }
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    if start == Some(&b'{') {
        return match serde_json::from_slice::<Validation>(body) {
            Ok(v) if !v.validation_code.is_null() => Ok(Body::Validation),
            Ok(_) => Err("validationCode is null".into()),
            Err(e) => Err(format!("neither a validation nor a list of content: {e}")),
        };
    }
    let (items, skipped) = parse_content_items(body)?;
    Ok(Body::Items(items, skipped))
}

/// Why an item was dropped as foreign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// `tenantId` is another tenant's.
    Tenant,
    /// A content type this tenant does not follow.
    ContentType,
    /// `contentUri` outside the tenant's Management API root.
    Uri,
}

impl Foreign {
    pub fn as_str(self) -> &'static str {
        match self {
            Foreign::Tenant => "another tenant's tenantId",
            Foreign::ContentType => "a content type not configured",
            Foreign::Uri => "a contentUri outside the Management API root",
        }
    }
}

/// One tenant's webhook: its secret, its filter, and the items waiting.
pub struct Inbox {
    pub tenant: String,
    /// The tenant id (lower case) when it is a GUID; None for a domain name,
    /// which a notification's `tenantId` cannot be compared with.
    tenant_guid: Option<String>,
    pub cfg: WebhookConfig,
    types: Vec<String>,
    /// `{management root}/`: a `contentUri` must start with it.
    root: String,
    queue: Mutex<Vec<Content>>,
    /// contentType → Unix time of the last notification that named it.
    last: Mutex<BTreeMap<String, i64>>,
    wake: Notify,
}

impl Inbox {
    pub fn new(
        tenant: &str,
        tenant_id: &str,
        cfg: WebhookConfig,
        types: &[String],
        management_root: &str,
    ) -> Self {
        Inbox {
            tenant: tenant.to_string(),
            tenant_guid: crate::config::is_guid(tenant_id).then(|| tenant_id.to_ascii_lowercase()),
            cfg,
            types: types.to_vec(),
            root: format!("{}/", management_root.trim_end_matches('/')),
            queue: Mutex::default(),
            last: Mutex::default(),
            wake: Notify::new(),
        }
    }

    pub fn auth_id(&self) -> &Secret {
        &self.cfg.auth_id
    }

    /// The `Webhook-AuthID` header matches, compared in constant time.
    pub fn authorized(&self, header: Option<&[u8]>) -> bool {
        let want = self.cfg.auth_id.expose().as_bytes();
        header.is_some_and(|h| bool::from(h.ct_eq(want)))
    }

    /// Why `item` is not this tenant's, if it is not.
    pub fn foreign(&self, c: &Content, tenant_id: Option<&str>) -> Option<Foreign> {
        if let (Some(mine), Some(theirs)) = (&self.tenant_guid, tenant_id) {
            if !mine.eq_ignore_ascii_case(theirs) {
                return Some(Foreign::Tenant);
            }
        }
        if !self
            .types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&c.content_type))
        {
            return Some(Foreign::ContentType);
        }
        if !c.content_uri.starts_with(&self.root) {
            return Some(Foreign::Uri);
        }
        None
    }

    /// Queue this tenant's items for the feed and wake it. Returns how many
    /// were queued (the rest overflowed [`MAX_QUEUED`]).
    pub fn deliver(&self, items: Vec<Content>, now: i64) -> usize {
        if items.is_empty() {
            return 0;
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            for c in &items {
                // Label by the configured spelling: the label set stays bounded.
                if let Some(t) = self
                    .types
                    .iter()
                    .find(|t| t.eq_ignore_ascii_case(&c.content_type))
                {
                    last.insert(t.clone(), now);
                }
            }
        }
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_QUEUED.saturating_sub(q.len());
        let n = items.len().min(room);
        q.extend(items.into_iter().take(n).map(|mut c| {
            if let Some(t) = self
                .types
                .iter()
                .find(|t| t.eq_ignore_ascii_case(&c.content_type))
            {
                c.content_type = t.clone();
            }
            c
        }));
        drop(q);
        self.wake.notify_one();
        n
    }

    /// Everything queued since the last call.
    pub fn take(&self) -> Vec<Content> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The intake stage: what was queued goes into the backlog; ids it
    /// already knows cost nothing.
    pub fn drain(&self, backlog: &mut Backlog, events: &mut Events) -> Changed {
        let mut changed = Changed::default();
        for c in self.take() {
            let ev = events.of(&c.content_type);
            let fresh = backlog.offer(c);
            ev.notified(fresh);
            changed |= Changed(fresh);
        }
        changed
    }

    /// Resolves when items were delivered (or had been, since the last wait).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// contentType → Unix time of its last notification.
    pub fn last_notifications(&self) -> BTreeMap<String, i64> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How often `ct` is listed at `now`: every `poll_interval` while its
    /// notifications arrive, every `interval` once none came for `silence`
    /// (and before the first one).
    pub fn listing_interval(&self, ct: &str, interval: Duration, now: i64) -> Duration {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(ct)
            .copied();
        match last {
            Some(t) if now - t < self.cfg.silence.as_secs() as i64 => {
                self.cfg.poll_interval.max(interval)
            }
            _ => interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b";

    fn inbox() -> Inbox {
        let cfg = WebhookConfig {
            address: "https://x/webhook/t".into(),
            auth_id: Secret::new("s3cret-auth"),
            auth_id_file: None,
            expiration: None,
            poll_interval: Duration::from_secs(900),
            silence: Duration::from_secs(1_800),
        };
        Inbox::new(
            "t",
            TENANT,
            cfg,
            &["Audit.Exchange".to_string()],
            "https://manage.office.com",
        )
    }

    fn item(tenant: &str, ct: &str, uri: &str) -> String {
        format!(
            r#"{{"tenantId":"{tenant}","clientId":"c","contentType":"{ct}","contentId":"id1",
               "contentUri":"{uri}","contentCreated":"2025-11-27T10:00:00.000Z",
               "contentExpiration":"2025-12-04T10:00:00.000Z"}}"#
        )
    }

    #[test]
    fn bodies() {
        assert_eq!(
            parse(br#" {"validationCode":"abc"}"#).unwrap(),
            Body::Validation
        );
        assert!(parse(br#"{"validationCode":null}"#).is_err());
        assert!(parse(br#"{"other":1}"#).is_err());
        assert!(parse(b"not json").is_err());
        assert!(parse(b"[1,2]").is_err());
        let good = format!(
            "[{},{{\"contentId\":\"x\"}}]",
            item(
                TENANT,
                "Audit.Exchange",
                "https://manage.office.com/api/v1.0/t/activity/feed/audit/id1"
            )
        );
        match parse(good.as_bytes()).unwrap() {
            Body::Items(items, skipped) => {
                assert_eq!((items.len(), skipped), (1, 1));
                assert_eq!(items[0].1.as_deref(), Some(TENANT));
                assert_eq!(items[0].0.created, 1_764_237_600);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auth_and_foreign_items() {
        let b = inbox();
        assert!(b.authorized(Some(b"s3cret-auth")));
        assert!(!b.authorized(Some(b"s3cret-autH")));
        assert!(!b.authorized(Some(b"s3cret")));
        assert!(!b.authorized(None));
        let uri = "https://manage.office.com/api/v1.0/t/activity/feed/audit/id1";
        let check = |tenant: &str, ct: &str, uri: &str| {
            let body = format!("[{}]", item(tenant, ct, uri));
            let Body::Items(items, _) = parse(body.as_bytes()).unwrap() else {
                panic!()
            };
            b.foreign(&items[0].0, items[0].1.as_deref())
        };
        assert_eq!(check(TENANT, "Audit.Exchange", uri), None);
        assert_eq!(
            check(&TENANT.to_uppercase(), "audit.exchange", uri),
            None,
            "GUIDs and content types compare without case"
        );
        assert_eq!(
            check(
                "11111111-2222-3333-4444-555555555555",
                "Audit.Exchange",
                uri
            ),
            Some(Foreign::Tenant)
        );
        assert_eq!(check(TENANT, "DLP.All", uri), Some(Foreign::ContentType));
        assert_eq!(
            check(TENANT, "Audit.Exchange", "https://manage.office.com.evil/x"),
            Some(Foreign::Uri)
        );
    }

    #[test]
    fn silence_brings_the_normal_interval_back() {
        let b = inbox();
        let i = Duration::from_secs(60);
        assert_eq!(
            b.listing_interval("Audit.Exchange", i, 10_000),
            i,
            "none yet"
        );
        let body = format!(
            "[{}]",
            item(TENANT, "audit.exchange", "https://manage.office.com/a")
        );
        let Body::Items(items, _) = parse(body.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            b.deliver(items.into_iter().map(|(c, _)| c).collect(), 10_000),
            1
        );
        assert_eq!(
            b.listing_interval("Audit.Exchange", i, 10_001),
            Duration::from_secs(900)
        );
        assert_eq!(
            b.listing_interval("Audit.Exchange", i, 10_000 + 1_800),
            i,
            "after `silence`"
        );
        let got = b.take();
        assert_eq!(got[0].content_type, "Audit.Exchange", "configured spelling");
        assert!(b.take().is_empty());
    }
}
