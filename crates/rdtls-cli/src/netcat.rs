//! `dtls connect` / `dtls listen`: netcat over DTLS. Each stdin line is sent as one datagram;
//! each received datagram is written to stdout as a line.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use rdtls::{Client, Server, ServerEvent};

use crate::opts::TlsArgs;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dtls connect 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f --name me
  echo hello | dtls connect 127.0.0.1:4433 --ca certs/ca.pem --server-name localhost")]
pub(crate) struct ConnectArgs {
    /// Server address.
    #[arg(value_name = "ADDR:PORT")]
    server: SocketAddr,
    /// PSK identity used with --psk-key.
    #[arg(long, default_value = "dtls")]
    name: String,
    /// The name the server's certificate must carry (default: the address).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Continue despite certificate verification errors.
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dtls listen 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f
  dtls listen [::]:4433 --cert certs/server.pem --key certs/server.key")]
pub(crate) struct ListenArgs {
    /// Address to listen on.
    #[arg(value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The PSK identity hint sent to clients.
    #[arg(long, value_name = "TEXT")]
    psk_hint: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// Reads stdin lines on a thread; `None` on end of input.
fn stdin_lines() -> mpsc::Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(None);
    });
    rx
}

fn print(data: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

pub(crate) fn connect(args: &ConnectArgs, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let config = Arc::new(crate::client_cmd::config(&args.tls, &args.name, args.insecure)?);
    let name = args.server_name.clone().unwrap_or_else(|| args.server.ip().to_string());
    let timeout = config.handshake_timeout();
    let mut client = Client::connect_with_name(args.server, &name, config, Some(timeout))
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", args.server))?;
    tracing::info!("connected to {}: {}", args.server, crate::describe(&client.connection()));
    let lines = stdin_lines();
    let mut buf = vec![0u8; 65_535];
    let mut input_open = true;
    while !stop.load(Ordering::Relaxed) {
        while input_open {
            match lines.try_recv() {
                Ok(Some(line)) => {
                    client.send(line.as_bytes()).context("send")?;
                }
                Ok(None) | Err(mpsc::TryRecvError::Disconnected) => {
                    // End of input: close after giving replies a moment to arrive.
                    input_open = false;
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let wait = if input_open { Duration::from_millis(50) } else { Duration::from_millis(500) };
        match client.recv(&mut buf, Some(wait)) {
            Ok(n) => print(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if !input_open {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                tracing::info!("the server closed the connection");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(anyhow::anyhow!("receive: {e}")),
        }
    }
    client.close()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn listen(args: &ListenArgs, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let mut b = crate::opts::common(&args.tls, rdtls::Config::builder())?;
    let any_key = args.tls.psk_key.as_deref().map(crate::log::unhex).transpose().context("--psk-key")?;
    let keys = crate::opts::parse_psks(&args.tls.psks)?;
    if any_key.is_some() || !keys.is_empty() {
        b = b.psk_server_callback(move |id| {
            keys.iter().find(|(i, _)| i == id).map(|(_, k)| k.clone()).or_else(|| any_key.clone()).map(Into::into)
        });
    }
    if let Some(hint) = &args.psk_hint {
        b = b.psk_identity_hint(hint.as_bytes().to_vec());
    }
    if let (Some(cert), Some(key)) = (args.tls.certs.first(), args.tls.keys.first()) {
        b = b.certificate(crate::opts::certified_key(cert, key, args.tls.key_passwords.first().map(String::as_str))?);
    }
    let mut server = Server::bind(args.listen, Arc::new(b.build()?))?;
    println!("listening on {}", server.local_addr()?);
    let lines = stdin_lines();
    let mut peers: Vec<SocketAddr> = Vec::new();
    let mut input_open = true;
    while !stop.load(Ordering::Relaxed) {
        while input_open {
            match lines.try_recv() {
                Ok(Some(line)) => {
                    for p in &peers {
                        let _ = server.send_to(*p, line.as_bytes());
                    }
                }
                Ok(None) | Err(mpsc::TryRecvError::Disconnected) => input_open = false,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        match server.poll(Some(Duration::from_millis(50)))? {
            Some(ServerEvent::Connected(p)) => {
                let desc = server.connection(p).map(crate::describe).unwrap_or_default();
                tracing::info!("{p} connected: {desc}");
                peers.push(p);
            }
            Some(ServerEvent::Message(_, data)) => print(&data)?,
            Some(ServerEvent::Closed(p, e)) => {
                tracing::info!("{p} closed{}", e.map(|e| format!(": {e}")).unwrap_or_default());
                peers.retain(|x| *x != p);
            }
            Some(_) | None => {}
        }
    }
    server.shutdown()?;
    Ok(ExitCode::SUCCESS)
}
