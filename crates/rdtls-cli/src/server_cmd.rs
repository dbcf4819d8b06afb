//! `dtls server`: Qt's DTLS server example with every option of a real server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::ArgMatches;
use rdtls::proto::resumption::TicketKeys;
use rdtls::proto::{CertResolver, ClientAuth, Config};

use crate::opts::{self, TlsArgs};
use crate::server::DtlsServer;

/// Whether to ask clients for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VerifyClient {
    /// Do not ask.
    None,
    /// Ask; accept clients without one.
    Optional,
    /// Ask and require a valid one.
    Required,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dtls server --listen 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f
  dtls server --listen [::1]:4433 --psk alice:0011 --psk bob:2233 --psk-hint 'my server'
  dtls server --listen 0.0.0.0:4433 --psk-key 1a2b3c4d5e6f --idle-timeout 600
  dtls server --listen 0.0.0.0:4433 --cert server.pem --key server.key --ca ca.pem --verify-client required
  dtls server --listen 0.0.0.0:4433 --cert a.pem --key a.key --sni a.example --cert b.pem --key b.key --sni b.example
  dtls server --listen 0.0.0.0:4433 --cert server.pem --key server.key --ticket-key-file /etc/dtls/tickets.key")]
pub(crate) struct Args {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    #[command(flatten)]
    tls: TlsArgs,
    /// The PSK identity hint sent to clients.
    #[arg(long, value_name = "TEXT")]
    psk_hint: Option<String>,
    /// The SNI host name the preceding --cert serves (repeatable).
    #[arg(long = "sni", value_name = "NAME")]
    snis: Vec<String>,
    /// Whether to ask clients for a certificate.
    #[arg(long, value_enum, default_value_t = VerifyClient::None)]
    verify_client: VerifyClient,
    /// Do not verify clients with a cookie exchange (HelloVerifyRequest). A client restarting
    /// on the port of a live connection still gets one.
    #[arg(long)]
    no_cookie: bool,
    /// Close connections that receive nothing for this many seconds (default: never).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    idle_timeout: Option<Duration>,
    /// Most connections, handshaking or established, at once.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// When the server is full, the connection whose peer has sent nothing for longest makes
    /// room for a newcomer, once that is longer than this many seconds.
    #[arg(long, value_name = "SECONDS", default_value = "1800", value_parser = parse_seconds)]
    stale_after: Duration,
    /// Log the server's counters every SECONDS (handshakes by outcome, cookies, drops, traffic).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    stats_interval: Option<Duration>,
    /// Seal session tickets with keys derived from the secret in FILE (hex, at least 16
    /// bytes), created with a random one if absent: servers sharing the file resume each
    /// other's sessions.
    #[arg(long, value_name = "FILE", conflicts_with = "no_tickets")]
    ticket_key_file: Option<PathBuf>,
    /// Issue no session tickets: clients resume by session ID only.
    #[arg(long)]
    no_tickets: bool,
}

/// The ticket key secret in `path`, made (32 random bytes, readable by the owner alone) if
/// the file does not exist.
fn ticket_secret(path: &std::path::Path) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = zeroize::Zeroizing::new(text);
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!("{}: others can read the ticket key secret (chmod 600)", path.display());
                }
            }
            let secret = zeroize::Zeroizing::new(
                crate::log::unhex(text.trim()).with_context(|| format!("{}: not hex", path.display()))?,
            );
            anyhow::ensure!(secret.len() >= 16, "{}: a ticket key secret needs at least 16 bytes", path.display());
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = zeroize::Zeroizing::new(vec![0; 32]);
            rdtls::proto::crypto::default_provider().fill_random(&mut secret)?;
            let mut file = std::fs::OpenOptions::new();
            file.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
            let mut f = file.open(path).with_context(|| format!("creating {}", path.display()))?;
            std::io::Write::write_all(&mut f, format!("{}\n", crate::log::hex(&secret)).as_bytes())?;
            tracing::info!("created the ticket key file {}", path.display());
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A positive number of seconds (fractions allowed).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v <= 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// A certificate option group: --cert with the --key, --key-password and --sni that follow it
/// (before the next --cert).
struct CertGroup {
    cert: PathBuf,
    key: PathBuf,
    password: Option<String>,
    sni: Option<String>,
}

fn cert_groups(args: &Args, m: &ArgMatches) -> anyhow::Result<Vec<CertGroup>> {
    let idx = |id: &str| m.indices_of(id).map(|i| i.collect::<Vec<_>>()).unwrap_or_default();
    let (ci, ki, pi, si) = (idx("certs"), idx("keys"), idx("key_passwords"), idx("snis"));
    if ci.len() != ki.len() {
        bail!("each --cert needs its --key ({} certificates, {} keys)", ci.len(), ki.len());
    }
    let mut groups = Vec::new();
    for (n, &at) in ci.iter().enumerate() {
        let end = ci.get(n + 1).copied().unwrap_or(usize::MAX);
        let within = |list: &[usize]| list.iter().position(|&i| i > at && i < end);
        let key =
            within(&ki).with_context(|| format!("--cert {} has no --key after it", args.tls.certs[n].display()))?;
        groups.push(CertGroup {
            cert: args.tls.certs[n].clone(),
            key: args.tls.keys[key].clone(),
            password: within(&pi).map(|i| args.tls.key_passwords[i].clone()),
            sni: within(&si).map(|i| args.snis[i].clone()),
        });
    }
    if si.len() > groups.iter().filter(|g| g.sni.is_some()).count() {
        bail!("every --sni must follow the --cert it names");
    }
    Ok(groups)
}

/// The server configuration the options describe.
pub(crate) fn config(args: &Args, m: &ArgMatches) -> anyhow::Result<Config> {
    let mut b = opts::common(&args.tls, Config::builder())?;
    let any_key: Option<Vec<u8>> =
        args.tls.psk_key.as_deref().map(crate::log::unhex).transpose().context("--psk-key")?;
    let keys = opts::parse_psks(&args.tls.psks)?;
    let have_psk = any_key.is_some() || !keys.is_empty();
    if have_psk {
        b = b.psk_server_callback(move |identity| {
            tracing::info!("PSK callback, received a client's identity: '{}'", String::from_utf8_lossy(identity));
            let key = keys.iter().find(|(id, _)| id == identity).map(|(_, k)| k.clone()).or_else(|| any_key.clone());
            if key.is_none() {
                tracing::warn!("unknown PSK identity '{}'", String::from_utf8_lossy(identity));
            }
            key.map(Into::into)
        });
    }
    if let Some(hint) = &args.psk_hint {
        b = b.psk_identity_hint(hint.as_bytes().to_vec());
    }
    let groups = cert_groups(args, m)?;
    if !groups.is_empty() {
        let resolver = Arc::new(CertResolver::new());
        let mut have_default = false;
        for g in &groups {
            let key = opts::certified_key(&g.cert, &g.key, g.password.as_deref())?;
            match &g.sni {
                Some(name) => resolver.add(name, key.clone()),
                None => {
                    resolver.set_default(key.clone());
                    have_default = true;
                }
            }
            if !have_default {
                resolver.set_default(key);
                have_default = true;
            }
        }
        b = b.cert_resolver(resolver);
    }
    if !have_psk && groups.is_empty() {
        bail!("nothing to authenticate with: give --psk-key, --psk, or --cert with --key");
    }
    b = b.client_auth(match args.verify_client {
        VerifyClient::None => ClientAuth::None,
        VerifyClient::Optional => ClientAuth::Optional,
        VerifyClient::Required => ClientAuth::Required,
    });
    if args.verify_client != VerifyClient::None && args.tls.cas.is_empty() {
        bail!("--verify-client {:?} needs --ca to verify client certificates", args.verify_client);
    }
    b = b.cookie_verification(!args.no_cookie);
    if let Some(path) = &args.ticket_key_file {
        let provider = rdtls::proto::crypto::default_provider();
        let secret = ticket_secret(path)?;
        let keys = TicketKeys::from_secret(&*provider, &secret, rdtls::proto::resumption::DEFAULT_TICKET_KEY_PERIOD)?;
        b = b.ticket_keys(Arc::new(keys));
    }
    b = b.session_tickets(!args.no_tickets);
    Ok(b.build()?)
}

pub(crate) fn run(args: &Args, m: &ArgMatches, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let mut server = DtlsServer::listen(args.listen, config(args, m)?)?;
    server.set_idle_timeout(args.idle_timeout);
    server.set_limits(args.max_connections as usize, args.stale_after);
    server.set_stats_interval(args.stats_interval);
    // Tests and scripts learn the port from this line when listening on port 0.
    println!("listening on {}", server.local_addr()?);
    let stats = server.run(stop, None)?;
    let c = &stats.counters;
    tracing::info!(
        "served {} handshakes ({} failed) and {} datagrams; {} cookies sent, {} datagrams of unknown peers \
         dropped; {} datagrams in, {} out",
        stats.handshakes,
        c.failed,
        stats.datagrams,
        c.cookies_sent,
        c.dropped_unverified,
        c.datagrams_in,
        c.datagrams_out
    );
    Ok(ExitCode::SUCCESS)
}
