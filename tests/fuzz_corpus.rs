//! The fuzz targets' stable smoke run: every file of every corpus in
//! `fuzz/corpus/` (and each of its prefixes) through the very function its
//! cargo-fuzz target calls (fuzz/src/lib.rs, compiled here as a module), so
//! `make test` exercises what `make fuzz` does without nightly. Also holds
//! the targets, the corpora and fuzz/Cargo.toml to one list: a target
//! without seeds, or seeds without a target, fails here.

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::collections::BTreeSet;
use std::path::Path;

fn names_in(dir: &Path, ext: Option<&str>) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_target_has_a_body_a_bin_and_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let listed: BTreeSet<String> = fuzz::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names_in(&root.join("fuzz_targets"), Some("rs")), listed);
    assert_eq!(names_in(&root.join("corpus"), None), listed);
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for name in &listed {
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "{name} is not a [[bin]] of fuzz/Cargo.toml"
        );
        let target = std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            target.contains(&format!("m365_exporter_fuzz::{name}(data)")),
            "fuzz_targets/{name}.rs does not run its body"
        );
    }
}

#[test]
fn every_corpus_file_and_its_prefixes_run_without_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut inputs = 0;
    for (name, body) in fuzz::TARGETS {
        let dir = corpus.join(name);
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            for end in 0..=data.len() {
                body(&data[..end]);
                inputs += 1;
            }
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seed", dir.display());
    }
    println!("figures: {inputs} inputs replayed");
}
