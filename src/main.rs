use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use oathbridge::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("OATHBRIDGE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("oathbridge={default_level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    run(cli)
}
