//! Bake the git revision into `m365_exporter_build_info{revision}`.
//! `M365_EXPORTER_REVISION` set by a packager wins; outside a git checkout
//! (a crate tarball) the revision is "unknown".

fn main() {
    println!("cargo:rerun-if-env-changed=M365_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    if std::env::var_os("M365_EXPORTER_REVISION").is_some() {
        return;
    }
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(rev) = rev {
        println!("cargo:rustc-env=M365_EXPORTER_REVISION={rev}");
    }
}
