//! Markdown helpers shared by the tests that check the documentation's links
//! (tests/readme.rs) and the alert rules' runbook links (tests/dashboards.rs).
//!
//! Include with `#[path = "common/markdown.rs"] mod markdown;`.
#![allow(dead_code)]

use std::collections::BTreeSet;

/// GitHub's anchor for a Markdown heading.
pub fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every heading of a Markdown text (code blocks skipped).
pub fn anchors_of(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(github_anchor(line.trim_start_matches('#')));
        }
    }
    out
}
