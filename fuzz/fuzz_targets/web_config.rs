//! `--web.config.file`: any text is a web config or a ConfigError.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = m365_exporter::web::web_config::WebConfig::parse(
            text,
            "web.yml",
            std::path::Path::new("/nonexistent"),
        );
    }
});
