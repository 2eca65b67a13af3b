//! Management API content listings (`subscriptions/content` pages).
//! The body is `m365_exporter_fuzz::content_listing` (fuzz/src/lib.rs), which the stable
//! suite also runs over this target's corpus (tests/fuzz_corpus.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| m365_exporter_fuzz::content_listing(data));
