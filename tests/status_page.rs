//! The HTML status page at `/`, rendered by a real headless Chromium against
//! the simulator + exporter on ephemeral ports: the DOM the browser built
//! (`--dump-dom`) for the healthy state and for a failing collector, and a
//! screenshot that must be a non-empty PNG.
//!
//! Needs Debian's `chromium` (`bash scripts/install-test-deps.sh`); the test
//! fails, it does not skip, when it is missing. `CHROMIUM_BIN` overrides the
//! binary. `STATUS_PAGE_SCREENSHOT=<file>` keeps a copy of the screenshot.

#[path = "common/procs.rs"]
mod procs;
mod support;

use m365_exporter::app::{Running, WebOptions};
use m365_exporter::simulator::{Faults, SimOptions, Simulator};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{fast_retries, get, service_health_config, wait_for};

/// One browser run may take this long (cold start on a loaded 2-core box is
/// a few seconds); past it the whole process group is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// Flags that work as root in a container with no outside network.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

fn chromium_bin() -> PathBuf {
    procs::require_binary(
        "chromium (headless browser for the status page test)",
        "CHROMIUM_BIN",
        &["/usr/bin/chromium", "chromium"],
    )
}

/// SIGKILLs the browser's process group when dropped: a hung or panicking
/// run leaves no renderer or zygote behind.
struct GroupKill(u32);

impl Drop for GroupKill {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Run Chromium once with a fresh profile; its stdout. Async, so the
/// exporter in this runtime keeps serving while the browser loads the page.
async fn chromium(bin: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("temp user-data-dir");
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let _group = GroupKill(child.id().expect("chromium pid"));
    let started = Instant::now();
    let out = match tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.expect("wait for chromium"),
        Err(_) => panic!("chromium {args:?} did not finish within {CHROMIUM_TIMEOUT:?}; killed"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium {args:?} failed ({}) after {:?}; stderr:\n{stderr}",
        out.status,
        started.elapsed()
    );
    String::from_utf8(out.stdout).expect("chromium output is UTF-8")
}

async fn dump_dom(bin: &Path, url: &str) -> String {
    let dom = chromium(bin, &["--dump-dom".into(), url.into()]).await;
    assert!(dom.contains("</html>"), "not a page: {dom:?}");
    dom
}

/// Text content of an HTML fragment: tags dropped, common entities decoded,
/// whitespace collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The data rows (cell texts) of the first `<table class="{class}">` in `html`.
fn table_rows(html: &str, class: &str) -> Vec<Vec<String>> {
    let open = format!("<table class=\"{class}\">");
    let Some(start) = html.find(&open) else {
        panic!("no {open} in the rendered page:\n{html}");
    };
    let body = &html[start..];
    let body = &body[..body.find("</table>").expect("table closed")];
    body.split("<tr")
        .skip(1)
        .filter(|row| row.contains("<td"))
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').map_or(0, |i| i + 1)..];
                    text(&cell[..cell.find("</td>").unwrap_or(cell.len())])
                })
                .collect()
        })
        .collect()
}

/// The rendered page from the tenant's heading on, and the heading's text.
fn tenant_section<'a>(dom: &'a str, tenant: &str) -> (&'a str, String) {
    let open = format!("<h2 id=\"tenant-{tenant}\"");
    let Some(start) = dom.find(&open) else {
        panic!("no heading for tenant {tenant} in the rendered page:\n{dom}");
    };
    let section = &dom[start..];
    let heading = text(&section[..section.find("</h2>").expect("heading closed")]);
    (section, heading)
}

fn hrefs(dom: &str) -> Vec<String> {
    dom.split("href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap_or(0)].replace("&amp;", "&"))
        .collect()
}

fn collector<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no collector row {name:?} in {rows:?}"))
}

#[tokio::test]
async fn status_page_renders_in_headless_chromium() {
    // First, so that a missing browser fails at once with the install hint.
    let bin = chromium_bin();
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let exp = Running::start(
        &service_health_config(&sim.url(), "1s"),
        &WebOptions::default(),
        &fast_retries(),
    )
    .await
    .unwrap();
    let ready = format!("{}/-/ready", exp.url());
    wait_for("readiness", Duration::from_secs(10), || async {
        (get(&ready).await.0 == 200).then_some(())
    })
    .await;
    let page = format!("{}/", exp.url());

    // Healthy: both collectors ok, the 12 services of the incident scenario.
    let dom = dump_dom(&bin, &page).await;
    let (section, heading) = tenant_section(&dom, "contoso");
    assert!(heading.contains("contoso"), "tenant heading {heading:?}");
    let collectors = table_rows(section, "collectors");
    for name in ["service_health", "messages"] {
        let row = collector(&collectors, name);
        assert_eq!(row.len(), 5, "{row:?}");
        assert_eq!(row[1], "ok", "{name} state: {row:?}");
    }
    let services = table_rows(section, "services");
    assert_eq!(services.len(), 12, "services rows: {services:?}");
    assert!(
        services
            .iter()
            .any(|r| r[0] == "Microsoft Teams" && r[1] == "serviceInterruption"),
        "Microsoft Teams / serviceInterruption not in {services:?}"
    );
    let links = hrefs(&dom);
    for want in [
        "/metrics",
        "/-/healthy",
        "/-/ready",
        "/probe?target=contoso",
    ] {
        assert!(
            links.iter().any(|l| l == want),
            "no link to {want}: {links:?}"
        );
    }

    // A screenshot of the same page: a real, non-empty PNG.
    let shots = tempfile::tempdir().expect("screenshot dir");
    let png_path = shots.path().join("status.png");
    chromium(
        &bin,
        &[
            format!("--screenshot={}", png_path.display()),
            "--window-size=1280,1000".into(),
            page.clone(),
        ],
    )
    .await;
    let png = std::fs::read(&png_path).expect("chromium wrote the screenshot");
    assert!(
        png.len() > 1000,
        "screenshot only {} bytes: {}",
        png.len(),
        png_path.display()
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG");
    if let Some(keep) = std::env::var_os("STATUS_PAGE_SCREENSHOT") {
        std::fs::copy(&png_path, &keep).expect("copy screenshot");
    }

    // Truncated answers: after the next refresh a collector shows failing
    // with the error. Re-armed before every look, so the failure outlasts the
    // browser's load even on a slow machine (each refresh uses up one or two).
    let deadline = Instant::now() + Duration::from_secs(45);
    let failing = loop {
        sim.set_faults(Faults {
            malformed_next: 5,
            ..Faults::default()
        });
        let dom = dump_dom(&bin, &page).await;
        let rows = table_rows(tenant_section(&dom, "contoso").0, "collectors");
        if let Some(row) = rows.iter().find(|r| r[1] == "failing") {
            break row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no collector shown failing within 45 s: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        failing[4].contains("malformed response"),
        "failing row without the error text: {failing:?}"
    );
    sim.set_faults(Faults::default());
    exp.stop().await.unwrap();
}
