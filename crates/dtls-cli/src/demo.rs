//! `dtls demo`: the server and client examples together in one process, on loopback.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::association::{self, DtlsAssociation};
use crate::server::{self, DtlsServer};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Pings each association sends.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Seconds between pings (fractions allowed).
    #[arg(long, default_value_t = 0.5)]
    interval: f64,
    /// Association names (each is also its PSK identity).
    #[arg(long = "name", default_values_t = ["alice".to_owned(), "bob".to_owned(), "carol".to_owned()])]
    names: Vec<String>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.interval.is_finite() && args.interval > 0.0, "--interval must be positive");
    let interval = Duration::from_secs_f64(args.interval);
    let server = DtlsServer::listen("127.0.0.1:0".parse()?, server::example_config()?)?;
    let addr = server.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let server_thread = {
        let stop = stop.clone();
        thread::spawn(move || server.run(&stop))
    };

    let clients: Vec<_> = args
        .names
        .iter()
        .map(|name| {
            let config = association::example_config(name)?;
            let assoc = DtlsAssociation::new(name, addr, config)?;
            let rounds = args.rounds;
            Ok(thread::spawn(move || assoc.run(rounds, interval, Duration::from_secs(5))))
        })
        .collect::<anyhow::Result<_>>()?;

    // Let every association finish its pings (and get the last ACK), then shut the server down:
    // each association must see the shutdown alert.
    thread::sleep(interval * args.rounds + Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let server_stats = server_thread.join().map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let results: Vec<_> = clients
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow::anyhow!("client panicked")))
        .collect::<Result<_, _>>()?;

    println!();
    println!("Summary");
    println!(
        "  server: {} handshakes, {} datagrams answered, close_notify sent to {} peers",
        server_stats.handshakes, server_stats.datagrams, server_stats.shutdown_sent
    );
    let mut ok = server_stats.handshakes == results.len();
    for r in &results {
        let good = r.error.is_none() && r.pings == args.rounds && r.responses == r.pings && r.shutdown_alert;
        ok &= good;
        println!(
            "  {:<8} pings {}/{}  ACKs {}  shutdown alert {}  {}",
            r.name,
            r.pings,
            args.rounds,
            r.responses,
            if r.shutdown_alert { "received" } else { "missing" },
            r.error.as_deref().unwrap_or(if good { "ok" } else { "incomplete" })
        );
    }
    println!("  result: {}", if ok { "every ping was answered" } else { "FAILED" });
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
