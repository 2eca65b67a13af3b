//! The collector sections (`service_health`, `messages`, `app_credentials`;
//! `activity` has its own module): `enabled` and `interval`, the service
//! selection and the track record's window, and the `defaults` section that
//! holds them for every tenant.

use super::activity::RawActivity;
use super::error::{ConfigError, ErrFn};
use super::values::{duration, history_window, serialize_duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `defaults`: the collector sections, merged into every tenant (the
/// tenant's own value wins, key by key).
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollectors {
    pub(super) service_health: Option<RawServiceHealth>,
    pub(super) messages: Option<RawCollector>,
    pub(super) activity: Option<RawActivity>,
    pub(super) app_credentials: Option<RawCollector>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollector {
    enabled: Option<bool>,
    interval: Option<String>,
}

/// `service_health` takes the collector keys plus the service selection
/// and the track record's window (a struct of its own, so
/// `messages: {services: …}` stays an unknown key).
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServiceHealth {
    enabled: Option<bool>,
    interval: Option<String>,
    services: Option<RawServices>,
    history_window: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServices {
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
}

/// The keys every collector section has.
pub(super) trait RawCollectorKeys {
    fn enabled(&self) -> Option<bool>;
    fn interval(&self) -> Option<String>;
}

impl RawCollectorKeys for RawCollector {
    fn enabled(&self) -> Option<bool> {
        self.enabled
    }
    fn interval(&self) -> Option<String> {
        self.interval.clone()
    }
}

impl RawCollectorKeys for RawServiceHealth {
    fn enabled(&self) -> Option<bool> {
        self.enabled
    }
    fn interval(&self) -> Option<String> {
        self.interval.clone()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CollectorConfig {
    pub enabled: bool,
    #[serde(serialize_with = "serialize_duration")]
    pub interval: Duration,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceHealthConfig {
    pub enabled: bool,
    #[serde(serialize_with = "serialize_duration")]
    pub interval: Duration,
    pub services: ServiceSelection,
    /// The track record's rolling window (`m365_service_availability_ratio`
    /// and its neighbours).
    #[serde(serialize_with = "serialize_duration")]
    pub history_window: Duration,
}

/// `service_health.history_window` when not written: a month, the period
/// of service reviews and of Microsoft's SLA.
pub const DEFAULT_HISTORY_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Which services (by healthOverviews `id`) a tenant exports. `include`
/// empty means every service; `exclude` wins over `include`. Ids compare
/// case-insensitively (Microsoft writes `yammer`, people write `Yammer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceSelection {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl ServiceSelection {
    /// Whether every service passes (no lists given).
    pub fn is_all(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn wants(&self, service_id: &str) -> bool {
        let listed = |l: &[String]| l.iter().any(|s| s.eq_ignore_ascii_case(service_id));
        (self.include.is_empty() || listed(&self.include)) && !listed(&self.exclude)
    }

    /// Every id named in either list, as written.
    pub fn named(&self) -> impl Iterator<Item = &str> {
        self.include.iter().chain(&self.exclude).map(String::as_str)
    }
}

pub(super) fn collector<R: RawCollectorKeys>(
    name: &str,
    own: Option<&R>,
    def: Option<&R>,
    enabled: bool,
    interval: Duration,
    err: &ErrFn,
) -> Result<CollectorConfig, ConfigError> {
    let interval = match own
        .and_then(R::interval)
        .or_else(|| def.and_then(R::interval))
    {
        Some(v) => duration(&format!("{name}.interval"), &v, err)?,
        None => interval,
    };
    let enabled = own
        .and_then(R::enabled)
        .or_else(|| def.and_then(R::enabled))
        .unwrap_or(enabled);
    Ok(CollectorConfig { enabled, interval })
}

/// `service_health`: the collector keys, and the service selection. Each
/// list set on the tenant replaces the defaults' list of the same name
/// (lists are not concatenated; `include: []` on a tenant means all again).
pub(super) fn service_health(
    own: Option<&RawServiceHealth>,
    def: Option<&RawServiceHealth>,
    err: &ErrFn,
) -> Result<ServiceHealthConfig, ConfigError> {
    let CollectorConfig { enabled, interval } = collector(
        "service_health",
        own,
        def,
        true,
        Duration::from_secs(60),
        err,
    )?;
    let list = |key: &str, f: fn(&RawServices) -> Option<Vec<String>>| {
        let pick = |r: Option<&RawServiceHealth>| r.and_then(|r| r.services.as_ref()).and_then(f);
        let ids = pick(own).or_else(|| pick(def)).unwrap_or_default();
        match ids
            .iter()
            .find(|id| id.trim().is_empty() || id.trim() != id.as_str())
        {
            Some(bad) => Err(err(
                &format!("service_health.services.{key}"),
                format!(
                    "{bad:?} is not a service id (as healthOverviews names them, e.g. Exchange)"
                ),
            )),
            None => Ok(ids),
        }
    };
    let window = own
        .and_then(|r| r.history_window.clone())
        .or_else(|| def.and_then(|r| r.history_window.clone()));
    let history_window = match window {
        Some(v) => history_window("service_health.history_window", &v, err)?,
        None => DEFAULT_HISTORY_WINDOW,
    };
    Ok(ServiceHealthConfig {
        enabled,
        interval,
        services: ServiceSelection {
            include: list("include", |s| s.include.clone())?,
            exclude: list("exclude", |s| s.exclude.clone())?,
        },
        history_window,
    })
}
