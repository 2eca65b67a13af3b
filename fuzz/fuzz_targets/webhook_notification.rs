//! Webhook notification bodies (`POST /webhook/{tenant}`): parsed, then each
//! item checked against a tenant's inbox and delivered, as the receiver does.
//! The body is `m365_exporter_fuzz::webhook_notification` (fuzz/src/lib.rs), which the stable
//! suite also runs over this target's corpus (tests/fuzz_corpus.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| m365_exporter_fuzz::webhook_notification(data));
