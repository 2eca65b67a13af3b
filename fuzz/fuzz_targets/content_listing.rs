//! Management API content listings (`subscriptions/content` pages).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = m365_exporter::activity::client::parse_content_page(data);
});
