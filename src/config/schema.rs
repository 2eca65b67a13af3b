//! Every key of the configuration file, in one table: where it goes, its
//! type, default, bounds and meaning. `docs/configuration.md` is rendered
//! from it (`crate::cli::docs`), and the tests below hold it to the parser:
//! at every mapping the keys listed are exactly the keys the parser accepts,
//! every default is what the parser fills in, every bound is where the parser
//! starts refusing, and a key said to work under `defaults` does.
//!
//! It is the one long production file on purpose: a table, one row per
//! key, read top to bottom like docs/configuration.md. Split by room, a
//! key's row would no longer sit beside its siblings' defaults and bounds.

use super::activity::CONTENT_TYPES;
use super::cloud::Cloud;

/// Where a key may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// At the top of the file.
    Top,
    /// Under a tenant (`tenants[].…`) only.
    Tenant,
    /// Under a tenant or under `defaults` (a tenant's own value wins).
    Collector,
    /// In a collector section, but only a tenant's own value counts: under
    /// `defaults` it is refused or, for the feed's files, ignored.
    TenantOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A mapping of further keys.
    Section,
    /// The list of tenants.
    Tenants,
    Bool,
    /// `[a-z0-9_-]+`.
    Name,
    Guid,
    GuidOrDomain,
    /// Printable text; a secret is never printed back.
    Secret,
    Path,
    /// An `http(s)` URL.
    Url,
    /// `30s`, `5m`, `1h`, `7d`, `1h30m`; more than zero.
    Duration,
    Count,
    /// Bytes: a number, or with `KiB`, `MiB`, `GiB`.
    Size,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A list of these words.
    ListOf(&'static [&'static str]),
    /// A list of strings.
    Strings,
    /// An octal file mode, as text.
    FileMode,
}

impl Type {
    /// As the documentation names it.
    pub fn describe(self) -> String {
        match self {
            Type::Section => "mapping".into(),
            Type::Tenants => "list of tenants".into(),
            Type::Bool => "bool".into(),
            Type::Name => "name `[a-z0-9_-]+`".into(),
            Type::Guid => "GUID".into(),
            Type::GuidOrDomain => "GUID or domain".into(),
            Type::Secret => "secret string".into(),
            Type::Path => "path".into(),
            Type::Url => "http(s) URL".into(),
            Type::Duration => "duration".into(),
            Type::Count => "integer".into(),
            Type::Size => "size".into(),
            Type::OneOf(words) => format!("one of {}", words.join(", ")),
            Type::ListOf(words) => format!("list of {}", words.join(", ")),
            Type::Strings => "list of strings".into(),
            Type::FileMode => "octal mode string".into(),
        }
    }
}

/// A key's value when it is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// It must be written.
    Required,
    /// Unset: the feature it configures is off.
    Unset,
    /// This value (in the file's own notation); the tests compare it with
    /// what the parser fills in.
    Value(&'static str),
    /// Derived from other keys, as described.
    Derived(&'static str),
}

/// Inclusive limits a value is checked against (in the file's notation);
/// the tests check the parser accepts them and refuses one step beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: Option<&'static str>,
    pub max: Option<&'static str>,
}

pub struct Key {
    /// The key below `tenants[]` (or at the top, for [`Scope::Top`]), e.g.
    /// `activity.webhook.poll_interval`.
    pub path: &'static str,
    pub scope: Scope,
    pub ty: Type,
    pub default: KeyDefault,
    pub bounds: Bounds,
    /// Further rules, for the documentation.
    pub rules: &'static str,
    pub meaning: &'static str,
    /// A valid value other than the default (YAML), which the tests write
    /// under `defaults` to check the scope; empty: not checked that way.
    pub example: &'static str,
}

const NO_BOUNDS: Bounds = Bounds {
    min: None,
    max: None,
};

const fn at_most(max: &'static str) -> Bounds {
    Bounds {
        min: None,
        max: Some(max),
    }
}

const fn between(min: &'static str, max: &'static str) -> Bounds {
    Bounds {
        min: Some(min),
        max: Some(max),
    }
}

const fn key(path: &'static str, scope: Scope, ty: Type, default: KeyDefault) -> Key {
    Key {
        path,
        scope,
        ty,
        default,
        bounds: NO_BOUNDS,
        rules: "",
        meaning: "",
        example: "",
    }
}

use KeyDefault::{Derived, Required, Unset, Value};
use Scope::{Collector, Tenant, TenantOnly, Top};

/// Every key, in the order the documentation lists them.
pub const KEYS: &[Key] = &[
    Key {
        meaning: "Collector sections (`service_health`, `messages`, `activity`, `app_credentials`) merged into every tenant; a tenant's own value wins, key by key (a list replaces the list of the same name).",
        ..key("defaults", Top, Type::Section, Unset)
    },
    Key {
        rules: "at least one",
        meaning: "The tenants to watch, each with its own credential and collectors.",
        ..key("tenants", Top, Type::Tenants, Required)
    },
    Key {
        rules: "unique",
        meaning: "The value of the `tenant` label and of `/probe?target=`.",
        ..key("name", Tenant, Type::Name, Required)
    },
    Key {
        meaning: "The directory (tenant) id, or its primary domain: a domain is resolved to the tenant GUID at start (the authority's OpenID discovery document; `check-config` shows it), which the Management API needs.",
        ..key("tenant_id", Tenant, Type::GuidOrDomain, Required)
    },
    Key {
        meaning: "The app registration's client id.",
        ..key("client_id", Tenant, Type::Guid, Required)
    },
    Key {
        rules: "exactly one credential key",
        meaning: "The client secret inline (discouraged: prefer `client_secret_file`).",
        ..key("client_secret", Tenant, Type::Secret, Unset)
    },
    Key {
        rules: "exactly one credential key; readable, not empty",
        meaning: "File holding the client secret; read afresh at every token request, so a rotated secret needs no restart.",
        ..key("client_secret_file", Tenant, Type::Path, Unset)
    },
    Key {
        rules: "exactly one credential key; a PEM with the certificate and its unencrypted RSA key (PKCS#1 or PKCS#8)",
        meaning: "Certificate credential: each token request carries a JWT client assertion signed with the key; the file is re-read when it changes. See docs/credentials.md.",
        ..key("client_certificate_path", Tenant, Type::Path, Unset)
    },
    Key {
        rules: "exactly one credential key; readable, not empty",
        meaning: "Workload identity: the projected service-account token, read afresh at every token request, sent as the client assertion.",
        ..key("federated_token_file", Tenant, Type::Path, Unset)
    },
    Key {
        rules: "exactly one credential key",
        meaning: "Managed identity: `{}` for the system-assigned identity; IMDS, or App Service / Container Apps when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set.",
        ..key("managed_identity", Tenant, Type::Section, Unset)
    },
    Key {
        meaning: "A user-assigned identity's client id.",
        ..key("managed_identity.client_id", Tenant, Type::Guid, Unset)
    },
    Key {
        meaning: "The Microsoft cloud: selects the login, Graph and Management API roots.",
        ..key(
            "cloud",
            Tenant,
            Type::OneOf(&Cloud::ALL),
            Value("global"),
        )
    },
    Key {
        meaning: "Overrides of the cloud's roots (proxies, tests); a token's audience is its root (`{root}/.default`), and a token is sent nowhere else.",
        ..key("endpoints", Tenant, Type::Section, Unset)
    },
    Key {
        meaning: "The token authority root.",
        ..key(
            "endpoints.login",
            Tenant,
            Type::Url,
            Derived("the cloud's"),
        )
    },
    Key {
        meaning: "The Graph root (the client appends `/v1.0/…`).",
        ..key(
            "endpoints.graph",
            Tenant,
            Type::Url,
            Derived("the cloud's"),
        )
    },
    Key {
        rules: "required with `activity.enabled` in a cloud without a published Management API host (`china`)",
        meaning: "The Management Activity API root (the client appends `/api/v1.0/…`).",
        ..key(
            "endpoints.management",
            Tenant,
            Type::Url,
            Derived("the cloud's"),
        )
    },
    // ------------------------------------------------------ service_health
    Key {
        meaning: "Service health: Graph `healthOverviews` and `issues`.",
        ..key("service_health", Collector, Type::Section, Unset)
    },
    Key {
        meaning: "Run the collector.",
        example: "false",
        ..key("service_health.enabled", Collector, Type::Bool, Value("true"))
    },
    Key {
        bounds: at_most("24h"),
        meaning: "Time between refreshes.",
        example: "2m",
        ..key(
            "service_health.interval",
            Collector,
            Type::Duration,
            Value("1m"),
        )
    },
    Key {
        meaning: "Which services to export, by their `healthOverviews` id (compared case-insensitively).",
        ..key("service_health.services", Collector, Type::Section, Unset)
    },
    Key {
        meaning: "Export only these services; empty: every service.",
        example: "[Exchange]",
        ..key(
            "service_health.services.include",
            Collector,
            Type::Strings,
            Value("[]"),
        )
    },
    Key {
        meaning: "Never export these services (wins over `include`).",
        example: "[yammer]",
        ..key(
            "service_health.services.exclude",
            Collector,
            Type::Strings,
            Value("[]"),
        )
    },
    Key {
        bounds: between("1d", "90d"),
        meaning: "The track record's rolling window: availability, impact, issues started and resolved, time to resolve and post-incident reviews per service are computed over the last this long from Graph's issue list (resolved issues included). See docs/track-record.md.",
        example: "7d",
        ..key(
            "service_health.history_window",
            Collector,
            Type::Duration,
            Value("30d"),
        )
    },
    // ------------------------------------------------------------ messages
    Key {
        meaning: "Message-center posts (Graph `messages`).",
        ..key("messages", Collector, Type::Section, Unset)
    },
    Key {
        meaning: "Run the collector.",
        example: "false",
        ..key("messages.enabled", Collector, Type::Bool, Value("true"))
    },
    Key {
        bounds: at_most("24h"),
        meaning: "Time between refreshes.",
        example: "10m",
        ..key("messages.interval", Collector, Type::Duration, Value("5m"))
    },
    // ----------------------------------------------------- app_credentials
    Key {
        meaning: "Expiry of the app registration's own client secrets and certificates (Graph `applications(appId='…')`; needs `Application.Read.All`).",
        ..key("app_credentials", Collector, Type::Section, Unset)
    },
    Key {
        meaning: "Run the collector.",
        example: "true",
        ..key(
            "app_credentials.enabled",
            Collector,
            Type::Bool,
            Value("false"),
        )
    },
    Key {
        bounds: at_most("24h"),
        meaning: "Time between refreshes.",
        example: "2h",
        ..key(
            "app_credentials.interval",
            Collector,
            Type::Duration,
            Value("1h"),
        )
    },
    // ------------------------------------------------------------ activity
    Key {
        meaning: "The audit feed (Office 365 Management Activity API): see docs/activity.md.",
        ..key("activity", Collector, Type::Section, Unset)
    },
    Key {
        meaning: "Run the feed.",
        example: "true",
        ..key("activity.enabled", Collector, Type::Bool, Value("false"))
    },
    Key {
        bounds: at_most("24h"),
        meaning: "Time between polls.",
        example: "2m",
        ..key("activity.interval", Collector, Type::Duration, Value("1m"))
    },
    Key {
        rules: "not empty",
        meaning: "The content types to follow.",
        example: "[DLP.All]",
        ..key(
            "activity.content_types",
            Collector,
            Type::ListOf(&CONTENT_TYPES),
            Derived("all five"),
        )
    },
    Key {
        meaning: "Start missing or disabled subscriptions (at most once per 15 min per type).",
        example: "true",
        ..key(
            "activity.start_subscriptions",
            Collector,
            Type::Bool,
            Value("false"),
        )
    },
    Key {
        rules: "a GUID (Microsoft: the tenant's GUID; an ISV's own tenant GUID)",
        meaning: "`PublisherIdentifier` sent on every call (the tenant's own quota).",
        example: "11111111-2222-3333-4444-555555555555",
        ..key(
            "activity.publisher_id",
            Collector,
            Type::Guid,
            Derived("the tenant GUID (a domain `tenant_id` is resolved at start)"),
        )
    },
    Key {
        bounds: at_most("7d"),
        meaning: "How far back the first start lists (Microsoft keeps content 7 days).",
        example: "2d",
        ..key("activity.lookback", Collector, Type::Duration, Value("1d"))
    },
    Key {
        bounds: at_most("24h"),
        meaning: "Trailing window re-listed every poll, for content Microsoft indexes late.",
        example: "2h",
        ..key("activity.overlap", Collector, Type::Duration, Value("1h"))
    },
    Key {
        bounds: between("1", "64"),
        meaning: "Blob downloads in flight per tenant.",
        example: "8",
        ..key("activity.concurrency", Collector, Type::Count, Value("4"))
    },
    Key {
        bounds: between("1", "2000"),
        meaning: "Management API request budget per tenant (Microsoft's baseline is about 2,000 a minute).",
        example: "600",
        ..key(
            "activity.requests_per_minute",
            Collector,
            Type::Count,
            Value("1500"),
        )
    },
    Key {
        rules: "unique across tenants; under `defaults`: ignored",
        meaning: "Cursors, backlog and the marks of the id log and the sink, saved every 2 s when something changed, so a restart resumes exactly; locked while running.",
        example: "/var/lib/m365-exporter/all.json",
        ..key("activity.state_file", TenantOnly, Type::Path, Unset)
    },
    Key {
        rules: "unique across tenants; under `defaults`: ignored",
        meaning: "NDJSON file: each new record once, as Microsoft sent it; locked while running.",
        example: "/var/log/m365/all.ndjson",
        ..key("activity.output", TenantOnly, Type::Path, Unset)
    },
    Key {
        rules: "owner read and write required; no execute bits; not world-writable",
        meaning: "Mode of the files the feed creates (output, state file, id log, quarantine, locks), whatever the umask; directories it creates get `x` where this reads (`0600` → `0700`). `\"0640\"` lets a group read the audit records.",
        example: "'0640'",
        ..key("activity.file_mode", Collector, Type::FileMode, Value("'0600'"))
    },
    Key {
        meaning: "`Operation` values that get their own `operation` label (others count as `other`).",
        example: "[FileDeleted]",
        ..key("activity.operations", Collector, Type::Strings, Value("[]"))
    },
    Key {
        bounds: between("1MiB", "4294967295"),
        rules: "4GiB less one byte",
        meaning: "Bytes of audit blobs held at once (downloaded, not yet written).",
        example: "128MiB",
        ..key(
            "activity.max_inflight_bytes",
            Collector,
            Type::Size,
            Value("64MiB"),
        )
    },
    Key {
        rules: "under `defaults`: refused (the address and authId are each tenant's own)",
        meaning: "Notifications as a second source of content beside polling: see docs/activity.md.",
        example: "{address: \"https://e.example/webhook/all\", auth_id: x}",
        ..key("activity.webhook", TenantOnly, Type::Section, Unset)
    },
    Key {
        rules: "`https://` (Microsoft refuses another scheme, AF20021); `http://` only with `endpoints.management` set",
        meaning: "The URL Microsoft posts to, ending in `/webhook/<tenant name>` (behind a proxy, the proxy's public URL).",
        ..key("activity.webhook.address", TenantOnly, Type::Url, Required)
    },
    Key {
        rules: "exactly one of `auth_id`, `auth_id_file`; printable ASCII without spaces",
        meaning: "The authId Microsoft sends back in `Webhook-AuthID`, inline (discouraged); never logged, shown as `<redacted>` by `check-config`.",
        ..key("activity.webhook.auth_id", TenantOnly, Type::Secret, Unset)
    },
    Key {
        rules: "exactly one of `auth_id`, `auth_id_file`",
        meaning: "File holding the authId; read once at load.",
        ..key("activity.webhook.auth_id_file", TenantOnly, Type::Path, Unset)
    },
    Key {
        bounds: at_most("365d"),
        meaning: "Sent as the webhook's expiration (now + this); unset: Microsoft's default.",
        ..key(
            "activity.webhook.expiration",
            TenantOnly,
            Type::Duration,
            Unset,
        )
    },
    Key {
        bounds: at_most("24h"),
        rules: "at least `activity.interval`",
        meaning: "Listing interval while a content type's notifications arrive.",
        ..key(
            "activity.webhook.poll_interval",
            TenantOnly,
            Type::Duration,
            Value("15m"),
        )
    },
    Key {
        bounds: at_most("7d"),
        meaning: "A content type without a notification for this long is listed every `activity.interval` again.",
        ..key(
            "activity.webhook.silence",
            TenantOnly,
            Type::Duration,
            Value("30m"),
        )
    },
    Key {
        rules: "global cloud only: with `activity.enabled` in another cloud, refused (exit 2)",
        meaning: "Completeness proven against Microsoft Purview's Audit Log Query API (Graph; needs `AuditLogsQuery.Read.All`), and what is missing repaired: see docs/activity.md.",
        ..key("activity.reconcile", Collector, Type::Section, Unset)
    },
    Key {
        meaning: "Reconcile the feed.",
        example: "true",
        ..key(
            "activity.reconcile.enabled",
            Collector,
            Type::Bool,
            Value("false"),
        )
    },
    Key {
        bounds: between("10s", "24h"),
        meaning: "Time between runs; a run reconciles every window that is due, one query at a time.",
        example: "3h",
        ..key(
            "activity.reconcile.interval",
            Collector,
            Type::Duration,
            Value("6h"),
        )
    },
    Key {
        bounds: between("0s", "6d"),
        meaning: "How long after a window ends it is reconciled (Microsoft backfills records late).",
        example: "12h",
        ..key(
            "activity.reconcile.settle",
            Collector,
            Type::Duration,
            Value("24h"),
        )
    },
    Key {
        bounds: between("5m", "24h"),
        meaning: "The span of one audit-log query (a truncated answer is split in halves).",
        example: "2h",
        ..key(
            "activity.reconcile.window",
            Collector,
            Type::Duration,
            Value("1h"),
        )
    },
    Key {
        meaning: "Re-list a window with missing records, then write those still missing from the query's `auditData` (each once).",
        example: "false",
        ..key(
            "activity.reconcile.repair",
            Collector,
            Type::Bool,
            Value("true"),
        )
    },
];

/// The environment variables the configuration reads without
/// `--config.file`, in the order they are consulted.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "AZURE_TENANT_ID",
        "`tenant_id` of the one tenant (named `default`)",
    ),
    ("AZURE_CLIENT_ID", "its `client_id`"),
    ("AZURE_CLIENT_SECRET", "the client secret (first choice)"),
    (
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "else a certificate: `client_certificate_path`",
    ),
    (
        "AZURE_FEDERATED_TOKEN_FILE",
        "else workload identity: `federated_token_file`",
    ),
    ("AZURE_AUTHORITY_HOST", "optional: `endpoints.login`"),
];

impl Key {
    /// Where the key is written, as a reader looks it up.
    pub fn written(&self) -> String {
        match self.scope {
            Top => self.path.to_string(),
            Tenant | TenantOnly => format!("tenants[].{}", self.path),
            Collector => format!("[tenants[] | defaults].{}", self.path),
        }
    }

    /// The bounds and rules as one phrase.
    pub fn limits(&self) -> String {
        let bounds = match (self.bounds.min, self.bounds.max) {
            (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
            (None, Some(hi)) => format!("at most {hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (None, None) => String::new(),
        };
        match (bounds.is_empty(), self.rules.is_empty()) {
            (_, true) => bounds,
            (true, false) => self.rules.to_string(),
            (false, false) => format!("{bounds}; {}", self.rules),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_duration, Config, ConfigError};
    use serde_norway::{Mapping, Value};
    use std::collections::BTreeSet;

    const BASE: &str = r#"
tenants:
  - name: contoso
    tenant_id: 8f3c2a1e-1111-2222-3333-444455556666
    client_id: 0c1d2e3f-1111-2222-3333-444455556666
    client_secret: s3cr3t-value
    endpoints: {login: "http://127.0.0.1:1", graph: "http://127.0.0.1:1", management: "http://127.0.0.1:1"}
"#;

    const WEBHOOK: &str = "{address: \"https://e.example/webhook/contoso\", auth_id: x}";

    fn base() -> Value {
        serde_norway::from_str(BASE).unwrap()
    }

    /// `base` with a webhook, for the keys under it.
    fn base_for(k: &Key) -> Value {
        let mut doc = base();
        if k.path.starts_with("activity.webhook.") {
            set(&mut doc, "tenants[].activity.webhook", yaml_value(WEBHOOK));
        }
        doc
    }

    fn yaml_value(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    /// The mapping at `path` (`tenants[]` is the first tenant), made on the way.
    fn at<'a>(doc: &'a mut Value, path: &str) -> &'a mut Mapping {
        let mut cur = doc;
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            cur = match seg.strip_suffix("[]") {
                Some(list) => {
                    let m = cur.as_mapping_mut().unwrap();
                    &mut m.get_mut(list).unwrap().as_sequence_mut().unwrap()[0]
                }
                None => {
                    let m = cur.as_mapping_mut().unwrap();
                    m.entry(Value::from(seg))
                        .or_insert_with(|| Value::Mapping(Mapping::new()))
                }
            };
        }
        cur.as_mapping_mut().unwrap()
    }

    fn set(doc: &mut Value, path: &str, value: Value) {
        let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
        at(doc, parent).insert(Value::from(last), value);
    }

    fn parse(doc: &Value) -> Result<Config, ConfigError> {
        Config::parse(&serde_norway::to_string(doc).unwrap(), "schema.yml")
    }

    /// The value the parser filled in at `path` of the first tenant.
    fn effective(c: &Config, path: &str) -> Value {
        let mut v = serde_norway::to_value(&c.tenants[0]).unwrap();
        for seg in path.split('.') {
            v = v.get(seg).cloned().unwrap_or(Value::Null);
        }
        v
    }

    /// A value as the file would write it, for comparing: sizes in bytes,
    /// durations as `check-config` writes them.
    fn normal(k: &Key, v: &Value) -> Value {
        match (k.ty, v) {
            (Type::Size, Value::String(s)) => {
                Value::from(crate::config::activity::parse_size(s).unwrap() as u64)
            }
            // `24h` and `1d` are one duration.
            (Type::Duration, Value::String(s)) => {
                Value::from(crate::config::format_duration(parse_duration(s).unwrap()))
            }
            _ => v.clone(),
        }
    }

    /// Every mapping of the file: the top, `tenants[]`, and each section.
    fn mappings() -> Vec<String> {
        let mut out = vec![String::new(), "tenants[]".to_string()];
        for k in KEYS.iter().filter(|k| k.ty == Type::Section) {
            match k.scope {
                Top => out.push(k.path.to_string()),
                Tenant | TenantOnly => out.push(format!("tenants[].{}", k.path)),
                Collector => {
                    out.push(format!("tenants[].{}", k.path));
                    out.push(format!("defaults.{}", k.path));
                }
            }
        }
        out
    }

    /// What the schema lists directly under `mapping`.
    fn listed(mapping: &str) -> BTreeSet<String> {
        // The scopes that can be written there, and the mapping's path
        // below `tenants[]` or `defaults`.
        let (scopes, within): (&[Scope], &str) = if mapping.is_empty() {
            (&[Top], "")
        } else if let Some(rest) = mapping.strip_prefix("tenants[]") {
            (&[Tenant, Collector, TenantOnly], rest)
        } else if let Some(rest) = mapping.strip_prefix("defaults") {
            // The same sections as a tenant's: its keys are all read,
            // the tenant-only ones then refused or ignored.
            (&[Collector, TenantOnly], rest)
        } else {
            panic!("{mapping:?} is not a mapping of the file")
        };
        let within = within.trim_start_matches('.');
        KEYS.iter()
            .filter(|k| scopes.contains(&k.scope))
            .filter_map(|k| {
                let rest = match within.is_empty() {
                    true => k.path,
                    false => k.path.strip_prefix(within)?.strip_prefix('.')?,
                };
                (!rest.contains('.')).then(|| rest.to_string())
            })
            .collect()
    }

    /// What the parser accepts under `mapping`: the names serde lists when
    /// an unknown key is written there.
    fn accepted(mapping: &str) -> BTreeSet<String> {
        let mut doc = base();
        if mapping.starts_with("tenants[].activity.webhook") {
            set(&mut doc, "tenants[].activity.webhook", yaml_value(WEBHOOK));
        }
        at(&mut doc, mapping).insert(Value::from("zz_probe"), Value::from(1));
        let e = parse(&doc).expect_err(mapping);
        let (_, expected) = e
            .reason
            .split_once("unknown field `zz_probe`")
            .unwrap_or_else(|| panic!("{mapping}: {e}"));
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_key_the_parser_accepts_is_listed_and_no_other() {
        for m in mappings() {
            assert_eq!(listed(&m), accepted(&m), "keys under {m:?}");
        }
        // Each key once, and each section's parent listed.
        let paths: BTreeSet<(&str, bool)> = KEYS.iter().map(|k| (k.path, k.scope == Top)).collect();
        assert_eq!(paths.len(), KEYS.len(), "a key listed twice");
        assert!(
            KEYS.iter().all(|k| !k.meaning.is_empty()),
            "a key without meaning"
        );
    }

    #[test]
    fn defaults_are_what_the_parser_fills_in() {
        for k in KEYS.iter().filter(|k| k.scope != Top) {
            let KeyDefault::Value(default) = k.default else {
                continue;
            };
            let c = parse(&base_for(k)).unwrap();
            assert_eq!(
                normal(k, &effective(&c, k.path)),
                normal(k, &yaml_value(default)),
                "default of {}",
                k.path
            );
        }
    }

    /// One step past a bound, in the key's unit (1 s, 1, 1 byte).
    fn beyond(k: &Key, bound: &str, up: bool) -> String {
        match k.ty {
            Type::Duration => {
                let d = parse_duration(bound).unwrap();
                let step = std::time::Duration::from_secs(1);
                crate::config::format_duration(if up { d + step } else { d - step })
            }
            Type::Count => {
                let n: i64 = bound.parse().unwrap();
                (if up { n + 1 } else { n - 1 }).to_string()
            }
            Type::Size => {
                let n = crate::config::activity::parse_size(bound).unwrap() as u64;
                (if up { n + 1 } else { n - 1 }).to_string()
            }
            other => panic!("{}: bounds on a {other:?}", k.path),
        }
    }

    #[test]
    fn bounds_are_where_the_parser_starts_refusing() {
        for k in KEYS.iter().filter(|k| k.bounds != NO_BOUNDS) {
            let with = |v: &str| {
                let mut doc = base_for(k);
                set(&mut doc, &format!("tenants[].{}", k.path), yaml_value(v));
                parse(&doc)
            };
            for (bound, up) in [(k.bounds.min, false), (k.bounds.max, true)] {
                let Some(bound) = bound else { continue };
                with(bound).unwrap_or_else(|e| panic!("{}: {bound} refused: {e}", k.path));
                if !up && bound == "0s" {
                    // Nothing below zero to refuse.
                    continue;
                }
                let past = beyond(k, bound, up);
                let e = with(&past).expect_err(&format!("{}: {past} accepted", k.path));
                assert_eq!(e.key, format!("tenants[0].{}", k.path), "{past}: {e}");
            }
            if k.ty == Type::Duration && k.bounds.min.is_none() {
                let e = with("0s").expect_err(k.path);
                assert_eq!(e.key, format!("tenants[0].{}", k.path));
            }
        }
    }

    #[test]
    fn defaults_section_holds_exactly_the_collector_keys() {
        for k in KEYS.iter().filter(|k| !k.example.is_empty()) {
            let mut doc = base();
            set(
                &mut doc,
                &format!("defaults.{}", k.path),
                yaml_value(k.example),
            );
            let example = normal(k, &yaml_value(k.example));
            match (k.scope, parse(&doc)) {
                (Collector, Ok(c)) => {
                    assert_eq!(normal(k, &effective(&c, k.path)), example, "{}", k.path)
                }
                (Collector, Err(e)) => panic!("defaults.{}: {e}", k.path),
                // Refused, or without effect.
                (TenantOnly, Ok(c)) => {
                    assert_ne!(normal(k, &effective(&c, k.path)), example, "{}", k.path)
                }
                (TenantOnly, Err(e)) => assert!(e.key.starts_with("tenants[0]"), "{e}"),
                (Top | Tenant, _) => panic!("{}: examples are for collector keys", k.path),
            }
        }
    }

    #[test]
    fn environment_lists_what_the_environment_mode_reads() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t").unwrap();
        let value = |k: &str| match k {
            "AZURE_TENANT_ID" => "contoso.onmicrosoft.com".to_string(),
            "AZURE_CLIENT_ID" => "0c1d2e3f-1111-2222-3333-444455556666".to_string(),
            "AZURE_AUTHORITY_HOST" => "https://login.microsoftonline.com".to_string(),
            "AZURE_FEDERATED_TOKEN_FILE" => token.display().to_string(),
            _ => "x".to_string(),
        };
        // Without a secret or a certificate every variable is asked for, in order.
        let asked = std::cell::RefCell::new(Vec::new());
        Config::from_env(|k| {
            asked.borrow_mut().push(k.to_string());
            match k {
                "AZURE_CLIENT_SECRET" | "AZURE_CLIENT_CERTIFICATE_PATH" => None,
                _ => Some(value(k)),
            }
        })
        .unwrap();
        let listed: Vec<String> = ENVIRONMENT.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(asked.into_inner(), listed);
    }
}
