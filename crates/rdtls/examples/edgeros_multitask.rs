//! EdgerOS's multi-task DTLS server, on the blocking socket layer: one thread accepts, a pool
//! of worker threads serves; and the `SO_REUSEPORT` variant where every worker accepts.
//!
//! In EdgerOS's example, `main.js` creates the server and two tasks; `server.accept()` gives
//! each established connection its own UDP socket, `main.js` sends `client.sockFd` to
//! `task[next]` (round robin) and calls `client.flyAway()`; `task.js` rebuilds the connection
//! with `Dtls.createByFd(name, sockFd)` and serves it from an `iosched` READ event that drains
//! `client.recv(buffer, 0, length, 0)` and logs "Client lost" on an error.
//!
//! | EdgerOS                                      | here                                             |
//! |----------------------------------------------|--------------------------------------------------|
//! | `accept()` with a new socket per connection  | [`ListenerOptions::connection_sockets`]`(true)`   |
//! | `task[next].send({sockFd})` + `flyAway()`    | send the [`Connection`] itself over a channel (it is `Send`), or [`Connection::fly_away`] → (descriptor, session state) |
//! | `Dtls.createByFd(name, sockFd)` in the task  | [`Connection::from_fd`]`(fd, state, config)` (no handshake: it is done) |
//! | READ handler: `recv(buffer, 0, len, 0)` loop | [`Connection::recv`] with `Some(Duration::ZERO)` until `TimedOut` |
//! | several server tasks on one port             | [`Listener::bind_workers`] (`SO_REUSEPORT`, one shared cookie secret) |
//!
//! EdgerOS asks whether `createByFd`'s blocking handshake can be made non-blocking: here it
//! never blocks a worker, because the listener's driver thread runs every handshake
//! concurrently and `accept` only returns established connections. `fly_away` needs a
//! connection with its own socket and a configuration with
//! `ConfigBuilder::allow_session_export(true)`; the state it returns holds the session keys,
//! so hand it over privately. The same pair crosses process boundaries (clear `FD_CLOEXEC`,
//! pass the descriptor number and the state to the child; see `crates/rdtls/tests/handoff.rs`).
//!
//! # Per-connection sockets
//!
//! The listener creates a connection's own socket when its handshake completes, just after
//! sending its last flight. A datagram the client sends before that socket exists reaches the
//! listening socket instead; the listener hands it to the connection, which looks for such
//! early datagrams during its first seconds, so nothing is lost. The tasks here greet each
//! client first, as EdgerOS's sample server does.
//!
//! # Serving many connections per thread
//!
//! A worker thread serving many connections with the blocking API has no readiness
//! notification: it polls each connection with a zero timeout and naps when nothing arrived
//! (a few milliseconds of latency). For thousands of connections per worker, use the async
//! layer (`rdtls::tokio`, see the `edgeros_async` example) instead.
//!
//! # Running
//!
//! ```text
//! cargo run -p rdtls --example edgeros_multitask            # loopback scenario
//! dtls cert --out certs
//! cargo run -p rdtls --example edgeros_multitask -- pool 127.0.0.1:2049 certs/server.pem certs/server.key [TASKS]
//! cargo run -p rdtls --example edgeros_multitask -- reuseport 127.0.0.1:2049 certs/server.pem certs/server.key [WORKERS]
//! cargo run -p rdtls --example edgeros_sync -- client 127.0.0.1:2049 certs/ca.pem localhost
//! ```
//!
//! The scenario runs three servers on ephemeral loopback ports, each with six or eight
//! concurrent clients that wait for the greeting, send two messages, check both answers and
//! close: the task pool
//! with connections moved to the tasks, the task pool with `fly_away`/`from_fd` hand-offs,
//! and three `SO_REUSEPORT` workers. It checks that every message was answered and that the
//! pool's round robin gave each task its share.

mod common;

use std::error::Error;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::Pki;
use rdtls::{Config, Connection, Listener, ListenerOptions};

/// How long a worker naps when none of its connections had anything to read.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// How often the accepting loops look at their stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// The server's configuration: a certificate, and session export so that connections can be
/// handed over with `fly_away` (EdgerOS `name` is not needed: the configuration travels with
/// the code that serves).
fn server_config(cert: &[u8], key: &[u8]) -> Result<Arc<Config>, rdtls::Error> {
    let config =
        Config::builder().certificate(common::certified_key(cert, key, None)?).allow_session_export(true).build()?;
    Ok(Arc::new(config))
}

// ===== the tasks =====

/// What the accepting thread sends a task (EdgerOS `task[next].send({sockFd})`).
enum Handoff {
    /// The connection itself: it is `Send`.
    Connection(Connection),
    /// `flyAway()`: the socket's descriptor and the session state, for `createByFd`.
    #[cfg(unix)]
    Descriptor { fd: std::os::fd::OwnedFd, state: zeroize::Zeroizing<Vec<u8>> },
}

/// How the accepting thread hands connections over.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Move,
    #[cfg(unix)]
    FlyAway,
}

/// What a task did.
#[derive(Debug, Default, Clone, Copy)]
struct Report {
    task: usize,
    connections: usize,
    messages: usize,
}

struct Client {
    peer: SocketAddr,
    conn: Connection,
}

/// A worker (EdgerOS `task.js`): serves the connections handed to it.
struct Task {
    /// For `createByFd`.
    #[cfg_attr(not(unix), allow(dead_code))]
    config: Arc<Config>,
    clients: Vec<Client>,
    buffer: Vec<u8>,
    report: Report,
}

impl Task {
    fn new(id: usize, config: Arc<Config>) -> Self {
        Self { config, clients: Vec::new(), buffer: vec![0; 4096], report: Report { task: id, ..Report::default() } }
    }

    /// `Task.on('message', …)`: takes a connection over (`createByFd` for a descriptor).
    fn adopt(&mut self, handoff: Handoff) {
        let id = self.report.task;
        let conn = match handoff {
            Handoff::Connection(conn) => conn,
            #[cfg(unix)]
            Handoff::Descriptor { fd, state } => match Connection::from_fd(fd, &state, self.config.clone()) {
                Ok(conn) => conn,
                Err(e) => {
                    println!("task {id}: createByFd failed: {e}");
                    return;
                }
            },
        };
        let Ok(peer) = conn.peer_addr() else { return };
        println!("task {id}: serving {peer}");
        // The server speaks first (see "Per-connection sockets" above).
        let mut conn = conn;
        if let Err(e) = conn.send(format!("welcome from task {id}").as_bytes()) {
            println!("task {id}: cannot greet {peer}: {e}");
            return;
        }
        self.clients.push(Client { peer, conn });
        self.report.connections += 1;
    }

    /// The READ handler of every connection: drain what arrived with a zero timeout, answer
    /// each message, forget the connections that are gone. Returns whether anything happened.
    fn serve_ready(&mut self) -> bool {
        let id = self.report.task;
        let mut active = false;
        let (buffer, report) = (&mut self.buffer, &mut self.report);
        self.clients.retain_mut(|client| loop {
            match client.conn.recv(buffer, Some(Duration::ZERO)) {
                Ok(num) => {
                    active = true;
                    report.messages += 1;
                    let text = String::from_utf8_lossy(&buffer[..num]).into_owned();
                    println!("task {id}: Client: {} Say: {text}", client.peer);
                    if let Err(e) = client.conn.send(format!("task {id} got: {text}").as_bytes()) {
                        println!("task {id}: cannot answer {}: {e}", client.peer);
                    }
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => break true,
                Err(e) => {
                    active = true;
                    println!("task {id}: Client lost: {} ({e})", client.peer);
                    let _ = client.conn.close();
                    break false;
                }
            }
        });
        active
    }

    /// The server shuts down: close_notify to every client still connected.
    fn close_all(mut self) -> Report {
        for mut client in self.clients.drain(..) {
            println!("task {}: closing {}", self.report.task, client.peer);
            let _ = client.conn.close();
        }
        self.report
    }
}

/// A pool task's thread: takes hand-offs and serves until the pool closes (the server shuts
/// down), then closes its connections.
fn run_task(mut task: Task, handoffs: Receiver<Handoff>) -> Report {
    loop {
        if task.clients.is_empty() {
            // Idle: sleep until a connection is handed over, or the pool closes.
            match handoffs.recv() {
                Ok(h) => task.adopt(h),
                Err(_) => break,
            }
        }
        loop {
            match handoffs.try_recv() {
                Ok(h) => task.adopt(h),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return task.close_all(),
            }
        }
        if !task.serve_ready() {
            match handoffs.recv_timeout(IDLE_POLL) {
                Ok(h) => task.adopt(h),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    task.close_all()
}

/// EdgerOS `main.js`: accepts and hands each connection to `task[next]`, round robin, until
/// `stop`; then closes the pool (each task closes its connections) and shuts the listener
/// down.
fn pool_server(
    mut listener: Listener,
    config: Arc<Config>,
    tasks: usize,
    mode: Mode,
    stop: &AtomicBool,
) -> io::Result<Vec<Report>> {
    let (mut senders, mut threads) = (Vec::new(), Vec::new());
    for id in 0..tasks.max(1) {
        let (tx, rx) = mpsc::channel();
        let task = Task::new(id, config.clone());
        senders.push(tx);
        threads.push(thread::spawn(move || run_task(task, rx)));
    }
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let conn = match listener.accept_timeout(ACCEPT_POLL) {
            Ok(conn) => conn,
            Err(e) if e.kind() == ErrorKind::TimedOut => continue,
            Err(e) => return Err(e),
        };
        println!("main: New client: {} -> task {next} ({mode:?})", conn.peer_addr()?);
        let handoff = match mode {
            Mode::Move => Handoff::Connection(conn),
            #[cfg(unix)]
            Mode::FlyAway => {
                // flyAway(): this handle is done; the task owns the descriptor and the state.
                let (fd, state) = conn.fly_away()?;
                Handoff::Descriptor { fd, state }
            }
        };
        if senders[next].send(handoff).is_err() {
            println!("main: task {next} is gone");
        }
        next = (next + 1) % senders.len();
    }
    drop(senders);
    let reports = threads.into_iter().map(|t| t.join().unwrap_or_default()).collect();
    listener.shutdown()?;
    Ok(reports)
}

/// A `SO_REUSEPORT` worker: its own listener on the shared port; accepts and serves until
/// `stop`, then closes its connections and its listener.
fn run_worker(mut task: Task, mut listener: Listener, stop: &AtomicBool) -> io::Result<Report> {
    loop {
        let wait = if task.clients.is_empty() { ACCEPT_POLL } else { Duration::ZERO };
        match listener.accept_timeout(wait) {
            Ok(conn) => task.adopt(Handoff::Connection(conn)),
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
        let active = task.serve_ready();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if !active && !task.clients.is_empty() {
            thread::sleep(IDLE_POLL);
        }
    }
    let report = task.close_all();
    listener.shutdown()?;
    Ok(report)
}

// ===== the scenario =====

/// `count` concurrent clients, each sending two messages and checking the answers.
fn run_clients(addr: SocketAddr, ca: &str, count: usize, tag: &str) -> Result<(), Box<dyn Error>> {
    let config = Arc::new(Config::builder().root_store(common::roots(ca.as_bytes())?).build()?);
    let clients: Vec<_> = (0..count)
        .map(|i| {
            let (config, name) = (config.clone(), format!("{tag}-{i}"));
            thread::spawn(move || -> Result<(), String> {
                let t = Some(Duration::from_secs(5));
                let mut c =
                    Connection::connect_with_name(addr, "localhost", config, t).map_err(|e| format!("{name}: {e}"))?;
                let mut buf = [0u8; 256];
                // Wait for the server's greeting before speaking.
                let n = c.recv(&mut buf, t).map_err(|e| format!("{name}: no greeting: {e}"))?;
                if !buf[..n].starts_with(b"welcome from task ") {
                    return Err(format!("{name}: unexpected greeting '{}'", String::from_utf8_lossy(&buf[..n])));
                }
                for m in 0..2 {
                    let msg = format!("{name} message {m}");
                    c.send(msg.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
                    let n = c.recv(&mut buf, t).map_err(|e| format!("{name}: {e}"))?;
                    let answer = String::from_utf8_lossy(&buf[..n]);
                    if !answer.starts_with("task ") || !answer.ends_with(&msg) {
                        return Err(format!("{name}: unexpected answer '{answer}'"));
                    }
                }
                c.close().map_err(|e| format!("{name}: {e}"))
            })
        })
        .collect();
    for c in clients {
        c.join().map_err(|_| "a client panicked")??;
    }
    Ok(())
}

fn check(what: &str, reports: &[Report], clients: usize) -> Result<(), Box<dyn Error>> {
    let connections: usize = reports.iter().map(|r| r.connections).sum();
    let messages: usize = reports.iter().map(|r| r.messages).sum();
    for r in reports {
        println!("{what}: task {} served {} connections, {} messages", r.task, r.connections, r.messages);
    }
    if connections != clients || messages != 2 * clients {
        return Err(format!("{what}: expected {clients} connections and {} messages: {reports:?}", 2 * clients).into());
    }
    Ok(())
}

fn pool_scenario(pki: &Pki, mode: Mode) -> Result<(), Box<dyn Error>> {
    const TASKS: usize = 2;
    const CLIENTS: usize = 6;
    let config = server_config(pki.server_cert.as_bytes(), pki.server_key.as_bytes())?;
    let options = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with(([127, 0, 0, 1], 0).into(), config.clone(), options)?;
    let addr = listener.local_addr()?;
    println!("main: listening on {addr} with {TASKS} tasks ({mode:?})");
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        thread::spawn(move || pool_server(listener, config, TASKS, mode, &stop))
    };
    let clients = run_clients(addr, &pki.ca, CLIENTS, &format!("{mode:?}").to_lowercase());
    stop.store(true, Ordering::Relaxed);
    let reports = server.join().map_err(|_| "the accepting thread panicked")??;
    clients?;
    check(&format!("pool ({mode:?})"), &reports, CLIENTS)?;
    if reports.iter().any(|r| r.connections != CLIENTS / TASKS) {
        return Err(format!("round robin: every task should serve {}: {reports:?}", CLIENTS / TASKS).into());
    }
    Ok(())
}

fn reuseport_scenario(pki: &Pki) -> Result<(), Box<dyn Error>> {
    const WORKERS: usize = 3;
    const CLIENTS: usize = 8;
    let config = server_config(pki.server_cert.as_bytes(), pki.server_key.as_bytes())?;
    let listeners =
        Listener::bind_workers(([127, 0, 0, 1], 0).into(), config.clone(), ListenerOptions::default(), WORKERS)?;
    let addr = listeners[0].local_addr()?;
    println!("reuseport: {WORKERS} workers listening on {addr}");
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(id, listener)| {
            let (task, stop) = (Task::new(id, config.clone()), stop.clone());
            thread::spawn(move || run_worker(task, listener, &stop))
        })
        .collect();
    let clients = run_clients(addr, &pki.ca, CLIENTS, "reuseport");
    stop.store(true, Ordering::Relaxed);
    let mut reports = Vec::new();
    for w in workers {
        reports.push(w.join().map_err(|_| "a worker panicked")??);
    }
    clients?;
    // The kernel spreads clients by address hash: some worker may get none of a few clients.
    check("reuseport", &reports, CLIENTS)
}

fn scenario() -> Result<(), Box<dyn Error>> {
    let pki = Pki::generate()?;
    pool_scenario(&pki, Mode::Move)?;
    #[cfg(unix)]
    pool_scenario(&pki, Mode::FlyAway)?;
    reuseport_scenario(&pki)
}

// ===== command-line modes =====

fn serve(args: &[String], reuseport: bool) -> Result<(), Box<dyn Error>> {
    let [addr, cert, key, rest @ ..] = args else {
        return Err("usage: edgeros_multitask pool|reuseport ADDR CERT KEY [N]".into());
    };
    let n: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(2).max(1);
    let config = server_config(&common::read(cert)?, &common::read(key)?)?;
    let addr: SocketAddr = addr.parse()?;
    let stop = common::stop_on_quit();
    if reuseport {
        let listeners = Listener::bind_workers(addr, config.clone(), ListenerOptions::default(), n)?;
        println!("{n} workers listening on {}", listeners[0].local_addr()?);
        let workers: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(id, listener)| {
                let (task, stop) = (Task::new(id, config.clone()), stop.clone());
                thread::spawn(move || run_worker(task, listener, &stop))
            })
            .collect();
        for w in workers {
            println!("{:?}", w.join().map_err(|_| "a worker panicked")??);
        }
    } else {
        let options = ListenerOptions::default().connection_sockets(true);
        let listener = Listener::bind_with(addr, config.clone(), options)?;
        println!("listening on {} with {n} tasks", listener.local_addr()?);
        #[cfg(unix)]
        let mode = Mode::FlyAway;
        #[cfg(not(unix))]
        let mode = Mode::Move;
        for r in pool_server(listener, config, n, mode, &stop)? {
            println!("{r:?}");
        }
    }
    Ok(())
}

/// Runs the mode the arguments select.
fn run() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => scenario(),
        Some("pool") => serve(&args[1..], false),
        Some("reuseport") => serve(&args[1..], true),
        Some(_) => Err("usage: edgeros_multitask [pool|reuseport ADDR CERT KEY [N]]".into()),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::scenario().unwrap();
    }
}
