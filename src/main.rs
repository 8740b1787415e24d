//! The tessera server binary: parses the command line and configuration,
//! sets up logging, and runs the node (see `node`).
mod api;
mod config;
mod disk_model;
mod http;
mod metrics;
mod node;

use std::io::IsTerminal;

use config::{Cli, Command};

/// Every shard allocates and frees small objects per request (frames,
/// rows, futures) on its own thread: mimalloc's thread-local heaps serve
/// them without glibc's arena bookkeeping.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_or_exit();
    let config = match cli.load_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tessera: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&config.log_level);
    let result = match cli.command {
        Some(Command::PrintConfig) => toml::to_string(&config)
            .map(|text| print!("{text}"))
            .map_err(anyhow::Error::from),
        Some(Command::CheckConfig) => {
            println!("configuration is valid");
            Ok(())
        }
        Some(Command::IoTune { output, duration }) => disk_model::io_tune(
            &config,
            &output,
            std::time::Duration::from_secs_f64(duration),
        ),
        Some(Command::Run) | None => {
            scheduler::guard::install_panic_hook();
            node::run(config)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("tessera: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Readable logs on stderr at the configured level; `RUST_LOG` overrides.
/// glommio logs through `log`, bridged so its warnings are seen.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
