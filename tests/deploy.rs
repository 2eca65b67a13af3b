//! The deployment files in `deploy/` are valid and in sync:
//! - the Kubernetes manifests (base and every overlay, rendered by kustomize)
//!   validate against the Kubernetes schemas of PyPI `kubernetes-validate`
//!   (offline, strict), keep the hardening docs/deploy.md promises, are wired
//!   as rendered (namespace, ConfigMap and Secret names and keys, one Service
//!   per pod for the ServiceMonitor, the image set in one place, the
//!   kube-prometheus-stack `release` label: tests/deploy/check_kubernetes.py),
//!   and their PrometheusRule passes `promtool check rules`;
//! - the PrometheusRule is what `scripts/gen-prometheusrule.sh` makes of
//!   `alerts/` (regenerate it after changing the alerts);
//! - the systemd unit passes `systemd-analyze verify` without a warning, and
//!   its install steps leave the config readable by its dynamic user;
//! - the example configurations pass `check-config`, and the compose
//!   stack's Prometheus and Alertmanager configs pass promtool and amtool
//!   (the stack itself is not started: it pulls images).
//!
//! Needs `bash scripts/install-test-deps.sh` (venv with kubernetes-validate
//! and kubectl, promtool, systemd); fails, never skips, without them.
//! `M365_TEST_VENV` overrides the venv's location.

mod support;

use support::procs;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const PROMETHEUS_RULE: &str = "deploy/kubernetes/base/prometheusrule.yaml";

#[test]
fn prometheus_rule_is_generated_from_alerts() {
    let (ok, generated) = run(Command::new("bash")
        .arg("scripts/gen-prometheusrule.sh")
        .current_dir(root()));
    assert!(ok, "gen-prometheusrule.sh failed:\n{generated}");
    let committed = std::fs::read_to_string(root().join(PROMETHEUS_RULE)).unwrap();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the length".to_string(), |n| format!("line {}", n + 1));
        panic!(
            "{PROMETHEUS_RULE} differs from alerts/ (first at {line}); regenerate it:\n  \
             bash scripts/gen-prometheusrule.sh > {PROMETHEUS_RULE}"
        );
    }
}

/// `promtool check rules FILE`: the number of rules it found.
fn promtool_rules(promtool: &Path, file: &Path) -> usize {
    let (ok, out) = run(Command::new(promtool).arg("check").arg("rules").arg(file));
    assert!(ok, "promtool check rules {}:\n{out}", file.display());
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("SUCCESS: "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
        .sum()
}

#[test]
fn kubernetes_manifests_are_valid() {
    let venv = std::env::var_os("M365_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/m365-exporter-tests/venv"));
    let python = venv.join("bin/python");
    for tool in ["kubernetes-validate", "kubectl"] {
        assert!(
            venv.join("bin").join(tool).is_file(),
            "{tool} not found in {}. Install the test dependencies with: bash scripts/install-test-deps.sh",
            venv.display()
        );
    }
    let promtool = procs::require_binary("promtool", "PROMTOOL_BIN", &["promtool"]);
    let out = tempfile::tempdir().unwrap();
    let (ok, text) = run(Command::new(&python)
        .arg(root().join("tests/deploy/check_kubernetes.py"))
        .arg(root())
        .arg(out.path()));
    assert!(ok, "Kubernetes manifests invalid:\n{text}");
    for tree in [
        "base",
        "overlays/kube-prometheus-stack",
        "overlays/sharded",
        "overlays/workload-identity",
        "operator: docs/deploy.md (sharded + kube-prometheus-stack)",
        "operator: base with its own image",
        "operator: overlays/sharded with its own image",
        "operator: kube-prometheus-stack with runbook links to a wiki",
    ] {
        assert!(
            text.contains(&format!("check_kubernetes: {tree}: ")),
            "{tree} not checked:\n{text}"
        );
    }
    // The PrometheusRule of every tree holds exactly the rules of alerts/.
    let mut want = 0;
    for f in std::fs::read_dir(root().join("alerts")).unwrap() {
        let f = f.unwrap().path();
        if f.to_string_lossy().ends_with(".rules.yml") {
            want += promtool_rules(&promtool, &f);
        }
    }
    assert!(want > 0);
    let mut trees = 0;
    for f in std::fs::read_dir(out.path()).unwrap() {
        let f = f.unwrap().path();
        assert_eq!(promtool_rules(&promtool, &f), want, "{}", f.display());
        trees += 1;
    }
    assert_eq!(trees, 4);
}

#[test]
fn systemd_unit_verifies() {
    let unit =
        std::fs::read_to_string(root().join("deploy/systemd/m365-exporter.service")).unwrap();
    for want in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=m365-exporter",
        "NoNewPrivileges=yes",
        "\nCapabilityBoundingSet=\n",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(want), "the unit lacks {want:?}");
    }
    // DynamicUser runs as a fresh uid in no group of ours: the config it reads
    // must be world-readable (it holds no secret: those go by LoadCredential).
    let install = unit
        .lines()
        .find(|l| l.contains("install") && l.trim_end().ends_with(" /etc/m365-exporter/config.yml"))
        .expect("the unit's header installs /etc/m365-exporter/config.yml");
    assert!(
        install.contains("-m 0644"),
        "the dynamic user cannot read a config installed as {install:?}"
    );
    let config = std::fs::read_to_string(root().join("deploy/systemd/config.yml")).unwrap();
    assert!(
        !config.contains("client_secret:"),
        "deploy/systemd/config.yml is world-readable: no inline secret"
    );
    for line in config.lines() {
        if let Some(path) = line.trim().strip_prefix("client_secret_file:") {
            let path = path.trim();
            let (dir, key) = path.rsplit_once('/').unwrap();
            assert_eq!(dir, "/run/credentials/m365-exporter.service", "{path}");
            assert!(
                unit.contains(&format!("\nLoadCredential={key}:")),
                "{path}: the unit has no LoadCredential={key}:..."
            );
        }
    }
    let analyze = procs::require_binary(
        "systemd-analyze (Debian package systemd)",
        "SYSTEMD_ANALYZE_BIN",
        &["/usr/bin/systemd-analyze", "systemd-analyze"],
    );
    // verify checks that ExecStart's binary exists: point it at ours.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m365-exporter.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/m365-exporter",
            env!("CARGO_BIN_EXE_m365-exporter"),
        ),
    )
    .unwrap();
    let (ok, out) = run(Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .env("SYSTEMD_LOG_LEVEL", "notice"));
    // verify exits 0 on unknown keys and bad values, but says so: any
    // word about the unit is a failure.
    let about_unit: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("m365-exporter.service"))
        .collect();
    assert!(
        ok && about_unit.is_empty(),
        "systemd-analyze verify:\n{out}"
    );
}

#[test]
fn example_configs_pass_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "not-a-real-secret").unwrap();
    for example in [
        "deploy/kubernetes/base/config.yml",
        "deploy/kubernetes/overlays/workload-identity/config.yml",
        "deploy/systemd/config.yml",
    ] {
        let text = std::fs::read_to_string(root().join(example)).unwrap();
        // The credential files exist only where it is deployed.
        let text: String = text
            .lines()
            .map(|l| {
                for key in ["client_secret_file:", "federated_token_file:"] {
                    if let Some((indent, _)) = l.split_once(key) {
                        return format!("{indent}{key} {}\n", secret.display());
                    }
                }
                format!("{l}\n")
            })
            .collect();
        let file = dir.path().join("config.yml");
        std::fs::write(&file, text).unwrap();
        let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
            .arg("check-config")
            .arg(format!("--config.file={}", file.display())));
        assert!(ok, "{example} does not pass check-config:\n{out}");
    }
}

#[test]
fn compose_stack_configs_are_valid() {
    let promtool = procs::require_binary("promtool", "PROMTOOL_BIN", &["promtool"]);
    let amtool = procs::require_binary("amtool", "AMTOOL_BIN", &["amtool"]);
    let compose = root().join("deploy/compose");
    let (ok, out) = run(Command::new(promtool)
        .args(["check", "config"])
        .arg(compose.join("prometheus.yml")));
    assert!(ok, "deploy/compose/prometheus.yml:\n{out}");
    let (ok, out) = run(Command::new(amtool)
        .arg("check-config")
        .arg(compose.join("alertmanager.yml")));
    assert!(ok, "deploy/compose/alertmanager.yml:\n{out}");
    let stack = std::fs::read_to_string(compose.join("compose.yaml")).unwrap();
    for want in [
        "dockerfile: Dockerfile",
        "[\"demo\", \"--web.listen-address=:9865\"]",
        "../../alerts:/etc/prometheus/rules:ro",
        "../../dashboards:/var/lib/grafana/dashboards:ro",
    ] {
        assert!(stack.contains(want), "compose.yaml lacks {want:?}");
    }
}

/// The runbook links of every alert come from one base: the shipped one is
/// Cargo.toml's `repository` + /blob/main/docs/runbook.md, and
/// scripts/runbook-url.sh moves them all to an operator's wiki, keeping the
/// rules valid and their promtool tests passing.
#[test]
fn runbook_links_come_from_one_base() {
    let script = root().join("scripts/runbook-url.sh");
    let (ok, base) = run(Command::new("bash").arg(&script));
    assert!(ok, "runbook-url.sh:\n{base}");
    let shipped = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/runbook.md");
    assert_eq!(base.trim(), shipped);
    let mut files = Vec::new();
    for dir in [
        "alerts",
        "alerts/optional",
        "alerts/tests",
        "alerts/optional/tests",
    ] {
        for f in std::fs::read_dir(root().join(dir)).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "yml") {
                files.push(f);
            }
        }
    }
    assert!(files.len() >= 6, "{files:?}");
    // Every committed link is on the shipped base: rendering changes nothing.
    for f in &files {
        let (ok, out) = run(Command::new("bash")
            .arg(&script)
            .args(["render", shipped])
            .arg(f));
        assert!(ok, "render {}:\n{out}", f.display());
        assert!(
            out == std::fs::read_to_string(f).unwrap(),
            "{}: a runbook_url is not on {shipped}; run: bash scripts/runbook-url.sh set",
            f.display()
        );
    }
    // `set` on a copy of the repository: every link moves, promtool agrees.
    let promtool = procs::require_binary("promtool", "PROMTOOL_BIN", &["promtool"]);
    let copy = tempfile::tempdir().unwrap();
    let (ok, out) = run(Command::new("cp")
        .args(["-r", "Cargo.toml", "alerts", "scripts", "deploy"])
        .arg(copy.path())
        .current_dir(root()));
    assert!(ok, "cp:\n{out}");
    for (wiki, link) in [
        (
            "https://wiki.example.com/m365-runbook",
            Box::new(|alert: &str| {
                format!(
                    "https://wiki.example.com/m365-runbook#{}",
                    alert.to_lowercase()
                )
            }) as Box<dyn Fn(&str) -> String>,
        ),
        (
            "https://wiki.example.com/runbooks/{alertname}",
            Box::new(|alert: &str| format!("https://wiki.example.com/runbooks/{alert}")),
        ),
    ] {
        let (ok, out) = run(Command::new("bash")
            .arg(copy.path().join("scripts/runbook-url.sh"))
            .args(["set", wiki]));
        assert!(ok, "set {wiki}:\n{out}");
        let mut links = 0;
        let rules = ["alerts/m365-exporter.rules.yml", PROMETHEUS_RULE];
        for rel in rules {
            let text = std::fs::read_to_string(copy.path().join(rel)).unwrap();
            let mut alert = "";
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix("- alert:") {
                    alert = name.trim();
                }
                if let Some(url) = line.strip_prefix("runbook_url:") {
                    assert_eq!(url.trim(), link(alert), "{rel}");
                    links += 1;
                }
            }
        }
        assert!(links > 20, "{links} links");
        let (ok, out) = run(Command::new(&promtool).args(["test", "rules"]).args(
            files
                .iter()
                .filter(|f| f.to_string_lossy().contains("/tests/"))
                .map(|f| copy.path().join(f.strip_prefix(root()).unwrap())),
        ));
        assert!(ok, "promtool test rules after set {wiki}:\n{out}");
    }
}
