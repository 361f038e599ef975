//! `hearth check-config`: validates the configuration and prints it with secrets redacted.

use super::ConfigArgs;

/// Runs the command.
pub(super) fn run(args: &ConfigArgs) -> Result<(), String> {
    let config = args.load()?;
    print!("{}", config.redacted_yaml());
    Ok(())
}
