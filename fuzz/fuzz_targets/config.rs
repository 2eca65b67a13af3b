//! The main configuration file: any text is a config or a ConfigError.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = m365_exporter::config::Config::parse(text, "fuzz.yml") {
            let _ = c.to_redacted_yaml();
        }
    }
});
