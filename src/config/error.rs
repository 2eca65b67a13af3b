//! [`ConfigError`]: what every configuration problem becomes, one line naming
//! the file, the key and the reason (the binary exits 2 on it).

/// One line: `FILE: KEY: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: String,
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Builds a [`ConfigError`] for a key of the section being validated.
pub(super) type ErrFn<'a> = dyn Fn(&str, String) -> ConfigError + 'a;
