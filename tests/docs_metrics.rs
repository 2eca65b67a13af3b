//! docs/metrics.md is generated from the metric catalog
//! (`src/metrics/catalog.rs`): this test fails when the file is stale, and
//! rewrites it with `UPDATE_DOCS=1 cargo test --test docs_metrics`.

use m365_exporter::metrics::catalog;

const DOC: &str = "docs/metrics.md";

fn path(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn metrics_doc_is_generated_from_the_catalog() {
    let want = catalog::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v != "0") {
        std::fs::write(path(DOC), &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(path(DOC)).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()))
            + 1;
        panic!(
            "{DOC} is stale (first difference at line {line}): regenerate it from \
             src/metrics/catalog.rs with `UPDATE_DOCS=1 cargo test --test docs_metrics` \
             and commit it"
        );
    }
}

#[test]
fn every_family_is_in_the_doc_once() {
    let doc = catalog::markdown();
    for d in catalog::all() {
        assert_eq!(
            doc.matches(&format!("\n## {}\n", d.name)).count(),
            1,
            "{}",
            d.name
        );
        assert!(doc.contains(d.help), "{}: HELP", d.name);
    }
}

/// The README keeps no copy of the table: it points to the generated one.
#[test]
fn readme_points_to_the_metrics_doc() {
    let readme = std::fs::read_to_string(path("README.md")).unwrap();
    assert!(
        readme.contains("(docs/metrics.md)"),
        "README.md must link docs/metrics.md"
    );
    let copied: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `m365_"))
        .collect();
    assert!(
        copied.is_empty(),
        "README.md has metric table rows again; the reference is docs/metrics.md: {copied:?}"
    );
}
