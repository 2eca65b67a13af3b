//! Where the configuration comes from: a file, the environment, or a value
//! built in code; loading it validates it and keeps this replica's shard.

use super::error::ConfigError;
use super::file::Config;
use super::shard::Shard;
use std::path::PathBuf;

/// Where the configuration comes from.
#[derive(Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The AZURE_* variables (a reload re-validates them).
    Environment,
    /// A configuration built in code (tests, demo): reload re-applies it.
    Fixed(Config),
}

impl ConfigSource {
    /// Read and validate, then keep this replica's shard.
    pub fn load(&self, shard: Option<Shard>) -> Result<Config, ConfigError> {
        let config = match self {
            ConfigSource::File(p) => Config::load(p)?,
            ConfigSource::Environment => {
                Config::from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?
            }
            ConfigSource::Fixed(c) => c.clone(),
        };
        Ok(match shard {
            Some(s) => s.filter(config),
            None => config,
        })
    }
}
