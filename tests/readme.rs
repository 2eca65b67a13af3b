//! The README is the front door: it opens
//! with the demo and test commands, its usage lines name every flag, and its
//! links (and those of docs/) reach files and headings that exist.

mod support;

use support::markdown;

use markdown::anchors_of;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The first lines of the README's first code block, as typed.
fn first_commands(readme: &str) -> Vec<String> {
    let start = readme.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let end = start + readme[start..].find("```").expect("end of the block");
    readme[start..end]
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The README opens with the two commands a newcomer types, and both still work as
/// written: `cargo run --release -- demo` (the default binary has a `demo`
/// subcommand) and `make test` (the Makefile's `test` target, which CI runs).
#[test]
fn readme_starts_with_the_demo_and_the_test_command() {
    let readme = read("README.md");
    let before_block = &readme[..readme.find("```").unwrap()];
    assert!(
        before_block
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
            <= 1,
        "the two commands come first, right after the title"
    );
    assert_eq!(
        first_commands(&readme),
        ["cargo run --release -- demo", "make test"]
    );
    let cargo = read("Cargo.toml");
    assert!(
        cargo.contains("default-run = \"m365-exporter\""),
        "`cargo run` needs default-run"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&help.stdout)
            .lines()
            .any(|l| l.trim_start().starts_with("demo ")),
        "m365-exporter has no demo subcommand"
    );
    let makefile = read("Makefile");
    assert!(
        makefile.lines().any(|l| l.starts_with("test:")),
        "Makefile: no test target"
    );
    assert!(read(".ci/run").contains("make test"), "CI runs make test");
}

/// The long flags `m365-exporter [SUBCOMMAND] --help` lists.
fn flags_of(subcommand: Option<&str>) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_m365-exporter"))
        .args(subcommand)
        .arg("--help")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("--"))
                .filter(|_| l.trim_start().starts_with('-'))
        })
        .map(|w| w.trim_end_matches(',').to_string())
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The README's usage lines name every flag of every subcommand, and no other (the
/// `serve` line once missed two).
#[test]
fn usage_lines_name_every_flag() {
    let readme = read("README.md");
    let section = &readme[readme.find("## Command line").expect("## Command line")..];
    let start = section.find("```\n").expect("usage block") + 4;
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let mut documented: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in block.lines() {
        let line = line.split('#').next().unwrap_or_default();
        if let Some(rest) = line.strip_prefix("m365-exporter ") {
            let first = rest.split_whitespace().next().unwrap_or_default();
            let sub = first.trim_matches(|c| c == '[' || c == ']');
            documented.push((sub.to_string(), BTreeSet::new()));
        }
        let (_, flags) = documented.last_mut().expect("a usage line first");
        for word in line.split(|c: char| c.is_whitespace() || c == '[' || c == ']') {
            if let Some(flag) = word.strip_prefix("--") {
                let name = flag.split('=').next().unwrap_or_default();
                flags.insert(format!("--{name}"));
            }
        }
    }
    let subcommands = [
        "serve",
        "demo",
        "simulator",
        "check-config",
        "healthcheck",
        "report",
    ];
    for sub in subcommands {
        let (_, flags) = documented
            .iter()
            .find(|(s, _)| s == sub)
            .unwrap_or_else(|| panic!("README: no usage line for {sub}"));
        let mut flags = flags.clone();
        flags.remove("--version");
        assert_eq!(flags, flags_of(Some(sub)), "README usage line of {sub}");
    }
    // Without a subcommand, serve's flags work as they are.
    let (_, flags) = documented.iter().find(|(s, _)| s == "serve").unwrap();
    assert!(
        flags_of(None).is_subset(flags),
        "top-level flags are serve's"
    );
}

/// Written by other branches (the metric catalog and the configuration reference,
/// both generated from code): links to them are allowed before they land.
const GENERATED_ELSEWHERE: &[&str] = &["docs/metrics.md", "docs/configuration.md"];

/// Every relative link of the README and docs/ reaches a file of the repository, and
/// a `#fragment` into Markdown reaches a heading there: the front door only points at
/// rooms that exist.
#[test]
fn relative_links_reach_files_and_headings() {
    let mut pages = vec!["README.md".to_string(), "CHANGELOG.md".to_string()];
    for f in std::fs::read_dir(root().join("docs")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    let mut checked = 0;
    for page in &pages {
        let text = read(page);
        let dir = Path::new(page).parent().unwrap_or(Path::new(""));
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let link = &rest[..end];
            if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if path.is_empty() {
                PathBuf::from(page)
            } else {
                normalise(&dir.join(path))
            };
            let rel = target.to_string_lossy().replace('\\', "/");
            checked += 1;
            if GENERATED_ELSEWHERE.contains(&rel.as_str()) && !root().join(&target).exists() {
                continue;
            }
            assert!(
                root().join(&target).exists(),
                "{page}: link {link:?} → {rel} does not exist"
            );
            if !fragment.is_empty() && rel.ends_with(".md") {
                assert!(
                    anchors_of(&read(&rel)).contains(fragment),
                    "{page}: link {link:?}: {rel} has no heading #{fragment}"
                );
            }
        }
    }
    assert!(checked > 50, "only {checked} links checked");
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
