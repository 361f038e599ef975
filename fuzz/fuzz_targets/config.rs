//! The configuration loader: a YAML file merged with environment variables and CLI
//! flags, as `hearth serve` loads it. Any input must either load or fail with an error
//! naming the key; a configuration that loads must print (`check-config`) and load again
//! from its own YAML unchanged.
//!
//! Input: see [`Input`]; the seeds in `corpus/config` show the format.

#![no_main]

use hearth::Config;
use hearth::config::{CliOverrides, ConfigError};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The input: the YAML file, then optionally a line `%%` and one environment variable
/// per line (`NAME=value`); the lines `--bind=...` and `--data-dir=...` there are CLI flags.
struct Input {
    yaml: String,
    env: Vec<(String, String)>,
    cli: CliOverrides,
}

fn split(text: &str) -> Input {
    let (yaml, rest) = text.split_once("\n%%\n").unwrap_or((text, ""));
    let mut input = Input { yaml: yaml.to_string(), env: Vec::new(), cli: CliOverrides::default() };
    for line in rest.lines() {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        match k {
            "--bind" => input.cli.bind = Some(v.to_string()),
            "--data-dir" => input.cli.data_dir = Some(PathBuf::from(v)),
            _ => input.env.push((k.to_string(), v.to_string())),
        }
    }
    input
}

/// One file per fuzzing process, rewritten for each input.
fn config_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| std::env::temp_dir().join(format!("hearth-fuzz-config-{}.yaml", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Input { yaml, env, mut cli } = split(text);
    let path = config_file();
    std::fs::write(path, &yaml).expect("write the config file");
    cli.config_file = Some(path.clone());
    match Config::load_with(&cli, &env) {
        Ok(config) => {
            assert!(!config.redacted_yaml().is_empty(), "check-config prints nothing");
            let yaml = serde_yaml::to_string(&config).expect("the effective configuration serialises");
            match Config::from_yaml(&yaml) {
                Ok(again) => assert_eq!(again, config, "the effective configuration does not load back unchanged"),
                Err(e) => panic!("the effective configuration does not load back: {e}\n{yaml}"),
            }
        }
        Err(ConfigError::Invalid { key, message }) => assert!(!key.is_empty(), "an error names no key: {message}"),
        Err(ConfigError::Yaml { .. }) => {}
        Err(e @ ConfigError::Read { .. }) => panic!("the file was written: {e}"),
    }
});
