//! `dtls client`: Qt's DTLS client example: named associations to one or many servers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use rdtls::proto::resumption::SessionStore;
use rdtls::proto::{Config, VerifyPeer};

use crate::association::{psk_as, DtlsAssociation, Plan};
use crate::opts::{self, TlsArgs};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dtls client --connect 127.0.0.1:4433 --psk-key 1a2b3c4d5e6f --name alice --name bob --count 3
  dtls client --connect 127.0.0.1:4433 --connect [::1]:4433 --associations 4 --psk-key 00ff
  dtls client --connect 127.0.0.1:4433 --ca ca.pem --server-name localhost --message hello --count 1
  dtls client --connect 127.0.0.1:4433 --insecure --cert client.pem --key client.key
  dtls client --connect 127.0.0.1:4433 --ca ca.pem --server-name localhost --session-file session.bin --count 1")]
pub(crate) struct Args {
    /// Server to connect to (repeatable: every association connects to every server).
    #[arg(long = "connect", value_name = "ADDR:PORT", required = true)]
    servers: Vec<SocketAddr>,
    /// An association name, also its PSK identity with --psk-key (repeatable).
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// Number of associations, named client-1, client-2, … (when no --name is given).
    #[arg(long, value_name = "N", default_value_t = 1)]
    associations: usize,
    /// Seconds between pings (fractions allowed).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    ping_interval: f64,
    /// Stop after N pings per association; exit 0 only if every ping was answered.
    #[arg(long, value_name = "N")]
    count: Option<u32>,
    /// Send this text instead of the example's ping.
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    /// The name the server's certificate must carry (sent as SNI for DNS names); default: the
    /// address.
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Continue despite certificate verification errors (and list them).
    #[arg(long)]
    insecure: bool,
    /// Resume the session saved in FILE if there is one, and save the new session there
    /// after the handshake (one association only: a session carries its client's identity).
    #[arg(long, value_name = "FILE")]
    session_file: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
}

/// A session kept in a file across runs: a store of one, loaded from the file if it holds one.
pub(crate) struct SessionFile {
    path: PathBuf,
    store: Arc<SessionStore>,
}

impl SessionFile {
    /// The session in `path`, offered to the server `name` at `server` whichever server saved
    /// it: servers that share a ticket key (`dtls server --ticket-key-file`) resume each
    /// other's sessions, and a server that cannot gives a full handshake.
    fn open(path: &std::path::Path, name: &str, server: SocketAddr) -> anyhow::Result<Self> {
        let store = SessionStore::new(1);
        match std::fs::read(path) {
            Ok(bytes) => match SessionStore::from_bytes(&bytes, 1) {
                Some(saved) => {
                    for (_, _, session) in saved.entries() {
                        store.insert(name, server, session);
                    }
                }
                None => tracing::warn!("{}: not a saved session; a full handshake follows", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        Ok(Self { path: path.to_owned(), store: Arc::new(store) })
    }

    /// Writes the store (its secrets: readable by the owner alone) to a new file that then
    /// replaces the old one, so that a reader never sees half a session and an existing
    /// file's looser permissions are not kept.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        if self.store.is_empty() {
            return Ok(());
        }
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}.tmp", std::process::id()));
        let tmp = self.path.with_file_name(name);
        let mut file = std::fs::OpenOptions::new();
        file.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
        let written = file.open(&tmp).and_then(|mut f| {
            std::io::Write::write_all(&mut f, &self.store.to_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", self.path.display()));
        }
        Ok(())
    }
}

/// The configuration of the association `name`.
pub(crate) fn config(tls: &TlsArgs, name: &str, insecure: bool) -> anyhow::Result<Config> {
    config_with(tls, name, insecure, None)
}

fn config_with(tls: &TlsArgs, name: &str, insecure: bool, sessions: Option<&SessionFile>) -> anyhow::Result<Config> {
    let mut b = opts::common(tls, Config::builder())?;
    if let Some(file) = sessions {
        b = b.session_store(file.store.clone());
    }
    let psks = opts::parse_psks(&tls.psks)?;
    let psk = match (psks.iter().find(|(id, _)| id == name.as_bytes()).or(psks.first()), &tls.psk_key) {
        (Some((id, key)), _) => Some((id.clone(), key.clone())),
        (None, Some(hex)) => Some((name.as_bytes().to_vec(), crate::log::unhex(hex).context("--psk-key")?)),
        (None, None) => None,
    };
    if let Some((identity, key)) = &psk {
        b = b.psk_callback(psk_as(name, identity.clone(), key.clone()));
    }
    match (tls.certs.first(), tls.keys.first()) {
        (Some(cert), Some(key)) => {
            b = b.client_certificate(opts::certified_key(cert, key, tls.key_passwords.first().map(String::as_str))?)
        }
        (None, None) => {}
        _ => bail!("--cert and --key go together"),
    }
    if insecure {
        b = b.verify_peer(VerifyPeer::Continue);
    } else if tls.cas.is_empty() && psk.is_none() {
        // Nothing else to trust: the system's roots (EdgerOS loadDefaultCerts).
        b = b.root_store(rdtls::system_roots().context("no --ca given and no system roots")?);
    }
    Ok(b.build()?)
}

fn names(args: &Args) -> Vec<String> {
    if args.names.is_empty() {
        (1..=args.associations.max(1)).map(|i| format!("client-{i}")).collect()
    } else {
        args.names.clone()
    }
}

pub(crate) fn run(args: &Args, stop: Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.ping_interval.is_finite() && args.ping_interval > 0.0,
        "--ping-interval must be a positive number of seconds"
    );
    let plan = Plan {
        count: args.count,
        interval: Duration::from_secs_f64(args.ping_interval),
        message: args.message.clone(),
        wait_for_shutdown: None,
        stop,
        print: true,
    };
    let sessions = match &args.session_file {
        Some(path) => {
            anyhow::ensure!(
                args.servers.len() * names(args).len() == 1,
                "--session-file keeps the session of one association: give one --connect and one name"
            );
            let server = args.servers[0];
            let name = args.server_name.clone().unwrap_or_else(|| server.ip().to_string());
            Some(Arc::new(SessionFile::open(path, &name, server)?))
        }
        None => None,
    };
    let mut threads = Vec::new();
    for server in &args.servers {
        for name in names(args) {
            let server_name = args.server_name.clone().unwrap_or_else(|| server.ip().to_string());
            let config = config_with(&args.tls, &name, args.insecure, sessions.as_deref())?;
            let mut assoc = DtlsAssociation::new(&name, *server, Some(&server_name), config)?;
            assoc.session_file = sessions.clone();
            let plan = plan.clone();
            threads.push(thread::spawn(move || assoc.run(&plan)));
        }
    }
    let mut ok = true;
    for t in threads {
        let r = t.join().map_err(|_| anyhow::anyhow!("an association panicked"))?;
        if let Some(e) = &r.error {
            eprintln!("{}: failed: {e}", r.name);
            ok = false;
        } else if let Some(count) = args.count {
            if r.responses < count {
                eprintln!("{}: only {} of {} pings were answered", r.name, r.responses, r.pings.max(count));
                ok = false;
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
