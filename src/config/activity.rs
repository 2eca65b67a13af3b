//! The `activity` section (the audit feed) and its `webhook`: defaults,
//! bounds, and how a tenant's keys override `defaults.activity`.

use super::error::{ConfigError, ErrFn};
use super::values::{
    duration, format_duration, is_guid, parse_duration, serialize_duration,
    serialize_option_duration,
};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

pub const CONTENT_TYPES: [&str; 5] = [
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
];

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawActivity {
    enabled: Option<bool>,
    interval: Option<String>,
    content_types: Option<Vec<String>>,
    start_subscriptions: Option<bool>,
    publisher_id: Option<String>,
    lookback: Option<String>,
    overlap: Option<String>,
    concurrency: Option<usize>,
    requests_per_minute: Option<u32>,
    state_file: Option<PathBuf>,
    output: Option<PathBuf>,
    file_mode: Option<String>,
    operations: Option<Vec<String>>,
    max_inflight_bytes: Option<RawBytes>,
    webhook: Option<RawWebhook>,
    reconcile: Option<RawReconcile>,
}

/// `activity.reconcile`: the completeness check against the Audit Log
/// Query API (see docs/activity.md); merged over `defaults` key by key.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconcile {
    enabled: Option<bool>,
    interval: Option<String>,
    settle: Option<String>,
    window: Option<String>,
    repair: Option<bool>,
}

/// `activity.webhook`: Management API notifications (see docs/activity.md).
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    address: Option<String>,
    auth_id: Option<String>,
    auth_id_file: Option<PathBuf>,
    expiration: Option<String>,
    poll_interval: Option<String>,
    silence: Option<String>,
}

/// A byte size: a number, or a string with a binary unit (`64MiB`).
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RawBytes {
    Number(u64),
    /// Negative: refused with the key named, not as a YAML type error.
    Signed(#[allow(dead_code)] i64),
    Text(String),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActivityConfig {
    pub enabled: bool,
    #[serde(serialize_with = "serialize_duration")]
    pub interval: Duration,
    pub content_types: Vec<String>,
    pub start_subscriptions: bool,
    /// `PublisherIdentifier`; None: the tenant GUID.
    pub publisher_id: Option<String>,
    #[serde(serialize_with = "serialize_duration")]
    pub lookback: Duration,
    /// Trailing window re-listed every poll, for late-indexed content.
    #[serde(serialize_with = "serialize_duration")]
    pub overlap: Duration,
    /// Blob downloads in flight per tenant.
    pub concurrency: usize,
    /// Management API request budget per tenant (Microsoft's baseline is ~2,000/min).
    pub requests_per_minute: u32,
    pub state_file: Option<PathBuf>,
    pub output: Option<PathBuf>,
    /// Mode of the files the feed creates (sink, state, id log,
    /// quarantine, locks); their directories get it plus `x` where it reads.
    pub file_mode: FileMode,
    pub operations: Vec<String>,
    /// Bytes of audit blobs held at once (downloaded, not yet written).
    pub max_inflight_bytes: usize,
    /// Notifications as a second source of content (None: polling only).
    pub webhook: Option<WebhookConfig>,
    /// Completeness checked against the Audit Log Query API.
    pub reconcile: ReconcileConfig,
}

/// A file mode written as octal text (`"0600"`): read and write for the
/// owner, perhaps read (or write) for the group and read for others, never
/// execute nor world-writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl Default for FileMode {
    fn default() -> Self {
        FileMode(0o600)
    }
}

impl FileMode {
    pub fn parse(text: &str) -> Option<FileMode> {
        let t = text.trim();
        if !(3..=4).contains(&t.len()) {
            return None;
        }
        let m = u32::from_str_radix(t, 8).ok()?;
        (m & 0o600 == 0o600 && m & !0o664 == 0).then_some(FileMode(m))
    }

    /// The mode of a directory the feed creates: `x` wherever `r` is.
    pub fn dir(self) -> u32 {
        self.0 | ((self.0 & 0o444) >> 2)
    }
}

impl std::fmt::Display for FileMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `activity.reconcile`: each `window` of the feed, once it ended `settle`
/// ago and the feed has finished with it, compared with Microsoft Purview's
/// Audit Log Query API (Graph), and what is missing repaired.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReconcileConfig {
    pub enabled: bool,
    /// Time between runs (a run reconciles every window that is due).
    #[serde(serialize_with = "serialize_duration")]
    pub interval: Duration,
    /// How long after a window ends it is first reconciled (Microsoft
    /// backfills records late).
    #[serde(serialize_with = "serialize_duration")]
    pub settle: Duration,
    /// The span one audit-log query covers.
    #[serde(serialize_with = "serialize_duration")]
    pub window: Duration,
    /// Re-list the window, then write what is still missing from the
    /// query's `auditData`.
    pub repair: bool,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            enabled: false,
            interval: Duration::from_secs(6 * 3_600),
            settle: Duration::from_secs(86_400),
            window: Duration::from_secs(3_600),
            repair: true,
        }
    }
}

/// `activity.reconcile.interval` bounds.
pub const RECONCILE_INTERVAL: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(86_400));
/// `activity.reconcile.settle` at most: a window must still be in
/// Microsoft's 7 days when it is re-listed, a day of it at most.
pub const RECONCILE_SETTLE_MAX: Duration = Duration::from_secs(6 * 86_400);
/// `activity.reconcile.window` bounds (Microsoft lists content in at most
/// 24 h windows).
pub const RECONCILE_WINDOW: (Duration, Duration) =
    (Duration::from_secs(300), Duration::from_secs(86_400));

/// `activity.webhook`: where Microsoft posts notifications, the authId it
/// must send, and how listing continues beside them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WebhookConfig {
    /// What Microsoft calls (`https://…/webhook/{tenant}`).
    pub address: String,
    /// Read once at load; never printed.
    pub auth_id: Secret,
    /// Where `auth_id` came from, if a file (shown instead of the value).
    pub auth_id_file: Option<PathBuf>,
    /// Sent as the webhook's expiration (now + this); None: Microsoft's default.
    #[serde(serialize_with = "serialize_option_duration")]
    pub expiration: Option<Duration>,
    /// Safety-net listing while notifications arrive.
    #[serde(serialize_with = "serialize_duration")]
    pub poll_interval: Duration,
    /// No notification for this long: list at the normal interval again.
    #[serde(serialize_with = "serialize_duration")]
    pub silence: Duration,
}

/// `management_overridden`: `endpoints.management` is set (a simulator, a
/// test, a proxy), so a webhook address may be plain http.
pub(super) fn activity(
    own: Option<&RawActivity>,
    def: Option<&RawActivity>,
    management_overridden: bool,
    err: &ErrFn,
) -> Result<ActivityConfig, ConfigError> {
    // A tenant's own value wins over the defaults', field by field.
    fn pick<T: Clone>(
        own: Option<&RawActivity>,
        def: Option<&RawActivity>,
        f: fn(&RawActivity) -> Option<T>,
    ) -> Option<T> {
        own.and_then(f).or_else(|| def.and_then(f))
    }
    let dur = |k: &str, f: fn(&RawActivity) -> Option<String>, d: Duration| match pick(own, def, f)
    {
        Some(v) => duration(&format!("activity.{k}"), &v, err),
        None => Ok(d),
    };
    let interval = dur("interval", |a| a.interval.clone(), Duration::from_secs(60))?;
    let lookback = dur(
        "lookback",
        |a| a.lookback.clone(),
        Duration::from_secs(86_400),
    )?;
    if lookback > crate::activity::RETENTION {
        return Err(err(
            "activity.lookback",
            "must be at most 7d (Microsoft keeps content for 7 days)".into(),
        ));
    }
    let overlap = dur("overlap", |a| a.overlap.clone(), Duration::from_secs(3_600))?;
    if overlap > Duration::from_secs(crate::activity::MAX_WINDOW_SECS as u64) {
        return Err(err("activity.overlap", "must be at most 24h".into()));
    }
    let content_types = pick(own, def, |a| a.content_types.clone())
        .unwrap_or_else(|| CONTENT_TYPES.iter().map(|s| s.to_string()).collect());
    if content_types.is_empty() {
        return Err(err("activity.content_types", "empty".into()));
    }
    for ct in &content_types {
        if !CONTENT_TYPES.contains(&ct.as_str()) {
            return Err(err(
                "activity.content_types",
                format!("{ct:?} is not one of {}", CONTENT_TYPES.join(", ")),
            ));
        }
    }
    // Microsoft's troubleshooting guide: "the PublisherIdentifier is the
    // Tenant GUID" (ISVs: their own tenant's GUID). Unset: the tenant GUID,
    // resolved at start when `tenant_id` is a domain.
    let publisher_id = pick(own, def, |a| a.publisher_id.clone());
    if let Some(p) = publisher_id.as_deref().filter(|p| !is_guid(p)) {
        return Err(err(
            "activity.publisher_id",
            format!("{p:?} is not a GUID (the PublisherIdentifier is a tenant GUID)"),
        ));
    }
    let concurrency = pick(own, def, |a| a.concurrency).unwrap_or(4);
    if !(1..=64).contains(&concurrency) {
        return Err(err(
            "activity.concurrency",
            "must be between 1 and 64".into(),
        ));
    }
    let requests_per_minute = pick(own, def, |a| a.requests_per_minute).unwrap_or(1_500);
    if !(1..=2_000).contains(&requests_per_minute) {
        return Err(err(
            "activity.requests_per_minute",
            "must be between 1 and 2000 (Microsoft's per-tenant baseline)".into(),
        ));
    }
    let max_inflight_bytes = match pick(own, def, |a| a.max_inflight_bytes.clone()) {
        None => DEFAULT_MAX_INFLIGHT_BYTES,
        Some(v) => parse_bytes(&v)
            .filter(|n| (MIN_INFLIGHT_BYTES..=MAX_INFLIGHT_BYTES).contains(n))
            .ok_or_else(|| {
                err(
                    "activity.max_inflight_bytes",
                    "must be a size from 1MiB to 4GiB (a number of bytes, or e.g. 64MiB)".into(),
                )
            })?,
    };
    if def.is_some_and(|d| d.webhook.is_some()) {
        return Err(err(
            "activity.webhook",
            "set in defaults: the address and authId are each tenant's own; set it under the tenant".into(),
        ));
    }
    let file_mode = match pick(own, def, |a| a.file_mode.clone()) {
        None => FileMode::default(),
        Some(t) => FileMode::parse(&t).ok_or_else(|| {
            err(
                "activity.file_mode",
                format!("{t:?} is not an octal mode with owner read and write, no execute, not world-writable (e.g. \"0600\", \"0640\")"),
            )
        })?,
    };
    let webhook = match own.and_then(|a| a.webhook.as_ref()) {
        Some(w) => Some(webhook(w, interval, !management_overridden, err)?),
        None => None,
    };
    let reconcile = reconcile(
        own.and_then(|a| a.reconcile.as_ref()),
        def.and_then(|a| a.reconcile.as_ref()),
        err,
    )?;
    Ok(ActivityConfig {
        reconcile,
        webhook,
        max_inflight_bytes,
        enabled: pick(own, def, |a| a.enabled).unwrap_or(false),
        interval,
        content_types,
        start_subscriptions: pick(own, def, |a| a.start_subscriptions).unwrap_or(false),
        publisher_id,
        lookback,
        overlap,
        concurrency,
        requests_per_minute,
        state_file: own.and_then(|a| a.state_file.clone()),
        output: own.and_then(|a| a.output.clone()),
        file_mode,
        operations: pick(own, def, |a| a.operations.clone()).unwrap_or_default(),
    })
}

/// `activity.reconcile`, a tenant's keys over the defaults' (the cloud is
/// checked with the tenant: the query API is in the global cloud only).
fn reconcile(
    own: Option<&RawReconcile>,
    def: Option<&RawReconcile>,
    err: &ErrFn,
) -> Result<ReconcileConfig, ConfigError> {
    fn pick<T: Clone>(
        own: Option<&RawReconcile>,
        def: Option<&RawReconcile>,
        f: fn(&RawReconcile) -> Option<T>,
    ) -> Option<T> {
        own.and_then(f).or_else(|| def.and_then(f))
    }
    let d = ReconcileConfig::default();
    // Zero is a valid settle, so the bounds are checked here, not by `duration`.
    let bounded = |k: &str,
                   f: fn(&RawReconcile) -> Option<String>,
                   default,
                   (lo, hi): (Duration, Duration),
                   words: &str| {
        let key = format!("activity.reconcile.{k}");
        let Some(v) = pick(own, def, f) else {
            return Ok(default);
        };
        let v = parse_duration(&v).map_err(|r| err(&key, r))?;
        if v < lo || v > hi {
            return Err(err(&key, format!("must be from {words}")));
        }
        Ok(v)
    };
    Ok(ReconcileConfig {
        enabled: pick(own, def, |r| r.enabled).unwrap_or(d.enabled),
        interval: bounded(
            "interval",
            |r| r.interval.clone(),
            d.interval,
            RECONCILE_INTERVAL,
            "10s to 24h",
        )?,
        settle: bounded(
            "settle",
            |r| r.settle.clone(),
            d.settle,
            (Duration::ZERO, RECONCILE_SETTLE_MAX),
            "0s to 6d",
        )?,
        window: bounded(
            "window",
            |r| r.window.clone(),
            d.window,
            RECONCILE_WINDOW,
            "5m to 24h",
        )?,
        repair: pick(own, def, |r| r.repair).unwrap_or(d.repair),
    })
}

/// `activity.webhook` of one tenant (not taken from `defaults`: the address
/// and authId are the tenant's own). `https_only`: Microsoft's Management
/// API is the one calling (the reference: "Required HTTPS endpoint"; it
/// refuses another scheme with AF20021 "The address must begin with HTTPS").
fn webhook(
    w: &RawWebhook,
    interval: Duration,
    https_only: bool,
    err: &ErrFn,
) -> Result<WebhookConfig, ConfigError> {
    let key = |k: &str| format!("activity.webhook.{k}");
    let address = w
        .address
        .clone()
        .ok_or_else(|| err(&key("address"), "missing".into()))?;
    match reqwest::Url::parse(&address) {
        Ok(u) if u.host().is_none() => {
            return Err(err(
                &key("address"),
                format!("{address:?} is not an http(s) URL (Microsoft requires https)"),
            ))
        }
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && !https_only => {}
        Ok(u) if u.scheme() == "http" => {
            return Err(err(
                &key("address"),
                format!("{address:?} is not https: Microsoft refuses any other scheme (AF20021 \"The address must begin with HTTPS\"); plain http is accepted only with endpoints.management set (a simulator or test)"),
            ))
        }
        _ => {
            return Err(err(
                &key("address"),
                format!("{address:?} is not an http(s) URL (Microsoft requires https)"),
            ))
        }
    }
    let (auth_id, auth_id_file) = match (&w.auth_id, &w.auth_id_file) {
        (Some(_), Some(_)) => {
            return Err(err(
                &key("auth_id_file"),
                "both auth_id and auth_id_file given: set exactly one".into(),
            ))
        }
        (None, None) => {
            return Err(err(
                &key("auth_id_file"),
                "missing: set auth_id_file (or auth_id)".into(),
            ))
        }
        (Some(s), None) => (s.trim().to_string(), None),
        (None, Some(p)) => match std::fs::read_to_string(p) {
            Ok(s) => (s.trim().to_string(), Some(p.clone())),
            Err(e) => {
                return Err(err(
                    &key("auth_id_file"),
                    format!("cannot read {}: {e}", p.display()),
                ))
            }
        },
    };
    // Microsoft sends it back in a header: printable ASCII only.
    if auth_id.is_empty() || !auth_id.bytes().all(|b| b.is_ascii_graphic()) {
        let k = if auth_id_file.is_some() {
            "auth_id_file"
        } else {
            "auth_id"
        };
        return Err(err(
            &key(k),
            "the authId must be non-empty printable ASCII without spaces".into(),
        ));
    }
    let dur = |k: &str, v: &Option<String>, d: Duration| match v {
        Some(v) => duration(&key(k), v, err),
        None => Ok(d),
    };
    let expiration = match &w.expiration {
        Some(v) => Some(duration(&key("expiration"), v, err)?),
        None => None,
    };
    let poll_interval = dur("poll_interval", &w.poll_interval, Duration::from_secs(900))?;
    let silence = dur("silence", &w.silence, Duration::from_secs(1_800))?;
    if poll_interval < interval {
        return Err(err(
            &key("poll_interval"),
            format!(
                "must be at least activity.interval ({}): it is the slower listing used while notifications arrive",
                format_duration(interval)
            ),
        ));
    }
    Ok(WebhookConfig {
        address,
        auth_id: Secret::new(auth_id),
        auth_id_file,
        expiration,
        poll_interval,
        silence,
    })
}

pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 << 20;
const MIN_INFLIGHT_BYTES: usize = 1 << 20;
/// One permit per byte in a `u32`-sized acquisition.
const MAX_INFLIGHT_BYTES: usize = (4 << 30) - 1;

fn parse_bytes(v: &RawBytes) -> Option<usize> {
    match v {
        RawBytes::Number(n) => usize::try_from(*n).ok(),
        RawBytes::Signed(_) => None,
        RawBytes::Text(t) => parse_size(t),
    }
}

/// `64MiB`, `1048576`: a number of bytes, or with a binary unit.
pub(super) fn parse_size(t: &str) -> Option<usize> {
    let t = t.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: usize = n.parse().ok()?;
    let mul = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}
