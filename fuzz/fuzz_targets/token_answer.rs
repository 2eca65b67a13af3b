//! Token endpoint answers: the first byte picks the HTTP status.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 401, 429, 500, 503][usize::from(first) % 6];
    let _ = m365_exporter::auth::grant::parse_token_response(status, body);
});
