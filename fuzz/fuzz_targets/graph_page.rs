//! Graph pages (health overviews, issues, messages) and Graph/Management error bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use m365_exporter::api::graph::{parse_page, HealthOverview, Issue, Message};

fuzz_target!(|data: &[u8]| {
    let _ = parse_page::<HealthOverview>(data);
    let _ = parse_page::<Issue>(data);
    let _ = parse_page::<Message>(data);
    let _ = m365_exporter::api::error::parse_error_body(data);
});
