//! `dtls`: DTLS from the command line.

mod association;
mod demo;
mod log;
mod server;

use clap::{Parser, Subcommand};

/// DTLS 1.2 from the command line: Qt's DTLS server and client examples, and a demo.
#[derive(Debug, Parser)]
#[command(name = "dtls", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server and three named client associations on loopback with the example PSK:
    /// handshakes, pings and ACKs for a few rounds, a clean shutdown, and a summary.
    ///
    /// Example: dtls demo --rounds 3 --interval 0.5
    Demo(demo::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    log::init();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
