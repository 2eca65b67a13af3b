//! The README's metrics table lists exactly the metrics the code exposes
//! (rows marked "(planned)" excepted).

use m365_exporter::metrics::{Family, Live};
use std::collections::BTreeSet;

#[test]
fn metrics_table_matches_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut documented = BTreeSet::new();
    let mut planned = BTreeSet::new();
    for line in readme.lines().filter(|l| l.starts_with("| `m365_")) {
        let name = line.split('`').nth(1).unwrap().to_string();
        if line.contains("(planned)") {
            planned.insert(name);
        } else {
            documented.insert(name);
        }
    }
    let mut code: BTreeSet<String> = Family::ALL.iter().map(|f| f.name().to_string()).collect();
    code.extend(Live::new().metric_names());
    let missing: Vec<_> = code.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&code).collect();
    assert!(missing.is_empty(), "in code, not in README: {missing:?}");
    assert!(extra.is_empty(), "in README, not in code: {extra:?}");
    assert!(
        planned.iter().all(|p| !code.contains(p)),
        "a planned metric exists now: {planned:?}"
    );
}
