//! The metric catalog: every family the exporter serves, with its name,
//! type, labels and HELP, in the one table below. Everything else reads it:
//! the snapshot writer and the scrape walk ([`Family`]: headers are built
//! here at compile time, so a scrape still copies a `&'static str`), the
//! live counters and histograms ([`LiveFamily`], registered by
//! [`super::Live`]), `docs/metrics.md` ([`markdown`], checked by
//! `tests/docs_metrics.rs`), and the dashboard and alert tests.
//!
//! To add a metric: add a row here (a snapshot family if a collector
//! renders it at refresh, a live one if it is counted as things happen),
//! write its samples, and regenerate the docs with
//! `UPDATE_DOCS=1 cargo test --test docs_metrics`. `tests/metrics_catalog.rs`
//! scrapes a running exporter and fails on a served family, type or label
//! set that is not the catalog's.

use std::fmt::Write as _;

/// A family's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric family.
#[derive(Debug, PartialEq)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    /// Label names, in the order every sample writes them (a histogram's
    /// `_bucket` lines add `le`).
    pub labels: &'static [&'static str],
    /// The `# HELP` text, as served.
    pub help: &'static str,
    /// What docs/metrics.md says beyond HELP (label values, bounds, when a
    /// series is absent); may be empty.
    pub notes: &'static str,
    /// Upper bounds of a histogram's buckets (empty for other kinds).
    pub buckets: &'static [f64],
}

impl Def {
    /// Whether the family has a `tenant` label (else it is exporter-wide).
    pub fn per_tenant(&self) -> bool {
        self.labels.contains(&"tenant")
    }

    /// The series names a scrape shows for this family: the name itself,
    /// or a histogram's `_bucket`, `_sum` and `_count`.
    pub fn series_names(&self) -> Vec<String> {
        match self.kind {
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect(),
            _ => vec![self.name.to_string()],
        }
    }
}

macro_rules! kind {
    (counter) => {
        Kind::Counter
    };
    (gauge) => {
        Kind::Gauge
    };
    (histogram) => {
        Kind::Histogram
    };
}

macro_rules! buckets {
    () => {
        &[]
    };
    ($b:expr) => {
        $b
    };
}

/// One row as a `&'static Def` (a constant expression: promoted to a static).
macro_rules! def {
    ($kind:ident $name:literal [$($label:literal),*] $help:literal
        notes [$($notes:literal)?] buckets [$($buckets:expr)?]) => {
        &Def {
            name: $name,
            kind: kind!($kind),
            labels: &[$($label),*],
            help: $help,
            notes: concat!("" $(, $notes)?),
            buckets: buckets!($($buckets)?),
        }
    };
}

macro_rules! catalog {
    (
        snapshot {$(
            $s:ident: $skind:ident $sname:literal [$($slabel:literal),*]
                help $shelp:literal $(notes $snotes:literal)?;
        )*}
        live {$(
            $l:ident: $lkind:ident $lname:literal [$($llabel:literal),*]
                $(buckets $lbuckets:expr,)? help $lhelp:literal $(notes $lnotes:literal)?;
        )*}
        process {$(
            $p:ident: $pkind:ident $pname:literal
                help $phelp:literal $(notes $pnotes:literal)?;
        )*}
    ) => {
        /// The snapshot families: rendered by a collector once per refresh
        /// ([`super::SnapshotWriter`]), copied by each scrape; in
        /// exposition order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Family { $($s),* }

        impl Family {
            pub const ALL: &'static [Family] = &[$(Family::$s),*];

            pub fn def(self) -> &'static Def {
                match self {$(
                    Family::$s => def!($skind $sname [$($slabel),*] $shelp
                        notes [$($snotes)?] buckets []),
                )*}
            }

            pub fn name(self) -> &'static str {
                self.def().name
            }

            pub fn kind(self) -> Kind {
                self.def().kind
            }

            pub fn help(self) -> &'static str {
                self.def().help
            }

            pub fn labels(self) -> &'static [&'static str] {
                self.def().labels
            }

            /// `# HELP` and `# TYPE` lines, put together at compile time.
            pub fn header(self) -> &'static str {
                match self {$(
                    Family::$s => concat!(
                        "# HELP ", $sname, " ", $shelp, "\n# TYPE ", $sname, " ",
                        stringify!($skind), "\n"
                    ),
                )*}
            }
        }

        /// The live families: counters, histograms and the few gauges that
        /// change between refreshes, updated as things happen
        /// ([`super::Live`] registers each once, in this order).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum LiveFamily { $($l),* }

        impl LiveFamily {
            pub const ALL: &'static [LiveFamily] = &[$(LiveFamily::$l),*];

            pub fn def(self) -> &'static Def {
                match self {$(
                    LiveFamily::$l => def!($lkind $lname [$($llabel),*] $lhelp
                        notes [$($lnotes)?] buckets [$($lbuckets)?]),
                )*}
            }
        }

        /// The process families every Prometheus exporter serves (named,
        /// typed and helped as client_golang's process collector), read
        /// from `/proc/self` at scrape time ([`super::process`]); on
        /// `/metrics` only, without labels.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProcessFamily { $($p),* }

        impl ProcessFamily {
            pub const ALL: &'static [ProcessFamily] = &[$(ProcessFamily::$p),*];

            pub fn def(self) -> &'static Def {
                match self {$(
                    ProcessFamily::$p => def!($pkind $pname [] $phelp
                        notes [$($pnotes)?] buckets []),
                )*}
            }

            /// `# HELP` and `# TYPE` lines, put together at compile time.
            pub fn header(self) -> &'static str {
                match self {$(
                    ProcessFamily::$p => concat!(
                        "# HELP ", $pname, " ", $phelp, "\n# TYPE ", $pname, " ",
                        stringify!($pkind), "\n"
                    ),
                )*}
            }
        }
    };
}

/// Seconds; from 50 ms to a minute, for one HTTP request to Microsoft.
const REQUEST_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// contentCreated − CreationTime, from a minute to the 7 days Microsoft
/// keeps content available.
const RECORD_DELAY_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 43_200.0, 86_400.0, 172_800.0,
    345_600.0, 604_800.0,
];

catalog! {
    snapshot {
        BuildInfo: gauge "m365_exporter_build_info" ["version", "revision"]
            help "Build information of m365-exporter; always 1."
            notes "`revision` is the git commit the binary was built from (`unknown` outside a checkout). Exporter-wide: served on `/metrics`, not on `/probe` (a probe answers for its target only).";
        CollectorSuccess: gauge "m365_collector_success" ["tenant", "collector"]
            help "Whether the last refresh of a collector succeeded (1) or failed (0)."
            notes "`collector` is one of `service_health`, `messages`, `activity`, `app_credentials`. For `activity`: 1 when every configured content type listed completely in its last poll and the state file is being written. A failing collector keeps its last good figures for up to three intervals, then drops them.";
        CollectorLastSuccess: gauge "m365_collector_last_success_timestamp_seconds" ["tenant", "collector"]
            help "Unix time of the last successful refresh of a collector.";
        CollectorDuration: gauge "m365_collector_duration_seconds" ["tenant", "collector"]
            help "Wall-clock duration of the last refresh of a collector, in seconds.";
        CollectorInterval: gauge "m365_collector_interval_seconds" ["tenant", "collector"]
            help "Configured refresh interval of a collector, in seconds (for staleness alerts)."
            notes "Present from the start, before the first refresh (`M365CollectorStale` compares against it).";
        CollectorStart: gauge "m365_collector_start_timestamp_seconds" ["tenant", "collector"]
            help "Unix time a collector started: with its tenant, at process start or when a reload added or changed the tenant."
            notes "Present from the start, before the first refresh (`M365CollectorNeverSucceeded` compares it with the interval while no success was recorded).";
        ServiceInfo: gauge "m365_service_info" ["tenant", "service_id", "service_name"]
            help "Microsoft 365 service known to the tenant's service health; always 1."
            notes "One series per exported service (`service_health.services` leaves services out).";
        ServiceStatus: gauge "m365_service_status" ["tenant", "service_id", "status"]
            help "Current Graph serviceHealthStatus of a service (value verbatim in the status label); always 1."
            notes "One series per service.";
        ServiceOperational: gauge "m365_service_operational" ["tenant", "service_id"]
            help "Whether a service's current status counts as operational (1) or not (0)."
            notes "Operational statuses: serviceOperational, serviceRestored, falsePositive, postIncidentReviewPublished, resolved, resolvedExternal, mitigated, mitigatedExternal.";
        IssuesActive: gauge "m365_service_issues_active" ["tenant", "service_id", "classification"]
            help "Unresolved service health issues, by service and classification."
            notes "0-valued series for `incident` and `advisory` on every service.";
        IssueInfo: gauge "m365_service_issue_info" ["tenant", "issue_id", "service_id", "classification", "status", "origin", "feature_group", "title"]
            help "An unresolved service health issue; always 1."
            notes "One series per unresolved issue.";
        IssueStart: gauge "m365_service_issue_start_timestamp_seconds" ["tenant", "issue_id"]
            help "Unix time an unresolved issue started.";
        IssueLastUpdate: gauge "m365_service_issue_last_update_timestamp_seconds" ["tenant", "issue_id"]
            help "Unix time an unresolved issue was last modified.";
        HistoryWindow: gauge "m365_service_history_window_seconds" ["tenant"]
            help "The track record's rolling window (service_health.history_window), in seconds."
            notes "The track-record families below are computed over this window from Graph's issue list, resolved issues included (docs/track-record.md).";
        ImpactSeconds: gauge "m365_service_impact_seconds" ["tenant", "service_id", "classification"]
            help "Seconds of the track-record window covered by at least one issue of the classification (parallel issues counted once; falsePositive issues count nowhere)."
            notes "`classification` is `incident` or `advisory`; both present, 0 when quiet, for every exported service.";
        AvailabilityRatio: gauge "m365_service_availability_ratio" ["tenant", "service_id"]
            help "Share of the track-record window without an incident: 1 - incident impact seconds / window seconds."
            notes "1 for a service without incidents in the window (every exported service has a series). Microsoft's SLA and service credits are computed from Microsoft's own figures, not from this.";
        IssuesStarted: gauge "m365_service_issues_started" ["tenant", "service_id", "classification"]
            help "Issues (incidents, advisories) whose start lies in the track-record window."
            notes "0-valued series for `incident` and `advisory` on every exported service.";
        IssuesResolved: gauge "m365_service_issues_resolved" ["tenant", "service_id", "classification"]
            help "Resolved issues whose end lies in the track-record window."
            notes "0-valued series for `incident` and `advisory` on every exported service.";
        TimeToResolveMean: gauge "m365_service_time_to_resolve_mean_seconds" ["tenant", "service_id", "classification"]
            help "Mean end - start of the issues resolved in the track-record window, in seconds."
            notes "Absent when none was resolved in the window.";
        TimeToResolveMax: gauge "m365_service_time_to_resolve_max_seconds" ["tenant", "service_id", "classification"]
            help "Longest end - start of the issues resolved in the track-record window, in seconds."
            notes "Absent when none was resolved in the window.";
        PostIncidentReviews: gauge "m365_service_post_incident_reviews" ["tenant", "service_id"]
            help "Issues of the track-record window whose status is postIncidentReviewPublished (Microsoft published a post-incident review)."
            notes "0 for every exported service without one.";
        Messages: gauge "m365_service_messages" ["tenant", "category", "severity"]
            help "Message-center posts currently listed, by category and severity."
            notes "0 for every documented (category, severity) pair.";
        MessagesMajorChange: gauge "m365_service_messages_major_change" ["tenant", "severity"]
            help "Message-center posts currently listed that announce a major change, by severity.";
        MessagesActionRequired: gauge "m365_service_messages_action_required" ["tenant", "severity"]
            help "Message-center posts whose action-required deadline is in the future, by severity.";
        MessagesNextAction: gauge "m365_service_message_next_action_required_timestamp_seconds" ["tenant"]
            help "Unix time of the soonest future action-required deadline among message-center posts."
            notes "Absent when no post has a deadline ahead.";
        AppCredentialExpiry: gauge "m365_app_credential_expiry_timestamp_seconds" ["tenant", "type", "key_id"]
            help "Unix time a client secret (type=secret) or certificate (type=certificate) of the exporter's own app registration expires."
            notes "Collector `app_credentials`. `key_id` is the credential's GUID (bounded by the app's own credentials).";
        ActivitySubscription: gauge "m365_activity_subscription_enabled" ["tenant", "content_type"]
            help "Whether the Management Activity API subscription for a content type is enabled (1) or not (0).";
        ActivityBacklog: gauge "m365_activity_backlog_blobs" ["tenant", "content_type"]
            help "Audit content blobs listed but not yet downloaded.";
        ActivityBlobLag: gauge "m365_activity_blob_lag_seconds" ["tenant", "content_type"]
            help "Seconds between now (at scrape time) and contentCreated of the oldest blob not yet downloaded; 0 when none."
            notes "Keeps growing while the feed is stuck.";
        ActivityOldestPending: gauge "m365_activity_oldest_pending_content_created_timestamp_seconds" ["tenant", "content_type"]
            help "Unix time of contentCreated of the oldest blob not yet downloaded.";
        ActivityListedUntil: gauge "m365_activity_listed_until_timestamp_seconds" ["tenant", "content_type"]
            help "Unix time of the end of the last content window listed completely (the cursor).";
        ActivityLastError: gauge "m365_activity_last_error_timestamp_seconds" ["tenant", "content_type"]
            help "Unix time of the last failed Management API call (or unparsable blob) for a content type.";
        ActivityWebhookEnabled: gauge "m365_activity_webhook_enabled" ["tenant", "content_type"]
            help "Whether the content type's subscription has this exporter's webhook registered and enabled (1) or not (0); only for tenants with activity.webhook.";
        ActivityWebhookLastNotification: gauge "m365_activity_webhook_last_notification_timestamp_seconds" ["tenant", "content_type"]
            help "Unix time of the last webhook notification that named a content type.";
        ActivityLastContent: gauge "m365_activity_last_content_created_timestamp_seconds" ["tenant", "content_type"]
            help "Unix time of the newest contentCreated seen in the content listing.";
        ReconciledUntil: gauge "m365_activity_reconciled_until_timestamp_seconds" ["tenant"]
            help "Unix time of the end of the newest window reconciled against the Audit Log Query API without failure: the feed is proven complete (or repaired) up to here."
            notes "Only with `activity.reconcile`. Before the first window is reconciled: the start of the first window (nothing before it is in scope). See docs/activity.md.";
        ReconcileMissing: gauge "m365_activity_reconcile_missing_records" ["tenant", "content_type"]
            help "Records the Audit Log Query API holds that are still missing from the feed after repair, in the last reconciled window (0 when complete)."
            notes "Only with `activity.reconcile`; every configured content type, 0 until a window says otherwise.";
        ReconcileStalledAfter: gauge "m365_activity_reconcile_stalled_after_seconds" ["tenant"]
            help "How far m365_activity_reconciled_until_timestamp_seconds may trail now before reconciliation counts as stalled: settle + window + 2 x interval of activity.reconcile, in seconds."
            notes "Only with `activity.reconcile`; `M365AuditReconcileStalled` compares against it. A window is reconciled once it has wholly ended `settle` ago, and runs come every `interval`: the newest reconciled window normally trails now by up to settle + window + interval.";
    }
    live {
        ApiRequests: counter "m365_api_requests_total" ["tenant", "api", "operation", "code"]
            help "HTTP requests to Microsoft APIs, by API, operation and HTTP status (or `error` for transport failures)."
            notes "`api` is one of `graph`, `management`, `login`.";
        ApiDuration: histogram "m365_api_request_duration_seconds" ["api", "operation"]
            buckets REQUEST_BUCKETS,
            help "Duration of HTTP requests to Microsoft APIs, in seconds (all tenants together: bounded at any tenant count).";
        ApiThrottled: counter "m365_api_throttled_total" ["tenant", "api", "operation"]
            help "Requests Microsoft throttled (HTTP 429, or 403 with error AF429).";
        ApiErrors: counter "m365_api_errors_total" ["tenant", "api", "error_code"]
            help "Error answers from Microsoft APIs, by Microsoft error code."
            notes "`error_code` is bounded: a code Microsoft documents (`KNOWN_ERROR_CODES` in the source), `HTTP<status>` for an error answer without a known code, `MalformedResponse` for a 2xx body that cannot be parsed, `ForeignHost` for a link refused because it leaves the tenant's configured hosts, or `other`.";
        TokenRequests: counter "m365_auth_token_requests_total" ["tenant", "result"]
            help "OAuth token requests, by result (success, failure).";
        TokenExpiry: gauge "m365_auth_token_expiry_timestamp_seconds" ["tenant", "audience"]
            help "Unix time the cached access token for an audience expires.";
        CertificateExpiry: gauge "m365_auth_certificate_expiry_timestamp_seconds" ["tenant"]
            help "Unix time the tenant's client certificate expires (its notAfter)."
            notes "Only for tenants with a certificate credential.";
        ReloadSuccessful: gauge "m365_config_last_reload_successful" []
            help "Whether the last configuration reload attempt succeeded (1) or was refused (0).";
        ReloadSuccessTimestamp: gauge "m365_config_last_reload_success_timestamp_seconds" []
            help "Unix time of the last successful configuration load (start or reload).";
        ActivityListed: counter "m365_activity_content_listed_total" ["tenant", "content_type"]
            help "Audit content blobs listed or announced by a webhook notification (each contentId counted once).";
        ActivityFetched: counter "m365_activity_content_fetched_total" ["tenant", "content_type"]
            help "Audit content blobs downloaded (each contentId counted once).";
        ActivityExpired: counter "m365_activity_content_expired_total" ["tenant", "content_type"]
            help "Audit content blobs that expired before they could be downloaded: audit data lost.";
        ActivityRecords: counter "m365_activity_records_total" ["tenant", "content_type", "workload", "operation"]
            help "Audit records downloaded, by workload (and operation, for the configured allowlist only)."
            notes "`operation` is empty unless listed in `activity.operations`; `workload` is capped per tenant: Microsoft's known workloads, then the first 20 others, then `other` (one warning).";
        ActivityDuplicates: counter "m365_activity_records_duplicate_total" ["tenant", "content_type"]
            help "Audit records whose Id was seen before.";
        ActivityDelay: histogram "m365_activity_record_delay_seconds" ["tenant", "content_type"]
            buckets RECORD_DELAY_BUCKETS,
            help "Delay between an audit record's CreationTime and its blob's contentCreated, in seconds.";
        ActivityGaps: counter "m365_activity_listing_gaps_total" ["tenant", "content_type"]
            help "Blobs first listed with contentCreated older than the re-listed overlap window: content indexed too late to be seen in order."
            notes "See docs/activity.md: a sign that `activity.overlap` is too short for the tenant.";
        CollectorPanics: counter "m365_collector_panics_total" ["tenant", "collector"]
            help "Collector tasks caught panicking and restarted."
            notes "Restarted with backoff; absent until a collector has panicked.";
        ActivityQuarantined: counter "m365_activity_content_quarantined_total" ["tenant", "content_type"]
            help "Audit content blobs that never parsed, kept aside raw in the quarantine directory and taken out of the backlog.";
        WebhookNotifications: counter "m365_activity_webhook_notifications_total" ["tenant", "result"]
            help "Webhook POSTs and items received, by result: accepted and foreign count content items; validation, unauthorized, malformed, too_large and unknown_tenant count requests."
            notes "`unknown_tenant` (with `tenant` empty) counts requests for a tenant without a webhook; tenants with `activity.webhook` have every other result from the start, at 0.";
        ReconcileWindows: counter "m365_activity_reconcile_windows_total" ["tenant", "result"]
            help "Windows reconciled against the Audit Log Query API, by result: complete (nothing missing), repaired (missing records re-listed or written from the query), incomplete (records still missing after repair, or the reference truncated), failed (no usable answer; retried later)."
            notes "Only with `activity.reconcile`; the four results present from the start, at 0.";
        ReconcileRecords: counter "m365_activity_reconcile_records_total" ["tenant", "content_type", "result"]
            help "Records of reconciled windows by result: matched (the feed had delivered them), missing (it had not, when compared), repaired (written to the sink from the query's auditData)."
            notes "Only with `activity.reconcile`; every configured content type and result present from the start, at 0. Missing records recovered by re-listing the window count in m365_activity_listing_gaps_total and m365_activity_records_total, not as repaired.";
        ActivityDiscovered: counter "m365_activity_content_discovered_total" ["tenant", "content_type", "source"]
            help "Audit content blobs by the source that announced them first (webhook or listing); each contentId counted once."
            notes "`source` is `listing` or `webhook`; tenants with `activity.webhook` have both from the start, at 0.";
        ActivityStateResets: counter "m365_activity_state_resets_total" ["tenant", "reason"]
            help "Feed starts that could not resume exactly from the saved files, by reason: corrupt_state (state file set aside, resumed from the id log), id_log (id log shorter than saved), unknown_output (a file at output not the saved one, set aside)."
            notes "Each reason exposed at 0 once the tenant's feed has started with a state file or an output; see README's Security section.";
    }
    process {
        CpuSeconds: counter "process_cpu_seconds_total"
            help "Total user and system CPU time spent in seconds."
            notes "Linux only, like every `process_*` family: read from `/proc/self/stat` at scrape time; served on `/metrics`, not on `/probe`.";
        OpenFds: gauge "process_open_fds"
            help "Number of open file descriptors."
            notes "The entries of `/proc/self/fd`.";
        MaxFds: gauge "process_max_fds"
            help "Maximum number of open file descriptors."
            notes "The soft limit `RLIMIT_NOFILE`; alert on `process_open_fds / process_max_fds`.";
        VirtualMemory: gauge "process_virtual_memory_bytes"
            help "Virtual memory size in bytes.";
        VirtualMemoryMax: gauge "process_virtual_memory_max_bytes"
            help "Maximum amount of virtual memory available in bytes."
            notes "The soft limit `RLIMIT_AS`; 18446744073709552000 (2^64) when unlimited, as client_golang serves it.";
        ResidentMemory: gauge "process_resident_memory_bytes"
            help "Resident memory size in bytes.";
        StartTime: gauge "process_start_time_seconds"
            help "Start time of the process since unix epoch in seconds."
            notes "Boot time plus the process's start in clock ticks (1/100 s); `changes()` over it counts restarts (`M365ExporterRestarting`).";
    }
}

/// Every family of the catalog: the snapshot families, the live ones, then
/// the process ones.
pub fn all() -> impl Iterator<Item = &'static Def> {
    Family::ALL
        .iter()
        .map(|f| f.def())
        .chain(LiveFamily::ALL.iter().map(|f| f.def()))
        .chain(ProcessFamily::ALL.iter().map(|f| f.def()))
}

/// The family named `name`, if the catalog has it.
pub fn find(name: &str) -> Option<&'static Def> {
    all().find(|d| d.name == name)
}

/// The family a served series belongs to: `name` itself, or a histogram's
/// `_bucket`/`_sum`/`_count` series.
pub fn family_of(series: &str) -> Option<&'static Def> {
    find(series)
        .filter(|d| d.kind != Kind::Histogram)
        .or_else(|| {
            ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
                find(series.strip_suffix(suffix)?).filter(|d| d.kind == Kind::Histogram)
            })
        })
}

/// docs/metrics.md: every family of the catalog, by name.
pub fn markdown() -> String {
    let snapshot: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
    let mut defs: Vec<&Def> = all().collect();
    defs.sort_by_key(|d| d.name);
    let mut out = String::from(
        "<!-- Generated from src/metrics/catalog.rs: do not edit by hand.\n     \
         Regenerate with `UPDATE_DOCS=1 cargo test --test docs_metrics`. -->\n\
         # Metrics\n\n\
         Every metric family m365-exporter serves on `/metrics` (and, for one tenant, on\n\
         `/probe`), generated from the catalog in `src/metrics/catalog.rs`; a test scrapes a\n\
         running exporter and fails when it serves a family, type or label set that is not\n\
         here.\n\n\
         - Every tenant-scoped series has the label `tenant`; families without it are\n  \
           exporter-wide (and left out of `/probe`).\n\
         - Services are labelled `service_id` (never `service`, which clashes with Kubernetes\n  \
           target labels).\n\
         - Times are Unix timestamps in seconds (`_timestamp_seconds`), durations are in\n  \
           seconds, counters end in `_total`.\n\
         - Families marked *snapshot* describe their collector's last good refresh: a\n  \
           collector that fails keeps its last good figures for up to three intervals (with\n  \
           `m365_collector_success` 0), then drops them, so stale data is never served\n  \
           indefinitely. The others are counted as things happen.\n\n\
         | metric | type | labels |\n|---|---|---|\n",
    );
    for d in &defs {
        let _ = writeln!(
            out,
            "| [`{n}`](#{n}) | {} | {} |",
            d.kind,
            labels_md(d),
            n = d.name
        );
    }
    for d in &defs {
        let what = if snapshot.contains(&d.name) {
            "snapshot "
        } else {
            ""
        };
        let _ = write!(
            out,
            "\n## {}\n\n{what}{}; labels: {}.\n\n{}\n",
            d.name,
            d.kind,
            labels_md(d),
            d.help
        );
        if !d.buckets.is_empty() {
            let bounds: Vec<String> = d.buckets.iter().map(|b| b.to_string()).collect();
            let _ = write!(out, "\nBuckets (upper bounds): {}.\n", bounds.join(", "));
        }
        if !d.notes.is_empty() {
            let _ = write!(out, "\n{}\n", d.notes);
        }
    }
    out
}

fn labels_md(d: &Def) -> String {
    if d.labels.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = d.labels.iter().map(|l| format!("`{l}`")).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for d in all() {
            assert!(seen.insert(d.name), "{} twice", d.name);
            // Ours are m365_*; the process_* families keep the names every
            // exporter uses.
            let process = ProcessFamily::ALL.iter().any(|p| p.def().name == d.name);
            assert!(
                d.name
                    .starts_with(if process { "process_" } else { "m365_" }),
                "{}",
                d.name
            );
            assert!(
                d.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                d.name
            );
            assert!(!d.help.is_empty(), "{}: no HELP", d.name);
            // HELP is one line and needs no escaping in the text format.
            assert!(!d.help.contains(['\n', '\\']), "{}", d.name);
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                d.name
            );
            assert_eq!(
                d.kind == Kind::Histogram,
                !d.buckets.is_empty(),
                "{}",
                d.name
            );
            assert!(d.buckets.windows(2).all(|w| w[0] < w[1]), "{}", d.name);
            let labels: HashSet<_> = d.labels.iter().collect();
            assert_eq!(labels.len(), d.labels.len(), "{}: a label twice", d.name);
            assert!(!d.labels.contains(&"le"), "{}", d.name);
        }
    }

    #[test]
    fn headers_are_help_and_type() {
        for f in Family::ALL {
            assert_eq!(
                f.header(),
                format!(
                    "# HELP {n} {}\n# TYPE {n} {}\n",
                    f.help(),
                    f.kind(),
                    n = f.name()
                )
            );
        }
    }

    #[test]
    fn process_headers_are_help_and_type() {
        for f in ProcessFamily::ALL {
            let d = f.def();
            assert!(d.labels.is_empty(), "{}", d.name);
            assert_eq!(
                f.header(),
                format!("# HELP {n} {}\n# TYPE {n} {}\n", d.help, d.kind, n = d.name)
            );
        }
    }

    #[test]
    fn histogram_series_find_their_family() {
        let d = family_of("m365_api_request_duration_seconds_bucket").unwrap();
        assert_eq!(d.name, "m365_api_request_duration_seconds");
        assert!(family_of("m365_api_request_duration_seconds").is_none());
        assert!(family_of("m365_api_requests_total_count").is_none());
        assert_eq!(
            family_of("m365_service_info").map(|d| d.kind),
            Some(Kind::Gauge)
        );
    }
}
