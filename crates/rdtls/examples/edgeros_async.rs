//! EdgerOS's `dtls` module in asynchronous mode, on tokio (`rdtls::tokio`, feature `tokio`).
//!
//! EdgerOS converts its synchronous calls to callbacks: `server.accept(undefined, (client,
//! remoteAddr) => …)` runs for each established connection, an `iosched.event(READ,
//! client.sockFd, …)` handler drains the connection with `client.recv(buffer, 0, length, 0)`
//! until it returns 0 and reports "Client lost" on an error, and `Dtls.createClient(opt,
//! sockaddr, (client) => …)` calls back once the client's handshake completed. Everything runs
//! from `iosched.poll()` in one loop.
//!
//! On tokio, each callback becomes the code after an `.await`, and each event handler a task:
//!
//! | EdgerOS                                         | here                                          |
//! |-------------------------------------------------|-----------------------------------------------|
//! | `Dtls.createServer(opt, sockaddr)`              | [`Listener::bind_with`]                        |
//! | `server.accept(undefined, callback)`            | `loop { listener.accept().await }` + `tokio::spawn` |
//! | `iosched.event(READ, client.sockFd, handler)`   | a task awaiting [`Connection::recv`]           |
//! | `client.recv(buffer, 0, length, 0)` (drain)     | [`Connection::recv_timeout`] with `Duration::ZERO` |
//! | `Dtls.createClient(opt, sockaddr, callback)`    | [`Connection::connect_with_name`]`.await`, then the callback's body |
//! | `client.send(...)`, `client.close()`            | [`Connection::send`]`.await`, [`Connection::close`]`.await` |
//! | `client.pending()`                              | [`Connection::pending`]`.await`                |
//! | `accept(remoteAddr, timeout)`                   | `tokio::time::timeout(t, listener.accept())` (cancel-safe) |
//! | `while (true) iosched.poll()`                   | the tokio runtime                              |
//!
//! The listener keeps its driver thread (cookie checks and every handshake run there, so a
//! slow client never holds up the runtime); `accept` and `recv` are woken by it.
//!
//! # Running
//!
//! ```text
//! cargo run -p rdtls --features tokio --example edgeros_async                # loopback scenario
//! cargo run -p rdtls --features tokio --example edgeros_async -- server 127.0.0.1:2049 certs/server.pem certs/server.key
//! cargo run -p rdtls --features tokio --example edgeros_async -- client 127.0.0.1:2049 certs/ca.pem localhost
//! ```
//!
//! (`dtls cert --out certs` writes the certificates.) The scenario builds a tokio runtime,
//! generates a CA and a server certificate, and starts the server; EdgerOS's sample client
//! (`rejectUnauthorized: false` with a `ca`) sends `Hello I am client ^_^` and `Goodbye!` and
//! closes, while a second, verifying client asks a question, waits for the answer with
//! `pending()` and `recv_timeout`, and closes. The server logs `Client: <addr> Say: <text>`,
//! answers questions, logs `Client lost` when a client closes, and is shut down (close_notify
//! to anyone left) once both clients are gone.

mod common;

use std::error::Error;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Pki;
use rdtls::tokio::{Connection, Listener};
use rdtls::{Config, ListenerOptions, RootStore, VerifyPeer};
use tokio::sync::{mpsc, watch};

/// `Dtls.createServer({cert, key}, sockaddr)`.
fn create_server(addr: SocketAddr, cert: &[u8], key: &[u8]) -> Result<Listener, Box<dyn Error>> {
    std::sync::LazyLock::force(&START);
    let config = Config::builder().certificate(common::certified_key(cert, key, None)?).build()?;
    Ok(Listener::bind_with(addr, Arc::new(config), ListenerOptions::default())?)
}

/// The `createClient` options of EdgerOS's sample: `{rejectUnauthorized, ca}`.
fn client_config(reject_unauthorized: bool, ca: Option<&[u8]>) -> Result<Arc<Config>, Box<dyn Error>> {
    let roots = match ca {
        Some(ca) => common::roots(ca)?,
        None => RootStore::new(),
    };
    let verify = if reject_unauthorized { VerifyPeer::Required } else { VerifyPeer::Continue };
    Ok(Arc::new(Config::builder().root_store(roots).verify_peer(verify).build()?))
}

/// `server.accept(undefined, callback)` until `stop` changes; then the server shuts down.
/// Sends each client's address on `lost`, if given, when it is gone.
async fn accept_loop(
    listener: Listener,
    mut stop: watch::Receiver<bool>,
    lost: Option<mpsc::UnboundedSender<SocketAddr>>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(client) => {
                    let remote = client.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
                    println!("server: New client: {remote}");
                    tokio::spawn(on_client(client, lost.clone()));
                }
                Err(e) => {
                    println!("server: accept failed: {e}");
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    // close_notify to every client still connected.
    match listener.shutdown().await {
        Ok(()) => println!("server: shut down"),
        Err(e) => println!("server: shutdown failed: {e}"),
    }
}

/// The `iosched.event(READ, client.sockFd, …)` handler, as a task: wait for a message, then
/// drain whatever else is ready with `recv(buffer, 0, length, 0)`.
async fn on_client(mut client: Connection, lost: Option<mpsc::UnboundedSender<SocketAddr>>) {
    let Ok(peer) = client.peer_addr() else { return };
    let mut buffer = vec![0u8; 4096];
    'serve: loop {
        let mut next = client.recv(&mut buffer).await;
        loop {
            match next {
                Ok(num) => {
                    let text = String::from_utf8_lossy(&buffer[..num]).into_owned();
                    println!("server: Client: {} Say: {text}", peer.ip());
                    if text.ends_with('?') {
                        let answer = format!("{peer}, it is {:.1?} since the server started", START.elapsed());
                        if let Err(e) = client.send(answer.as_bytes()).await {
                            println!("server: cannot answer {peer}: {e}");
                        }
                    }
                }
                // Nothing more right now: back to waiting.
                Err(e) if e.kind() == ErrorKind::TimedOut => break,
                Err(e) => {
                    println!("server: Client lost: {peer} ({e})");
                    let _ = client.close().await;
                    break 'serve;
                }
            }
            next = client.recv_timeout(&mut buffer, Duration::ZERO).await;
        }
    }
    if let Some(lost) = lost {
        let _ = lost.send(peer);
    }
}

/// When the server started (the answer to every question).
static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// EdgerOS's sample client: `createClient(opt, saddr, (client) => { send; send; close })`.
async fn sample_client(addr: SocketAddr, ca: String) -> Result<(), Box<dyn Error + Send + Sync>> {
    let config = client_config(false, Some(ca.as_bytes())).map_err(|e| e.to_string())?;
    let mut client = Connection::connect(addr, config, Some(Duration::from_secs(5))).await?;
    // The callback's body.
    println!("client1: connected to {}", client.peer_addr()?);
    client.send("Hello I am client ^_^".as_bytes()).await?;
    client.send(b"Goodbye!").await?;
    client.close().await?;
    Ok(())
}

/// A verifying client that asks a question and waits for the answer.
async fn asking_client(addr: SocketAddr, ca: String) -> Result<(), Box<dyn Error + Send + Sync>> {
    let config = client_config(true, Some(ca.as_bytes())).map_err(|e| e.to_string())?;
    let mut client = Connection::connect_with_name(addr, "localhost", config, Some(Duration::from_secs(5))).await?;
    println!("client2: connected from {} ({})", client.local_addr()?, client.cipher_suite().map_or("?", |s| s.name));
    client.send(b"What time is it?").await?;
    // pending() never waits: nothing has arrived yet, most likely.
    println!("client2: pending() right after sending = {}", client.pending().await?);
    let mut buffer = [0u8; 256];
    let n = client.recv_timeout(&mut buffer, Duration::from_secs(2)).await?;
    println!("client2: {}", String::from_utf8_lossy(&buffer[..n]));
    client.close().await?;
    Ok(())
}

async fn async_scenario() -> Result<(), Box<dyn Error>> {
    let pki = Pki::generate()?;
    let listener = create_server(([127, 0, 0, 1], 0).into(), pki.server_cert.as_bytes(), pki.server_key.as_bytes())?;
    let addr = listener.local_addr()?;
    println!("server: listening on {addr}");
    // accept(remoteAddr, timeout): nobody connects within 50 ms.
    match tokio::time::timeout(Duration::from_millis(50), listener.accept()).await {
        Err(_) => println!("server: accept with a 50 ms timeout: nobody yet"),
        Ok(r) => return Err(format!("unexpected accept: {:?}", r.map(|c| c.peer_addr())).into()),
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (lost_tx, mut lost_rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(accept_loop(listener, stop_rx, Some(lost_tx)));

    let clients =
        [tokio::spawn(sample_client(addr, pki.ca.clone())), tokio::spawn(asking_client(addr, pki.ca.clone()))];
    for c in clients {
        c.await?.map_err(|e| e.to_string())?;
    }
    // Both clients closed: wait until the server saw them go, then shut it down.
    for _ in 0..2 {
        let lost = tokio::time::timeout(Duration::from_secs(5), lost_rx.recv()).await?;
        lost.ok_or("the server stopped early")?;
    }
    stop_tx.send(true)?;
    server.await?;
    Ok(())
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}

fn scenario() -> Result<(), Box<dyn Error>> {
    runtime()?.block_on(async_scenario())
}

// ===== command-line modes =====

async fn server_mode(args: Vec<String>) -> Result<(), Box<dyn Error>> {
    let [addr, cert, key] = &args[..] else {
        return Err("usage: edgeros_async server ADDR CERT KEY".into());
    };
    let listener = create_server(addr.parse()?, &common::read(cert)?, &common::read(key)?)?;
    println!("server: listening on {}", listener.local_addr()?);
    let stop = common::stop_on_quit();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(accept_loop(listener, stop_rx, None));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(true)?;
    server.await?;
    Ok(())
}

async fn client_mode(args: Vec<String>) -> Result<(), Box<dyn Error>> {
    let [addr, ca, name] = &args[..] else {
        return Err("usage: edgeros_async client ADDR CA_FILE SERVER_NAME".into());
    };
    let config = client_config(true, Some(&common::read(ca)?))?;
    let mut client = Connection::connect_with_name(addr.parse()?, name, config, Some(Duration::from_secs(10))).await?;
    client.send("Hello I am client ^_^".as_bytes()).await?;
    client.send(b"What time is it?").await?;
    let mut buffer = [0u8; 4096];
    match client.recv_timeout(&mut buffer, Duration::from_secs(5)).await {
        Ok(n) => println!("reply: {}", String::from_utf8_lossy(&buffer[..n])),
        Err(e) => println!("no reply: {e}"),
    }
    client.send(b"Goodbye!").await?;
    client.close().await?;
    Ok(())
}

/// Runs the mode the arguments select.
fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => scenario(),
        Some("server") => runtime()?.block_on(server_mode(args.collect())),
        Some("client") => runtime()?.block_on(client_mode(args.collect())),
        Some(_) => Err("usage: edgeros_async [server ADDR CERT KEY | client ADDR CA_FILE SERVER_NAME]".into()),
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
