//! The tessera server binary. Startup wiring lives in the node module (to come); for now main
//! parses the command line and loads the configuration.

#[allow(dead_code, reason = "accessors used once the node is wired up")]
mod config;
#[allow(dead_code, reason = "wired into the node by the startup module")]
mod metrics;

use config::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_or_exit();
    let config = cli.load_config()?;
    match cli.command {
        Some(Command::PrintConfig) => print!("{}", toml::to_string(&config)?),
        Some(Command::CheckConfig) => println!("configuration is valid"),
        Some(Command::Run) | None => anyhow::bail!("the server is not wired up yet"),
    }
    Ok(())
}
