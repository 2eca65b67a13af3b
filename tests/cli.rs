//! The binary as a user runs it: exit codes, one-line config errors naming
//! file and key, secrets never printed or logged.

use support::procs;
mod support;

use procs::{free_port, wait_listening, wait_until, ChildGuard};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_m365-exporter");
const SECRET: &str = "Sup3r-S3cret-Value-42";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tenant(extra: &str) -> String {
    format!(
        "tenants:\n  - name: contoso\n    tenant_id: 8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b\n    client_id: 0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5\n    client_secret: {SECRET}\n{extra}"
    )
}

fn check_config(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["check-config", "--config.file"])
        .arg(path)
        .env_clear()
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_redacted_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "ok.yml", &tenant("    messages: {interval: 10m}\n"));
    let (code, out, err) = check_config(&p);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));
    assert!(out.contains("client_secret: <redacted>"), "{out}");
    assert!(
        out.contains("interval: 10m") && out.contains("graph: https://graph.microsoft.com"),
        "{out}"
    );
}

#[test]
fn each_bad_input_has_its_own_message_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "unknown.yml",
            tenant("    colour: blue\n"),
            "tenants[0]",
            "unknown field `colour`",
        ),
        (
            "nocred.yml",
            tenant("").replace(&format!("    client_secret: {SECRET}\n"), ""),
            "tenants[0].client_secret_file",
            "no credential",
        ),
        (
            "double.yml",
            tenant("    client_secret_file: /etc/hostname\n"),
            "tenants[0].client_secret_file",
            "more than one credential",
        ),
        (
            "guid.yml",
            tenant("").replace("0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5", "0c1d2e3f"),
            "tenants[0].client_id",
            "is not a GUID",
        ),
        (
            "dur.yml",
            tenant("    service_health: {interval: soon}\n"),
            "tenants[0].service_health.interval",
            "is not a duration",
        ),
        (
            "dup.yml",
            format!("{}{}", tenant(""), &tenant("")["tenants:\n".len()..]),
            "tenants[1].name",
            "duplicate tenant name",
        ),
        (
            "file.yml",
            tenant("").replace(
                &format!("client_secret: {SECRET}"),
                "client_secret_file: /nonexistent/s",
            ),
            "tenants[0].client_secret_file",
            "cannot read /nonexistent/s",
        ),
        ("yaml.yml", "tenants: [".to_string(), "", "while parsing"),
        (
            "reconcile.yml",
            tenant("    cloud: gcc\n    activity: {enabled: true, reconcile: {enabled: true}}\n"),
            "tenants[0].activity.reconcile",
            "in the global cloud only",
        ),
    ];
    for (file, text, key, reason) in cases {
        let p = write(&dir, file, text);
        let (code, out, err) = check_config(&p);
        assert_eq!(code, 2, "{file}: {err}");
        assert_eq!(out, "", "{file}");
        assert_eq!(err.lines().count(), 1, "{file}: one line: {err}");
        assert!(
            err.contains(&p.display().to_string()),
            "{file}: names the file: {err}"
        );
        assert!(err.contains(key), "{file}: names {key}: {err}");
        assert!(err.contains(reason), "{file}: says {reason}: {err}");
        assert!(!err.contains(SECRET), "{file}: leaked the secret: {err}");
    }
    let (code, _, err) = check_config(std::path::Path::new("/nonexistent/config.yml"));
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/config.yml: cannot read file"),
        "{err}"
    );
}

#[test]
fn simulator_rejects_a_bad_audit_live_every() {
    // The soak's flowing audit feed (scripts/bench-runtime.py): at least 1s.
    for bad in ["500ms", "soon"] {
        let out = Command::new(BIN)
            .args([
                "simulator",
                "--listen=127.0.0.1:0",
                &format!("--audit-live-every={bad}"),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--audit-live-every"), "{err}");
    }
}

/// A domain `tenant_id`: `check-config` shows the GUID the Management API
/// will be called with (`tenant_guid`, and the effective `publisher_id`);
/// a domain the authority says is no tenant's is exit 2 naming the key; an
/// authority out of reach is a warning, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_resolves_a_domain_tenant_id() {
    use m365_exporter::simulator::{SimOptions, Simulator, SIM_TENANT_DOMAIN, SIM_TENANT_ID};
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let with = |tenant_id: &str, login: &str| {
        tenant(&format!(
            "    endpoints: {{login: \"{login}\", management: \"{login}\"}}\n    activity: {{enabled: true}}\n"
        ))
        .replace("8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", tenant_id)
    };
    let url = sim.url();
    let run = |name: &str, text: String| {
        let p = write(&dir, name, &text);
        tokio::task::spawn_blocking(move || check_config(&p))
    };
    let (code, out, err) = run("domain.yml", with(SIM_TENANT_DOMAIN, &url))
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "tenant_id: {SIM_TENANT_DOMAIN}\n  tenant_guid: {SIM_TENANT_ID}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("publisher_id: {SIM_TENANT_ID}")),
        "{out}"
    );
    let (code, _, err) = run("nowhere.yml", with("nowhere.example", &url))
        .await
        .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tenants[0].tenant_id"), "{err}");
    assert!(err.contains("AADSTS90002"), "{err}");
    // Nothing listens on port 9 of loopback: a warning, the config is valid.
    let (code, out, err) = run("down.yml", with(SIM_TENANT_DOMAIN, "http://127.0.0.1:9"))
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tenant_guid: null"), "{out}");
    assert!(
        err.contains("warning") && err.contains("tenants[0].tenant_id"),
        "{err}"
    );
    sim.stop().await;
}

#[test]
fn environment_mode() {
    let out = Command::new(BIN)
        .arg("check-config")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("environment: AZURE_TENANT_ID: not set"),
        "{err}"
    );
    let out = Command::new(BIN)
        .arg("check-config")
        .env_clear()
        .env("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
        .env("AZURE_CLIENT_ID", "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5")
        .env("AZURE_CLIENT_SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("name: default") && !stdout.contains(SECRET),
        "{stdout}"
    );
}

/// Run the exporter with debug logging against a simulator that rejects its
/// secret, then accepts it: no log line ever carries the secret.
#[test]
fn secret_never_logged() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Command::new(BIN);
    sim.args([
        "simulator",
        &format!("--listen=127.0.0.1:{port}"),
        "--scenario=incident",
    ]);
    let _sim = ChildGuard::spawn("simulator", sim, dir.path());
    wait_listening("the simulator", port);
    let url = format!("http://127.0.0.1:{port}");
    let good = m365_exporter::simulator::SIM_CLIENT_SECRET;
    let secret_file = write(&dir, "secret", "wrong-Sup3r-S3cret\n");
    let cfg = format!(
        "tenants:\n{}",
        support::SimTenant::new("contoso", &url)
            .credential(&format!("client_secret_file: {}", secret_file.display()))
            .with("service_health: {interval: 1s}")
            .with("messages: {interval: 1s}")
    );
    let cfg_path = write(&dir, "c.yml", &cfg);
    for format in ["logfmt", "json"] {
        std::fs::write(&secret_file, "wrong-Sup3r-S3cret\n").unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--config.file",
            cfg_path.to_str().unwrap(),
            &format!("--web.listen-address=127.0.0.1:{}", free_port()),
            "--log.level=debug",
            &format!("--log.format={format}"),
        ]);
        let name = format!("exporter-{format}");
        let exp = ChildGuard::spawn(&name, cmd, dir.path());
        wait_until(
            "the rejected secret reported",
            Duration::from_secs(60),
            || exp.log_text().contains("invalid_client").then_some(()),
        );
        // Rotate the secret file: the next token request reads it afresh.
        std::fs::write(&secret_file, good).unwrap();
        wait_until(
            "the rotated secret picked up",
            Duration::from_secs(60),
            || exp.log_text().contains("refresh recovered").then_some(()),
        );
        exp.sigkill();
        let log = std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap();
        assert!(
            log.contains("invalid_client"),
            "the rejected secret was reported ({format}): {log}"
        );
        assert!(
            log.contains("refresh recovered"),
            "rotated secret picked up ({format}): {log}"
        );
        for s in ["wrong-Sup3r-S3cret", good, "sim."] {
            assert!(!log.contains(s), "{format} log leaked {s:?}:\n{log}");
        }
    }
}
