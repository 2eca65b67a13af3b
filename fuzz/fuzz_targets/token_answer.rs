//! Token endpoint answers: the first byte picks the HTTP status.
//! The body is `m365_exporter_fuzz::token_answer` (fuzz/src/lib.rs), which the stable
//! suite also runs over this target's corpus (tests/fuzz_corpus.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| m365_exporter_fuzz::token_answer(data));
