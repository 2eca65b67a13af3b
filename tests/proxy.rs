//! Outbound proxy: the exporter (the real binary) reaches the simulator
//! through a real forward proxy (Debian's `tinyproxy`) when HTTP_PROXY /
//! HTTPS_PROXY say so, as curl would, loopback included, with basic auth
//! from the proxy URL; every collector succeeds and the proxy's log shows
//! every call, each to the tenant's own endpoints. NO_PROXY naming the host sends the calls direct, and `demo`
//! talks to its own simulator directly whatever the variables say.
//!
//! Needs `tinyproxy` (`bash scripts/install-test-deps.sh`); fails, never
//! skips, without it. `TINYPROXY_BIN` overrides the binary.

use support::procs;
mod support;

use m365_exporter::simulator::{SimOptions, Simulator};
use procs::{free_port, ChildGuard};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{wait_for, SimTenant};

const BIN: &str = env!("CARGO_BIN_EXE_m365-exporter");
const COLLECTORS: [&str; 3] = ["service_health", "messages", "activity"];
/// The proxy asks for basic auth, as corporate proxies often do.
const PROXY_USER: &str = "m365";
const PROXY_PASSWORD: &str = "Pr0xy-Passw0rd";

/// tinyproxy on a free loopback port, logging every request to `dir/tinyproxy.log`.
fn start_tinyproxy(dir: &Path) -> (ChildGuard, u16) {
    let bin = procs::require_binary(
        "tinyproxy (forward proxy for the proxy test)",
        "TINYPROXY_BIN",
        &["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy", "tinyproxy"],
    );
    let port = free_port();
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\n\
             LogLevel Info\nLogFile \"{}\"\nDisableViaHeader Yes\n\
             BasicAuth {PROXY_USER} {PROXY_PASSWORD}\n",
            dir.join("tinyproxy.log").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-d").arg("-c").arg(&conf);
    let guard = ChildGuard::spawn("tinyproxy", cmd, dir);
    (guard, port)
}

fn proxy_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tinyproxy.log")).unwrap_or_default()
}

/// The requests tinyproxy forwarded: the URL of each `Request` line.
fn proxied_urls(dir: &Path) -> Vec<String> {
    proxy_log(dir)
        .lines()
        .filter_map(|l| l.split_once("): ").map(|(_, r)| r))
        .filter_map(|r| {
            let mut words = r.split_whitespace();
            let method = words.next()?;
            let url = words.next()?;
            (["GET", "POST", "CONNECT"].contains(&method) && url.contains("://"))
                .then(|| url.to_string())
        })
        .collect()
}

fn config(dir: &Path, sim: &str) -> std::path::PathBuf {
    let path = dir.join("config.yml");
    std::fs::write(
        &path,
        format!(
            "tenants:\n{}",
            SimTenant::new("contoso", sim)
                .management(sim)
                .with("service_health: {interval: 5s}")
                .with("messages: {interval: 5s}")
                .with("activity: {enabled: true, interval: 5s, lookback: 2h, start_subscriptions: true}")
        ),
    )
    .unwrap();
    path
}

/// Run `args` with the proxy variables `env`; wait until every collector
/// succeeded; return the exporter's guard.
async fn exporter_succeeds(
    dir: &Path,
    name: &str,
    args: &[String],
    env: &[(&str, String)],
    collectors: &[&str],
) -> ChildGuard {
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=debug");
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut guard = ChildGuard::spawn(name, cmd, dir);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_for(
        &format!("{name}: every collector succeeding"),
        Duration::from_secs(60),
        || {
            if let Err(e) = guard.check_running() {
                panic!("{e}");
            }
            let url = url.clone();
            async move {
                let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
                collectors
                    .iter()
                    .all(|c| {
                        body.contains(&format!(
                            "m365_collector_success{{tenant=\"contoso\",collector=\"{c}\"}} 1"
                        ))
                    })
                    .then_some(())
            }
        },
    )
    .await;
    guard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_goes_through_the_proxy_and_no_proxy_bypasses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut proxy, proxy_port) = start_tinyproxy(dir.path());
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let cfg = config(dir.path(), &sim.url());
    wait_for("tinyproxy listening", Duration::from_secs(60), || {
        if let Err(e) = proxy.check_running() {
            panic!("{e}");
        }
        async move {
            tokio::net::TcpStream::connect(("127.0.0.1", proxy_port))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    // The proxy really insists on its credentials.
    let anonymous = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://127.0.0.1:{proxy_port}")).unwrap())
        .build()
        .unwrap();
    let refused = anonymous.get(sim.url()).send().await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        407,
        "tinyproxy without credentials"
    );
    let proxy_url = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{proxy_port}");
    let args = vec![format!("--config.file={}", cfg.display())];

    // Through the proxy: lower-case http_proxy as curl reads it for http://
    // URLs, upper-case HTTPS_PROXY for https:// (not used by the simulator).
    let exporter = exporter_succeeds(
        dir.path(),
        "exporter-proxied",
        &args,
        &[
            ("http_proxy", proxy_url.clone()),
            ("HTTPS_PROXY", proxy_url.clone()),
        ],
        &COLLECTORS,
    )
    .await;
    let log = exporter.log_tail(100_000);
    assert!(
        !log.contains(PROXY_PASSWORD),
        "the proxy password was logged:\n{log}"
    );
    drop(exporter);
    let urls = proxied_urls(dir.path());
    let sim_origin = sim.url();
    for (what, part) in [
        ("token", "/oauth2/v2.0/token"),
        (
            "healthOverviews",
            "/v1.0/admin/serviceAnnouncement/healthOverviews",
        ),
        ("issues", "/v1.0/admin/serviceAnnouncement/issues"),
        ("messages", "/v1.0/admin/serviceAnnouncement/messages"),
        ("subscriptions/list", "/activity/feed/subscriptions/list"),
        ("content listing", "/activity/feed/subscriptions/content"),
        ("blob download", "/activity/feed/audit/"),
    ] {
        assert!(
            urls.iter().any(|u| u.contains(part)),
            "no {what} call in the proxy's log:\n{}",
            proxy_log(dir.path())
        );
    }
    // Every call went to the tenant's configured endpoints, and the
    // simulator saw nothing the proxy did not forward.
    for u in &urls {
        assert!(
            u.starts_with(&sim_origin),
            "proxied call to another host: {u}"
        );
    }
    let seen = sim.requests().len();
    assert!(
        seen > 0 && urls.len() >= seen,
        "simulator saw {seen} requests, proxy forwarded {}",
        urls.len()
    );

    // NO_PROXY naming the host: straight to the simulator.
    let before = urls.len();
    let exporter = exporter_succeeds(
        dir.path(),
        "exporter-no-proxy",
        &args,
        &[
            ("HTTP_PROXY", proxy_url.clone()),
            ("NO_PROXY", "localhost,127.0.0.1".into()),
        ],
        &COLLECTORS,
    )
    .await;
    drop(exporter);
    assert_eq!(
        proxied_urls(dir.path()).len(),
        before,
        "calls went through the proxy despite NO_PROXY"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_talks_to_its_simulator_directly() {
    let dir = tempfile::tempdir().unwrap();
    // A proxy that does not exist: anything sent there fails.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let demo = exporter_succeeds(
        dir.path(),
        "demo",
        &["demo".to_string()],
        &[("HTTP_PROXY", dead.clone()), ("HTTPS_PROXY", dead)],
        &["service_health", "messages"],
    )
    .await;
    drop(demo);
}
