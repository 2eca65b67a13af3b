//! Audit content blobs (JSON arrays of records) and their timestamps.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = m365_exporter::activity::records::parse_blob(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = m365_exporter::timefmt::parse_unix(s);
    }
});
