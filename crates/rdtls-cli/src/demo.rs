//! `dtls demo`: the server and client examples together in one process, on loopback.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::proto::enums::Protocol;

use crate::association::{self, DtlsAssociation, Plan};
use crate::server::{self, DtlsServer};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  dtls demo --rounds 3 --interval 0.5 --name alice --name bob")]
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
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let interval = Duration::from_secs_f64(args.interval);
    let server = DtlsServer::listen("127.0.0.1:0".parse()?, server::example_config()?)?;
    let addr = server.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    // The server shuts down once it answered every ping (each association then sees the
    // shutdown alert), or when the fallback below stops it.
    let expected = args.names.len() * args.rounds as usize;
    let server_thread = {
        let stop = stop.clone();
        thread::spawn(move || server.run(&stop, Some(expected)))
    };
    let plan = Plan {
        count: Some(args.rounds),
        interval,
        message: None,
        wait_for_shutdown: Some(Duration::from_secs(10)),
        stop: Arc::new(AtomicBool::new(false)),
        print: false,
    };
    let clients: Vec<_> = args
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // Every second association is a DTLS 1.2-only client: the one server answers both
            // versions.
            let newest = if i % 2 == 1 { Protocol::Dtls1_2 } else { Protocol::Dtls1_3 };
            let assoc = DtlsAssociation::new(name, addr, None, association::example_config(name, newest)?)?;
            let plan = plan.clone();
            Ok(thread::spawn(move || assoc.run(&plan)))
        })
        .collect::<anyhow::Result<_>>()?;
    let results: Vec<_> = clients
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow::anyhow!("an association panicked")))
        .collect::<Result<_, _>>()?;
    stop.store(true, Ordering::Relaxed);
    let server_stats = server_thread.join().map_err(|_| anyhow::anyhow!("server thread panicked"))??;

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
