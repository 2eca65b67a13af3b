//! Certificate, workload identity and managed identity credentials against
//! the simulator, over real sockets. Test certificates are made by openssl at
//! test time (tests/support/certs.rs).

mod support;

use support::procs;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use m365_exporter::auth::credentials::{
    FederatedTokenCredential, ManagedIdentityCredential, MiEndpoint,
};
use m365_exporter::auth::grant::{token_url, JWT_BEARER};
use m365_exporter::auth::{Credential, TokenProvider};
use m365_exporter::certificate::{AssertionClaims, CertificateMaterial};
use m365_exporter::cli::app::{Running, WebOptions};
use m365_exporter::config::Config;
use m365_exporter::metrics::Live;
use m365_exporter::simulator::{
    SimOptions, Simulator, SIM_CLIENT_ID, SIM_IDENTITY_HEADER, SIM_TENANT_ID,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::certs::{make, TestCert};
use support::{fast_retries, get, parse, sum, value, wait_for, Sample, SimTenant};

const GRAPH: &str = "https://graph.microsoft.com";

fn config(url: &str, credential: &str) -> Config {
    let yaml = format!(
        r#"
defaults:
  service_health: {{interval: 1s}}
  messages: {{enabled: false}}
tenants:
{}"#,
        SimTenant::new("contoso", url).credential(credential)
    );
    Config::parse(&yaml, "test").unwrap()
}

async fn scrape(exp: &Running) -> Vec<Sample> {
    parse(&get(&format!("{}/metrics", exp.url())).await.2)
}

fn write(path: &Path, text: &str) {
    // Write then rename, as a secret rotation (kubelet, cert-manager) does.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn success(exp: &Running) -> Vec<Sample> {
    wait_for(
        "service_health success",
        Duration::from_secs(30),
        || async {
            let m = scrape(exp).await;
            let ok = support::select(&m, "m365_collector_success", &[("tenant", "contoso")])
                .iter()
                .any(|s| s.value == 1.0);
            ok.then_some(m)
        },
    )
    .await
}

#[test]
fn assertion_verifies_with_the_certificate_key_and_claims_are_right() {
    let dir = tempfile::tempdir().unwrap();
    let c = make(dir.path(), "a", 365);
    for pem in [&c.pem_pkcs8, &c.pem_pkcs1] {
        let m = CertificateMaterial::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(m.not_after, c.not_after);
        let url = token_url("https://login.microsoftonline.com", SIM_TENANT_ID);
        let jwt = m.assertion(&url, SIM_CLIENT_ID).unwrap();
        // The header as sent, read without the JWT crate: the names are Microsoft's.
        let raw: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                jwt.split('.').next().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        // Entra's current certificate-credentials page: PS256 with
        // x5t#S256, and no SHA-1 x5t beside it.
        assert_eq!(raw["alg"], "PS256");
        assert_eq!(raw["typ"], "JWT");
        assert_eq!(raw["x5t#S256"], c.x5t_s256.as_str());
        assert!(raw.get("x5t").is_none(), "{raw}");
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(header.x5t_s256.as_deref(), Some(c.x5t_s256.as_str()));
        // Verified with the public key openssl extracted from the certificate.
        let key = DecodingKey::from_rsa_pem(c.public_key_pem.as_bytes()).unwrap();
        let mut v = Validation::new(Algorithm::PS256);
        v.set_audience(&[&url]);
        v.set_issuer(&[SIM_CLIENT_ID]);
        v.sub = Some(SIM_CLIENT_ID.into());
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(&jwt, &key, &v)
            .unwrap()
            .claims;
        assert!(claims.exp - claims.nbf <= 600 && claims.exp > claims.nbf);
        let now = chrono::Utc::now().timestamp();
        assert!((claims.nbf - now).abs() <= 5);
        let again: AssertionClaims =
            jsonwebtoken::decode(&m.assertion(&url, SIM_CLIENT_ID).unwrap(), &key, &v)
                .unwrap()
                .claims;
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
        assert_ne!(claims.jti, again.jti, "jti is unique per assertion");
    }
}

#[test]
fn a_key_from_another_certificate_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (make(dir.path(), "a", 365), make(dir.path(), "b", 365));
    let b_key = &b.pem_pkcs8[b.pem_pkcs8.find("-----BEGIN PRIVATE KEY").unwrap()..];
    let e = CertificateMaterial::from_pem(format!("{}{b_key}", a.cert_pem).as_bytes())
        .err()
        .unwrap();
    assert!(e.contains("does not belong"), "{e}");
    let e = CertificateMaterial::from_pem(a.cert_pem.as_bytes())
        .err()
        .unwrap();
    assert!(e.contains("no private key"), "{e}");
    // The config loader refuses it the same way (exit 2 in the binary).
    let path = dir.path().join("mixed.pem");
    std::fs::write(&path, format!("{}{b_key}", a.cert_pem)).unwrap();
    let e = Config::parse(
        &format!(
            "tenants:\n  - name: x\n    tenant_id: {SIM_TENANT_ID}\n    client_id: {SIM_CLIENT_ID}\n    client_certificate_path: {}\n",
            path.display()
        ),
        "t.yml",
    )
    .unwrap_err();
    assert_eq!(e.key, "tenants[0].client_certificate_path");
}

/// The simulator refuses an assertion whose signature is not made by the
/// registered certificate's key, even with that certificate's thumbprint.
#[tokio::test]
async fn simulator_refuses_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (make(dir.path(), "a", 365), make(dir.path(), "b", 365));
    let sim = Simulator::start(SimOptions {
        client_certificate: Some(a.cert_pem.clone()),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let url = token_url(&sim.url(), SIM_TENANT_ID);
    let post = |assertion: String| {
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(&url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", SIM_CLIENT_ID),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                    ("scope", "https://graph.microsoft.com/.default"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // The genuine one passes.
    let good = CertificateMaterial::from_pem(a.pem_pkcs1.as_bytes())
        .unwrap()
        .assertion(&url, SIM_CLIENT_ID)
        .unwrap();
    assert_eq!(post(good).await.status(), 200);
    // A's thumbprint, B's signature.
    let b_key = &b.pem_pkcs8[b.pem_pkcs8.find("-----BEGIN PRIVATE KEY").unwrap()..];
    let a_key = &a.pem_pkcs8[a.pem_pkcs8.find("-----BEGIN PRIVATE KEY").unwrap()..];
    let forged = sign(&a, Algorithm::PS256, false, true, &url, b_key);
    let r = post(forged).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("AADSTS700027"));
    // The older page's pair (RS256 with x5t) is documented too: accepted.
    let older = sign(&a, Algorithm::RS256, true, false, &url, a_key);
    assert_eq!(post(older).await.status(), 200);
    // A pair no page documents (what this exporter once sent: RS256 with
    // x5t#S256, with or without x5t) is refused, signature or not.
    for (x5t, x5t_s256) in [(false, true), (true, true)] {
        let mixed = sign(&a, Algorithm::RS256, x5t, x5t_s256, &url, a_key);
        let r = post(mixed).await;
        assert_eq!(r.status(), 401);
        let body = r.text().await.unwrap();
        assert!(body.contains("not a documented pair"), "{body}");
    }
    // B's own assertion: B is not registered.
    let other = CertificateMaterial::from_pem(b.pem_pkcs8.as_bytes())
        .unwrap()
        .assertion(&url, SIM_CLIENT_ID)
        .unwrap();
    assert_eq!(post(other).await.status(), 401);
    sim.stop().await;
}

/// An assertion for `aud` with `cert`'s thumbprint(s) in the header as
/// chosen, signed `alg` with `key_pem` (PKCS#8).
fn sign(
    cert: &TestCert,
    alg: Algorithm,
    x5t: bool,
    x5t_s256: bool,
    aud: &str,
    key_pem: &str,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut h = Header::new(alg);
    h.x5t = x5t.then(|| cert.x5t.clone());
    h.x5t_s256 = x5t_s256.then(|| cert.x5t_s256.clone());
    jsonwebtoken::encode(
        &h,
        &AssertionClaims {
            aud: aud.into(),
            iss: SIM_CLIENT_ID.into(),
            sub: SIM_CLIENT_ID.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + 300,
        },
        &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A simulator holding `registered` certificate(s) and an exporter whose
/// tenant uses the PEM `pem_text`, written to `dir`.
async fn with_certificate(
    dir: &Path,
    registered: String,
    token_lifetime: Duration,
    pem_text: &str,
) -> (Simulator, Running, std::path::PathBuf) {
    let sim = Simulator::start(SimOptions {
        client_certificate: Some(registered),
        token_lifetime,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let pem = dir.join("contoso.pem");
    write(&pem, pem_text);
    let cfg = config(
        &sim.url(),
        &format!("client_certificate_path: {}", pem.display()),
    );
    let exp = Running::start(&cfg, &WebOptions::default(), &fast_retries())
        .await
        .unwrap();
    (sim, exp, pem)
}

/// End to end: the exporter authenticates with a certificate, reports its
/// notAfter, and picks up a rotated PEM without restart.
#[tokio::test]
async fn certificate_rotation_and_expiry_metric() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b): (TestCert, TestCert) = (make(dir.path(), "a", 400), make(dir.path(), "b", 800));
    // Both registered, as during a real rotation; short tokens so the
    // exporter asks again soon.
    let (sim, exp, pem) = with_certificate(
        dir.path(),
        format!("{}{}", a.cert_pem, b.cert_pem),
        Duration::from_secs(2),
        &a.pem_pkcs8,
    )
    .await;
    let m = success(&exp).await;
    let t = ("tenant", "contoso");
    assert_eq!(
        value(&m, "m365_auth_certificate_expiry_timestamp_seconds", &[t]),
        a.not_after as f64
    );

    write(&pem, &b.pem_pkcs1);
    let m = wait_for(
        "rotated certificate in use",
        Duration::from_secs(30),
        || async {
            let m = scrape(&exp).await;
            let v = value(&m, "m365_auth_certificate_expiry_timestamp_seconds", &[t]);
            (v == b.not_after as f64).then_some(m)
        },
    )
    .await;
    let before = sum(
        &m,
        "m365_auth_token_requests_total",
        &[t, ("result", "success")],
    );
    let m = wait_for(
        "a token with the new certificate",
        Duration::from_secs(30),
        || async {
            let m = scrape(&exp).await;
            (sum(
                &m,
                "m365_auth_token_requests_total",
                &[t, ("result", "success")],
            ) > before)
                .then_some(m)
        },
    )
    .await;
    assert_eq!(
        sum(
            &m,
            "m365_auth_token_requests_total",
            &[t, ("result", "failure")]
        ),
        0.0
    );
    exp.stop().await.unwrap();
    sim.stop().await;
}

/// A certificate the tenant's app does not hold is refused by the token
/// endpoint: the collector fails, the failure is counted.
#[tokio::test]
async fn unregistered_certificate_fails_the_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (make(dir.path(), "a", 365), make(dir.path(), "b", 365));
    let (sim, exp, _) = with_certificate(
        dir.path(),
        a.cert_pem.clone(),
        Duration::from_secs(3600),
        &b.pem_pkcs8,
    )
    .await;
    let t = ("tenant", "contoso");
    wait_for("token failure counted", Duration::from_secs(30), || async {
        let m = scrape(&exp).await;
        (sum(
            &m,
            "m365_auth_token_requests_total",
            &[t, ("result", "failure")],
        ) > 0.0
            && value(
                &m,
                "m365_collector_success",
                &[t, ("collector", "service_health")],
            ) == 0.0)
            .then_some(())
    })
    .await;
    exp.stop().await.unwrap();
    sim.stop().await;
}

#[tokio::test]
async fn workload_identity_reads_the_rotated_token_file_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        federated_token: Some("projected-token-2".into()),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let file = dir.path().join("azure-identity-token");
    write(&file, "projected-token-1\n");
    let cred = FederatedTokenCredential {
        token_url: token_url(&sim.url(), SIM_TENANT_ID),
        client_id: SIM_CLIENT_ID.into(),
        path: file.clone(),
    };
    let http = reqwest::Client::new();
    let e = cred.fetch(&http, GRAPH).await.err().unwrap();
    assert_eq!(e.status, Some(401));
    assert!(e.message.contains("AADSTS70021"), "{e}");
    // The platform rotates the file; the same credential uses it next time.
    write(&file, "projected-token-2\n");
    let t = cred.fetch(&http, GRAPH).await.unwrap();
    assert!(t.lifetime > Duration::ZERO);

    // And end to end through the configuration.
    let cfg = config(
        &sim.url(),
        &format!("federated_token_file: {}", file.display()),
    );
    let exp = Running::start(&cfg, &WebOptions::default(), &fast_retries())
        .await
        .unwrap();
    success(&exp).await;
    exp.stop().await.unwrap();
    sim.stop().await;
}

/// A managed identity token through the token cache, then used on Graph.
async fn managed_identity_works(sim: &Simulator, endpoint: MiEndpoint) {
    let cred = ManagedIdentityCredential::new(
        endpoint,
        Some("11111111-2222-3333-4444-555555555555".into()),
    );
    let tokens = TokenProvider::new(
        "contoso",
        Arc::new(cred),
        reqwest::Client::new(),
        Arc::new(Live::new()),
    );
    let token = tokens.token(GRAPH).await.unwrap();
    assert_eq!(token, tokens.token(GRAPH).await.unwrap(), "cached");
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v1.0/admin/serviceAnnouncement/healthOverviews",
            sim.url()
        ))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn managed_identity_imds_and_app_service_against_the_simulator() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    managed_identity_works(&sim, MiEndpoint::Imds { root: sim.url() }).await;
    managed_identity_works(
        &sim,
        MiEndpoint::AppService {
            endpoint: format!("{}/msi/token", sim.url()),
            header: m365_exporter::secret::Secret::new(SIM_IDENTITY_HEADER),
        },
    )
    .await;
    let reqs = sim.requests();
    let imds: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .collect();
    assert_eq!(imds.len(), 1, "one IMDS request, then the cache");
    assert_eq!(imds[0].param("api-version").as_deref(), Some("2018-02-01"));
    assert_eq!(imds[0].param("resource").as_deref(), Some(GRAPH));
    assert_eq!(
        imds[0].param("client_id").as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    let app: Vec<_> = reqs.iter().filter(|r| r.path == "/msi/token").collect();
    assert_eq!(app.len(), 1);
    assert_eq!(app[0].param("api-version").as_deref(), Some("2019-08-01"));

    // A wrong X-IDENTITY-HEADER is refused.
    let cred = ManagedIdentityCredential::new(
        MiEndpoint::AppService {
            endpoint: format!("{}/msi/token", sim.url()),
            header: m365_exporter::secret::Secret::new("wrong"),
        },
        None,
    );
    let e = cred
        .fetch(&reqwest::Client::new(), GRAPH)
        .await
        .err()
        .unwrap();
    assert_eq!(e.status, Some(401));
    sim.stop().await;
}

/// IMDS while its host is updated (404, then 410): the token comes once
/// the update is over; the failures before are retried, not reported.
#[tokio::test]
async fn managed_identity_waits_for_an_imds_update() {
    let sim = Simulator::start(SimOptions {
        imds_updating: Duration::from_secs(2),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    managed_identity_works(&sim, MiEndpoint::Imds { root: sim.url() }).await;
    let answers: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .map(|r| r.status)
        .collect();
    assert_eq!(answers.first(), Some(&404), "{answers:?}");
    assert!(answers.contains(&410), "{answers:?}");
    assert_eq!(answers.last(), Some(&200), "{answers:?}");
    sim.stop().await;
}

/// The real binary, configured with `managed_identity`, finds the endpoint
/// from its environment as the Azure SDKs do: IMDS (root overridden by
/// AZURE_POD_IDENTITY_AUTHORITY_HOST), then App Service (IDENTITY_ENDPOINT +
/// IDENTITY_HEADER). Nothing is ever sent to 169.254.169.254.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_end_to_end_in_both_forms() {
    use procs::{free_port, ChildGuard};
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yml");
    let u = sim.url();
    std::fs::write(
        &cfg,
        format!(
            "defaults:\n  messages: {{enabled: false}}\ntenants:\n{}",
            SimTenant::new("contoso", &u).credential("managed_identity: {}")
        ),
    )
    .unwrap();
    let forms: [(&str, Vec<(&str, String)>); 2] = [
        (
            "/metadata/identity/oauth2/token",
            vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST", u.clone())],
        ),
        (
            "/msi/token",
            vec![
                ("IDENTITY_ENDPOINT", format!("{u}/msi/token")),
                ("IDENTITY_HEADER", SIM_IDENTITY_HEADER.to_string()),
                // Set too, to show App Service wins when its pair is present.
                (
                    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                    "http://127.0.0.1:9".to_string(),
                ),
            ],
        ),
    ];
    for (path, env) in forms {
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
        cmd.arg("--config.file")
            .arg(&cfg)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .env_remove("IDENTITY_ENDPOINT")
            .env_remove("IDENTITY_HEADER")
            .env_remove("AZURE_POD_IDENTITY_AUTHORITY_HOST")
            .envs(env);
        let _child = ChildGuard::spawn("exporter", cmd, dir.path());
        let url = format!("http://127.0.0.1:{port}/metrics");
        wait_for(path, Duration::from_secs(30), || async {
            let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
            let m = parse(&body);
            let ok = support::select(&m, "m365_collector_success", &[("tenant", "contoso")])
                .iter()
                .any(|s| s.value == 1.0);
            ok.then_some(())
        })
        .await;
        assert!(
            sim.requests()
                .iter()
                .any(|r| r.path == path && r.status == 200),
            "{path} used"
        );
    }
    sim.stop().await;
}
