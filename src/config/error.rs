//! The configuration error, naming the key. A leaf, so that module configuration
//! sections (`src/<module>/config.rs`) can report problems without importing the loader.

use std::path::PathBuf;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed.
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A key is unknown or its value invalid.
    #[error("invalid configuration at `{key}`: {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    /// A problem with one key.
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.to_string(), message: message.into() }
    }
}
