//! Audit feed webhooks end to end, the simulator playing Microsoft: the
//! validation handshake during `/start` (and a refused one), notifications
//! with the right and a wrong authId, bodies the receiver refuses, content
//! fetched within seconds of its notification while the safety-net listing
//! is minutes away, listing calls with and without notifications, the
//! safety net when notifications stop, each blob fetched once when both
//! paths see it, re-registration of a disabled webhook, and the authId in
//! no log line and no `check-config` output.

mod support;

use m365_exporter::activity::client::ManagementClient;
use m365_exporter::activity::subscriptions::Subscriptions;
use m365_exporter::activity::webhook::Inbox;
use m365_exporter::auth::tenant::TenantGuid;
use m365_exporter::cli::app::Running;
use m365_exporter::simulator::{
    AuditOptions, Faults, SimOptions, Simulator, SIM_CLIENT_ID, SIM_TENANT_ID,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::activity::*;
use support::start_with_webhook_listener;
use support::{sum, wait_for, Sample};

const AUTH_ID: &str = "wh-auth-7c1f0e5a9d";

/// An exporter whose webhook receiver has its own listener, and the
/// address Microsoft (the simulator) is told to call.
/// `activity` gets `interval` and `start_subscriptions: true`; `hook`
/// adds keys to `activity.webhook`.
async fn start_hooked(
    sim: &Simulator,
    tenant: &str,
    interval: &str,
    hook: &str,
    path_tenant: &str,
) -> Running {
    let config = |port: u16| {
        let address = format!("http://127.0.0.1:{port}/webhook/{path_tenant}");
        config(
            &sim.url(),
            tenant,
            &format!(", interval: {interval}, start_subscriptions: true, webhook: {{address: \"{address}\", auth_id: {AUTH_ID}{hook}}}"),
        )
    };
    start_with_webhook_listener(config, &fast()).await
}

fn hook_url(exp: &Running, tenant: &str) -> String {
    format!("http://{}/webhook/{tenant}", exp.webhook_addr.unwrap())
}

fn wh(m: &[Sample], tenant: &str, result: &str) -> f64 {
    sum(
        m,
        "m365_activity_webhook_notifications_total",
        &[("tenant", tenant), ("result", result)],
    )
}

fn discovered(m: &[Sample], tenant: &str, source: &str) -> f64 {
    sum(
        m,
        "m365_activity_content_discovered_total",
        &[("tenant", tenant), ("source", source)],
    )
}

/// Blob GETs per contentId, as the simulator saw them.
fn blob_gets(sim: &Simulator) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in management_requests(sim) {
        if let Some(id) = r.path.split("/audit/").nth(1) {
            if r.status == 200 {
                *out.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    out
}

fn listings(sim: &Simulator) -> usize {
    management_requests(sim)
        .iter()
        .filter(|r| r.path.ends_with("/subscriptions/content"))
        .count()
}

fn no_auth_id_in_logs() {
    let leaked = log_lines(&[AUTH_ID]);
    assert!(leaked.is_empty(), "authId in a log line: {leaked:?}");
}

async fn all_hooked(exp: &Running, tenant: &str, n: f64) -> Vec<Sample> {
    wait_for("webhooks registered", Duration::from_secs(30), || async {
        let m = scrape(exp).await;
        (sum(&m, "m365_activity_webhook_enabled", &[("tenant", tenant)]) == n).then_some(m)
    })
    .await
}

#[tokio::test]
async fn handshake_then_content_within_seconds_while_listing_is_minutes_away() {
    capture_logs();
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    // Listing every 2 min (10 min while notifications arrive): only the
    // webhook can bring new content within seconds.
    let exp = start_hooked(&sim, "hooked", "2m", ", poll_interval: 10m", "hooked").await;
    let m = all_hooked(&exp, "hooked", 5.0).await;
    assert_eq!(
        wh(&m, "hooked", "validation"),
        5.0,
        "one validation per /start"
    );
    let hooks = sim.audit().webhooks.clone();
    assert_eq!(hooks.len(), 5);
    assert!(hooks
        .values()
        .all(|h| h.status == "enabled" && h.auth_id == AUTH_ID));
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    drained(&exp, "hooked", truth.blobs).await;
    let listed_before = listings(&sim);

    let mut latencies = Vec::new();
    for (i, ct) in ["Audit.Exchange", "DLP.All", "Audit.General"]
        .iter()
        .enumerate()
    {
        let before = sum(
            &scrape(&exp).await,
            "m365_activity_content_fetched_total",
            &[("tenant", "hooked")],
        );
        let t0 = Instant::now();
        let id = sim.audit().add_blob(ct, Duration::ZERO, 3);
        let m = wait_for(
            "the notified blob fetched",
            Duration::from_secs(15),
            || async {
                let m = scrape(&exp).await;
                (sum(
                    &m,
                    "m365_activity_content_fetched_total",
                    &[("tenant", "hooked")],
                ) > before)
                    .then_some(m)
            },
        )
        .await;
        latencies.push(t0.elapsed());
        assert_eq!(blob_gets(&sim).get(&id), Some(&1));
        assert_eq!(discovered(&m, "hooked", "webhook"), (i + 1) as f64);
    }
    // The feed's status (the last notification) is rendered every 10 s.
    let since = now_ms() as f64 / 1_000.0 - 60.0;
    wait_for(
        "last notification times",
        Duration::from_secs(30),
        || async {
            let m = scrape(&exp).await;
            ["Audit.Exchange", "DLP.All", "Audit.General"]
                .iter()
                .all(|ct| {
                    support::select(
                        &m,
                        "m365_activity_webhook_last_notification_timestamp_seconds",
                        &[("tenant", "hooked"), ("content_type", ct)],
                    )
                    .first()
                    .is_some_and(|s| s.value >= since)
                })
                .then_some(())
        },
    )
    .await;
    assert_eq!(listings(&sim), listed_before, "no listing was needed");
    println!("figures: notified blob fetched after {latencies:?} (listing interval 2m, poll_interval 10m)");
    no_auth_id_in_logs();
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn refused_validation_fails_start_clearly_and_polling_still_works() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            started: false,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    // The address names a tenant without a webhook: the receiver answers
    // the validation 404, so Microsoft refuses `/start` with AF20021.
    let exp = start_hooked(&sim, "refused", "300ms", "", "nosuch").await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "refused", truth.blobs).await;
    assert_eq!(
        sum(
            &m,
            "m365_activity_webhook_enabled",
            &[("tenant", "refused")]
        ),
        0.0
    );
    assert_eq!(
        sum(
            &m,
            "m365_api_errors_total",
            &[("tenant", "refused"), ("error_code", "AF20021")]
        ),
        5.0
    );
    assert_eq!(discovered(&m, "refused", "listing") as usize, truth.blobs);
    let line = one_log_line(&[
        "refused",
        "AF20021",
        "could not validate",
        "polling continues",
    ]);
    assert!(line.contains("/webhook/nosuch"), "{line}");
    assert!(sim.audit().webhooks.is_empty());
    no_auth_id_in_logs();
    exp.stop().await.unwrap();
}

/// Microsoft refuses a webhook address that is not https (AF20021 "The
/// address must begin with HTTPS"): the log line names the scheme, not a
/// failed validation, and polling continues.
#[tokio::test]
async fn a_plain_http_address_is_refused_for_its_scheme() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            started: false,
            https_webhooks: true,
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let exp = start_hooked(&sim, "plain", "300ms", "", "plain").await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, "plain", truth.blobs).await;
    assert_eq!(
        sum(&m, "m365_activity_webhook_enabled", &[("tenant", "plain")]),
        0.0
    );
    let line = one_log_line(&["plain", "AF20021", "polling continues"]);
    assert!(
        line.contains("must begin with https://, not http://"),
        "{line}"
    );
    assert!(!line.contains("validation POST"), "{line}");
    no_auth_id_in_logs();
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn receiver_answers_and_counts_every_kind_once_logged() {
    capture_logs();
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let exp = start_hooked(&sim, "recv", "2m", ", poll_interval: 10m", "recv").await;
    all_hooked(&exp, "recv", 5.0).await;
    let url = hook_url(&exp, "recv");
    let http = reqwest::Client::new();
    let post = |url: String, auth: Option<&'static str>, body: Vec<u8>| {
        let mut rq = http.post(url).body(body);
        if let Some(a) = auth {
            rq = rq.header("Webhook-AuthID", a);
        }
        async move { rq.send().await.unwrap().status().as_u16() }
    };
    let item = |tenant: &str, ct: &str, id: &str| {
        format!(
            r#"{{"tenantId":"{tenant}","clientId":"{SIM_CLIENT_ID}","contentType":"{ct}","contentId":"{id}","contentUri":"{}/api/v1.0/{tenant}/activity/feed/audit/{id}","contentCreated":"2026-01-01T00:00:00.000Z","contentExpiration":"2026-01-08T00:00:00.000Z"}}"#,
            sim.url()
        )
    };
    let good = format!("[{}]", item(SIM_TENANT_ID, "Audit.Exchange", "nosuchblob"));
    let before = scrape(&exp).await;
    for _ in 0..2 {
        assert_eq!(
            post(url.clone(), Some("wrong"), good.clone().into()).await,
            401
        );
        assert_eq!(post(url.clone(), None, good.clone().into()).await, 401);
        assert_eq!(
            post(hook_url(&exp, "ghost"), Some(AUTH_ID), good.clone().into()).await,
            404
        );
        assert_eq!(
            post(url.clone(), Some(AUTH_ID), b"{\"not\":\"it\"}".to_vec()).await,
            400
        );
        assert_eq!(post(url.clone(), Some(AUTH_ID), b"[{".to_vec()).await, 400);
        assert_eq!(
            post(url.clone(), Some(AUTH_ID), vec![b' '; (1 << 20) + 1]).await,
            413
        );
        // Chunked, announcing no length: still cut at 1 MiB.
        let chunks =
            futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
        let s = http
            .post(url.clone())
            .header("Webhook-AuthID", AUTH_ID)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(s, 413);
        let foreign = format!(
            "[{},{}]",
            item(
                "11111111-2222-3333-4444-555555555555",
                "Audit.Exchange",
                "f1"
            ),
            item(SIM_TENANT_ID, "Audit.Unknown", "f2")
        );
        assert_eq!(post(url.clone(), Some(AUTH_ID), foreign.into()).await, 200);
    }
    assert_eq!(
        post(
            url.clone(),
            Some(AUTH_ID),
            br#"{"validationCode":"x"}"#.to_vec()
        )
        .await,
        200
    );
    let m = scrape(&exp).await;
    let d = |r: &str| wh(&m, "recv", r) - wh(&before, "recv", r);
    assert_eq!(d("unauthorized"), 4.0);
    assert_eq!(d("malformed"), 4.0);
    assert_eq!(d("too_large"), 4.0);
    assert_eq!(d("foreign"), 4.0);
    assert_eq!(d("validation"), 1.0);
    assert_eq!(d("accepted"), 0.0, "nothing queued");
    assert_eq!(
        wh(&m, "", "unknown_tenant"),
        2.0,
        "unknown tenants counted without a tenant label value"
    );
    assert_eq!(discovered(&m, "recv", "webhook"), 0.0);
    assert_eq!(
        sum(&m, "m365_activity_backlog_blobs", &[("tenant", "recv")]),
        0.0
    );
    for kind in ["unauthorized", "malformed", "too_large", "foreign"] {
        one_log_line(&[
            "tenant=recv",
            "webhook request refused",
            &format!("result=\"{kind}\""),
        ]);
    }
    // An accepted item goes to the backlog (this one 404s on download and
    // stays there, retried: nothing dropped).
    assert_eq!(post(url.clone(), Some(AUTH_ID), good.into()).await, 200);
    let m = wait_for("the item queued", Duration::from_secs(10), || async {
        let m = scrape(&exp).await;
        (discovered(&m, "recv", "webhook") == 1.0).then_some(m)
    })
    .await;
    assert_eq!(wh(&m, "recv", "accepted"), 1.0);
    no_auth_id_in_logs();
    assert!(log_lines(&["wrong"])
        .iter()
        .all(|l| !l.contains("Webhook-AuthID: wrong")));
    exp.stop().await.unwrap();
}

/// Listing calls in `window` after the first drain, and how long blobs took
/// from publication to download, with live content every second.
async fn measure(webhook: bool) -> (usize, Vec<Duration>) {
    let sim = sim_with(
        AuditOptions {
            blobs_per_type: 1,
            expired_blobs: 0,
            live_every: Some(Duration::from_secs(1)),
            live_for: Duration::from_secs(120),
            ..AuditOptions::default()
        },
        Faults::default(),
    )
    .await;
    let tenant = if webhook {
        "measure-hook"
    } else {
        "measure-poll"
    };
    let exp = if webhook {
        let e = start_hooked(
            &sim,
            tenant,
            "1s",
            ", poll_interval: 1h, silence: 1h",
            tenant,
        )
        .await;
        all_hooked(&e, tenant, 5.0).await;
        // Until its first notification a type is listed every interval.
        wait_for(
            "a notification for every type",
            Duration::from_secs(30),
            || async {
                let m = scrape(&e).await;
                let n = support::select(
                    &m,
                    "m365_activity_webhook_last_notification_timestamp_seconds",
                    &[("tenant", tenant)],
                )
                .len();
                (n == 5).then_some(())
            },
        )
        .await;
        e
    } else {
        start(&sim, tenant, ", interval: 1s").await
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (l0, s0) = (listings(&sim), Instant::now());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let calls = listings(&sim) - l0;
    // Publication → download, for blobs published in the window.
    let started = sim.state().started;
    let (ref_i, ref_ms) = (Instant::now(), now_ms_f());
    let published: BTreeMap<String, i64> = sim
        .audit()
        .blobs
        .iter()
        .map(|b| (b.content_id.clone(), b.published_ms))
        .collect();
    let mut lat = Vec::new();
    for r in management_requests(&sim) {
        let Some(id) = r.path.split("/audit/").nth(1) else {
            continue;
        };
        let at = started + r.at;
        if at < s0 || r.status != 200 {
            continue;
        }
        let at_ms = ref_ms - ref_i.duration_since(at).as_millis() as i64;
        if let Some(p) = published.get(id) {
            lat.push(Duration::from_millis((at_ms - p).max(0) as u64));
        }
    }
    exp.stop().await.unwrap();
    (calls, lat)
}

fn now_ms_f() -> i64 {
    (m365_exporter::timefmt::now_unix() * 1_000.0) as i64
}

fn summary(l: &mut [Duration]) -> String {
    l.sort();
    if l.is_empty() {
        return "none".into();
    }
    format!(
        "n={} median={:?} max={:?}",
        l.len(),
        l[l.len() / 2],
        l[l.len() - 1]
    )
}

#[tokio::test]
async fn listing_calls_drop_with_notifications() {
    let (hook_calls, mut hook_lat) = measure(true).await;
    let (poll_calls, mut poll_lat) = measure(false).await;
    println!(
        "figures: 8 s of live content every 1 s for each of 5 types, interval 1s; listing calls: with notifications (poll_interval 1h) {hook_calls}, polling alone {poll_calls}; publication→download: webhook {}, polling {}",
        summary(&mut hook_lat),
        summary(&mut poll_lat)
    );
    assert!(poll_calls >= 8, "polling lists every second: {poll_calls}");
    assert_eq!(
        hook_calls, 0,
        "notifications arriving: no listing within the hour"
    );
    assert!(!hook_lat.is_empty(), "blobs fetched through notifications");
    assert!(hook_lat.iter().all(|l| *l < Duration::from_secs(10)));
}

#[tokio::test]
async fn safety_net_fetches_everything_and_nothing_twice() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            blobs_per_type: 2,
            expired_blobs: 0,
            live_every: Some(Duration::from_secs(1)),
            live_for: Duration::from_secs(120),
            ..AuditOptions::default()
        },
        Faults {
            webhook_delay: Duration::from_millis(1_500),
            webhook_duplicate: true,
            ..Faults::default()
        },
    )
    .await;
    let t = "net";
    let exp = start_hooked(&sim, t, "500ms", ", poll_interval: 2s, silence: 3s", t).await;
    wait_for("both sources", Duration::from_secs(30), || async {
        let m = scrape(&exp).await;
        (discovered(&m, t, "webhook") > 0.0 && discovered(&m, t, "listing") > 0.0).then_some(())
    })
    .await;
    // Now every notification goes missing: after `silence`, listing returns
    // to the normal interval and finds everything.
    sim.set_faults(Faults {
        webhook_drop_every: 1,
        ..Faults::default()
    });
    let cut = now_ms();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let m = drained(&exp, t, truth.blobs).await;
    let gets = blob_gets(&sim);
    assert_eq!(gets.len(), truth.blobs, "every blob fetched");
    assert!(
        gets.values().all(|n| *n == 1),
        "no blob fetched twice: {:?}",
        gets.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let (w, l) = (discovered(&m, t, "webhook"), discovered(&m, t, "listing"));
    assert_eq!((w + l) as usize, truth.blobs, "each blob discovered once");
    let after_cut = sim
        .audit()
        .blobs
        .iter()
        .filter(|b| b.published_ms > cut + 2_000 && b.published_ms <= now_ms())
        .count();
    assert!(
        after_cut > 0,
        "content published while notifications were missing"
    );
    let dropped = sim
        .audit()
        .notifications
        .iter()
        .filter(|n| n.status == 200)
        .count();
    println!(
        "figures: discovered webhook={w} listing={l} blobs={} notifications_delivered={dropped}",
        truth.blobs
    );
    no_auth_id_in_logs();
    exp.stop().await.unwrap();
}

#[tokio::test]
async fn wrong_auth_id_from_microsoft_is_refused_and_the_webhook_disabled_then_re_registered() {
    capture_logs();
    let sim = sim_with(
        AuditOptions {
            blobs_per_type: 1,
            expired_blobs: 0,
            ..AuditOptions::default()
        },
        Faults {
            webhook_wrong_auth: true,
            ..Faults::default()
        },
    )
    .await;
    let exp = start_hooked(&sim, "wrong", "2m", ", poll_interval: 10m", "wrong").await;
    all_hooked(&exp, "wrong", 5.0).await;
    for _ in 0..3 {
        sim.audit().add_blob("Audit.Exchange", Duration::ZERO, 2);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    wait_for(
        "Microsoft disables the failing webhook",
        Duration::from_secs(20),
        || async { (sim.audit().webhooks["Audit.Exchange"].status == "disabled").then_some(()) },
    )
    .await;
    let m = scrape(&exp).await;
    assert!(wh(&m, "wrong", "unauthorized") >= 3.0);
    assert_eq!(discovered(&m, "wrong", "webhook"), 0.0, "nothing queued");
    one_log_line(&["tenant=wrong", "webhook request refused"]);
    exp.stop().await.unwrap();

    // Re-registration of the disabled webhook, with the 15-minute spacing
    // shortened to 2 s: not before the spacing, then at the first check after.
    sim.set_faults(Faults::default());
    let url = sim.url();
    let (api, _) = support::sim_api("w", &url, Duration::from_secs(5), fast().retry);
    let client = ManagementClient::new(
        api,
        &url,
        Arc::new(TenantGuid::known(SIM_TENANT_ID)),
        None,
        2_000,
    );
    let hook_cfg = m365_exporter::config::Config::parse(
        &format!(
            "tenants:\n  - name: w\n    tenant_id: {SIM_TENANT_ID}\n    client_id: {SIM_CLIENT_ID}\n    client_secret: x\n    endpoints: {{management: \"{url}\"}}\n    activity: {{webhook: {{address: \"{}\", auth_id: {AUTH_ID}}}}}\n",
            sim.audit().webhooks["Audit.Exchange"].address
        ),
        "test",
    )
    .unwrap()
    .tenants[0]
        .activity
        .webhook
        .clone()
        .unwrap();
    // The exporter above is gone: this inbox only gives `/start` the
    // webhook to send; the validation goes to a fresh exporter.
    let exp = start_hooked(&sim, "again", "2m", ", poll_interval: 10m", "again").await;
    let mut hook_cfg = hook_cfg;
    hook_cfg.address = hook_url(&exp, "again");
    let types = vec!["Audit.Exchange".to_string()];
    let inbox = Inbox::new("again", SIM_TENANT_ID, hook_cfg, &types, &url);
    all_hooked(&exp, "again", 5.0).await;
    sim.audit()
        .webhooks
        .get_mut("Audit.Exchange")
        .unwrap()
        .status = "disabled".into();
    let starts = || {
        management_requests(&sim)
            .iter()
            .filter(|r| r.path.ends_with("/subscriptions/start"))
            .count()
    };
    let mut subs = Subscriptions::every(Duration::from_secs(2));
    subs.check(&client, &types, true, "again", Some(&inbox))
        .await;
    let n0 = starts();
    assert_eq!(
        subs.get("Audit.Exchange").webhook,
        Some(true),
        "re-registered"
    );
    assert_eq!(sim.audit().webhooks["Audit.Exchange"].status, "enabled");
    sim.audit()
        .webhooks
        .get_mut("Audit.Exchange")
        .unwrap()
        .status = "expired".into();
    subs.refresh();
    subs.check(&client, &types, true, "again", Some(&inbox))
        .await;
    assert_eq!(starts(), n0, "not within the spacing");
    assert_eq!(subs.get("Audit.Exchange").webhook, Some(false));
    tokio::time::sleep(Duration::from_secs(2)).await;
    subs.refresh();
    subs.check(&client, &types, true, "again", Some(&inbox))
        .await;
    assert_eq!(starts(), n0 + 1, "after the spacing");
    assert_eq!(subs.get("Audit.Exchange").webhook, Some(true));
    no_auth_id_in_logs();
    exp.stop().await.unwrap();
}

/// `check-config` over a tenant whose `activity.webhook` is `webhook`:
/// (exit code, stdout and stderr together).
fn check_config(dir: &std::path::Path, webhook: &str) -> (Option<i32>, String) {
    let cfg = dir.join("c.yml");
    std::fs::write(
        &cfg,
        format!(
            "tenants:\n  - name: c\n    tenant_id: {SIM_TENANT_ID}\n    client_id: {SIM_CLIENT_ID}\n    client_secret: x\n    activity: {{enabled: true, webhook: {webhook}}}\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
        .args(["check-config", &format!("--config.file={}", cfg.display())])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn auth_id_never_in_check_config_output() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook");
    std::fs::write(&secret_file, format!("{AUTH_ID}\n")).unwrap();
    for webhook in [
        format!("{{address: \"https://e.example/webhook/c\", auth_id: {AUTH_ID}}}"),
        format!(
            "{{address: \"https://e.example/webhook/c\", auth_id_file: {}, poll_interval: 20m}}",
            secret_file.display()
        ),
    ] {
        let (code, text) = check_config(dir.path(), &webhook);
        assert_eq!(code, Some(0), "{text}");
        assert!(!text.contains(AUTH_ID), "{text}");
        assert!(text.contains("auth_id: <redacted>"), "{text}");
        assert!(text.contains("poll_interval:"), "{text}");
    }
    // A bad key is named, and the value not echoed.
    let (code, err) = check_config(
        dir.path(),
        &format!("{{address: \"https://e/webhook/c\", auth_id: \"{AUTH_ID} x\"}}"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tenants[0].activity.webhook.auth_id"), "{err}");
    assert!(!err.contains(AUTH_ID), "{err}");
}

#[tokio::test]
async fn receiver_on_the_main_listener_without_registration() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    // No --webhook.listen-address, and no /start: the webhook is registered
    // out of band; the receiver and the status metrics work the same.
    let exp = start(
        &sim,
        "mainl",
        &format!(", interval: 1s, webhook: {{address: \"https://exporter.example/webhook/mainl\", auth_id: {AUTH_ID}}}"),
    )
    .await;
    assert!(exp.webhook_addr.is_none());
    let url = format!("{}/webhook/mainl", exp.url());
    let http = reqwest::Client::new();
    let post = |auth: &'static str| {
        http.post(url.clone())
            .header("Webhook-AuthID", auth)
            .body(r#"{"validationCode":"v"}"#)
            .send()
    };
    assert_eq!(post(AUTH_ID).await.unwrap().status().as_u16(), 200);
    assert_eq!(post("nope").await.unwrap().status().as_u16(), 401);
    let m = wait_for(
        "webhook state rendered",
        Duration::from_secs(20),
        || async {
            let m = scrape(&exp).await;
            let n =
                support::select(&m, "m365_activity_webhook_enabled", &[("tenant", "mainl")]).len();
            (n == 5).then_some(m)
        },
    )
    .await;
    assert_eq!(wh(&m, "mainl", "validation"), 1.0);
    assert_eq!(wh(&m, "mainl", "unauthorized"), 1.0);
    assert_eq!(
        sum(&m, "m365_activity_webhook_enabled", &[("tenant", "mainl")]),
        0.0,
        "nothing registered"
    );
    assert!(
        !management_requests(&sim)
            .iter()
            .any(|r| r.path.ends_with("/subscriptions/start")),
        "start_subscriptions is off: no /start"
    );
    exp.stop().await.unwrap();
}
