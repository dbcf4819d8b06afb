//! `dtls`: DTLS from the command line.

mod association;
mod cert;
mod client_cmd;
mod demo;
mod log;
mod netcat;
mod opts;
mod server;
mod server_cmd;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use rdtls::proto::Connection as Core;

/// DTLS 1.2 from the command line: Qt's DTLS server and client examples, a demo, certificates,
/// and netcat over DTLS.
#[derive(Debug, Parser)]
#[command(name = "dtls", version, about, long_about = None, after_help = "Examples:
  dtls demo
  dtls cert --out certs
  dtls server --listen 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f
  dtls client --connect 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f --name alice --count 3")]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = log::LogFormat::Text)]
    log_format: log::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A server and three named client associations on loopback with the example PSK:
    /// handshakes, pings and ACKs for a few rounds, a clean shutdown, and a summary.
    Demo(demo::Args),
    /// Qt's DTLS server example: verifies clients with cookies, answers each datagram with
    /// `to <peer>: ACK`; Ctrl-C closes every connection with close_notify.
    Server(server_cmd::Args),
    /// Qt's DTLS client example: named associations pinging one or many servers.
    Client(client_cmd::Args),
    /// Writes a CA, a server certificate (localhost, 127.0.0.1, ::1) and a client certificate.
    Cert(cert::Args),
    /// Netcat client: stdin lines become datagrams, received datagrams go to stdout.
    Connect(netcat::ConnectArgs),
    /// Netcat server: received datagrams go to stdout, stdin lines go to every peer.
    Listen(netcat::ListenArgs),
}

/// One line about a connection's negotiated parameters.
pub(crate) fn describe(conn: &Core) -> String {
    let mut s = format!(
        "{} {}",
        conn.protocol().map(|p| p.to_string()).unwrap_or_default(),
        conn.cipher_suite().map_or("?", |c| c.openssl_name)
    );
    if let Some(group) = conn.key_exchange_group() {
        s.push_str(&format!(", group {group}"));
    }
    if let Some(id) = conn.psk_identity() {
        s.push_str(&format!(", PSK identity '{}'", String::from_utf8_lossy(id)));
    }
    if let Some(cert) = conn.peer_certificates().first() {
        let provider = rdtls::proto::crypto::default_provider();
        let digest = provider.hash(rdtls::proto::crypto::HashAlgorithm::Sha256, &[cert.as_ref()]);
        s.push_str(&format!(", peer certificate sha256:{}", log::hex(&digest.as_bytes()[..8])));
    }
    if conn.extended_master_secret() {
        s.push_str(", extended master secret");
    }
    if conn.resumed() {
        s.push_str(", resumed");
    }
    if let (Some(ours), Some(theirs)) = (conn.connection_id(), conn.peer_connection_id()) {
        s.push_str(&format!(", CID ours {} theirs {}", hex_or_empty(ours), hex_or_empty(theirs)));
    }
    if let Some(protocol) = conn.alpn_protocol() {
        s.push_str(&format!(", ALPN '{}'", String::from_utf8_lossy(protocol)));
    }
    if let Some(profile) = conn.srtp_profile() {
        s.push_str(&format!(", SRTP profile {profile}"));
    }
    s
}

/// Hex, or `(empty)` for a zero-length connection ID.
fn hex_or_empty(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "(empty)".to_owned()
    } else {
        log::hex(bytes)
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    log::init(cli.log_format);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // SIGINT and SIGTERM: finish cleanly (close_notify to every peer).
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
    }
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Server(args) => {
            let sub = matches.subcommand_matches("server").expect("server matches");
            server_cmd::run(args, sub, &stop)
        }
        Command::Client(args) => client_cmd::run(args, stop),
        Command::Cert(args) => cert::run(args),
        Command::Connect(args) => netcat::connect(args, &stop),
        Command::Listen(args) => netcat::listen(args, &stop),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
