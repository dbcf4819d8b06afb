//! Helpers for interop tests against real DTLS peers: OpenSSL's `s_server`/`s_client` and
//! GnuTLS's `gnutls-serv`/`gnutls-cli`, run as child processes on loopback.
//!
//! A missing peer program is a test failure, never a skip.
//!
//! [`proxy`] is a fault-injecting UDP proxy to put between a client and a server (also the
//! `dtls-proxy` program).
//!
//! `src/wolfssl/` is an in-process wolfSSL DTLS 1.3 peer. It needs the `wolfssl-sys`
//! dev-dependency, so test programs include it (`#[path = "../src/wolfssl/mod.rs"] mod wolfssl;`)
//! rather than reach it through this library.

pub mod proxy;

pub use proxy::{Direction, DirectionStats, FaultProxy, Faults, Marker, Stats, Target};

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Fails loudly if `program` is not installed.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "interop peer `{program}` is not installed: install it (see .ci/run) to run the interop tests");
}

/// A free UDP port on 127.0.0.1 (bound and released; good enough on a quiet loopback).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// Output a child wrote so far, shared with the reader threads.
#[derive(Clone, Default)]
struct Output {
    inner: Arc<(Mutex<String>, Condvar)>,
}

impl Output {
    fn pump(&self, mut r: impl Read + Send + 'static) {
        let out = self.clone();
        thread::spawn(move || {
            // Read chunks, not lines: peers print received data without a trailing newline.
            let mut buf = [0u8; 4096];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (lock, cv) = &*out.inner;
                        lock.lock().expect("lock").push_str(&String::from_utf8_lossy(&buf[..n]));
                        cv.notify_all();
                    }
                }
            }
        });
    }

    fn text(&self) -> String {
        self.inner.0.lock().expect("lock").clone()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.inner;
        let mut text = lock.lock().expect("lock");
        loop {
            if text.contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            text = cv.wait_timeout(text, left).expect("lock").0;
        }
    }
}

/// A peer program running as a child process, with its stdout and stderr collected.
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    output: Output,
}

impl Peer {
    /// Starts `program` with `args`.
    pub fn spawn(program: &str, args: &[&str]) -> Self {
        require(program);
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let output = Output::default();
        output.pump(child.stdout.take().expect("stdout"));
        output.pump(child.stderr.take().expect("stderr"));
        let stdin = child.stdin.take();
        Self { name: format!("{program} {}", args.join(" ")), child, stdin, output }
    }

    /// Waits until the peer printed `needle` (stdout or stderr); panics with its output if not.
    pub fn expect(&self, needle: &str, timeout: Duration) {
        if !self.output.wait_for(needle, timeout) {
            panic!("`{}` did not print {needle:?} within {timeout:?}; it printed:\n{}", self.name, self.output.text());
        }
    }

    /// Waits until the peer printed `needle`; `false` if it did not within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        self.output.wait_for(needle, timeout)
    }

    /// How many times the peer printed `needle` so far.
    pub fn count(&self, needle: &str) -> usize {
        self.output.text().matches(needle).count()
    }

    /// The peer's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the peer exits, at most `timeout` (then kills it); panics if it had to be
    /// killed.
    pub fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("`{}` did not exit within {timeout:?}:\n{}", self.name, self.output.text());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes the peer's stdin (end of file).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the peer printed `needle` so far.
    pub fn printed(&self, needle: &str) -> bool {
        self.output.text().contains(needle)
    }

    /// Everything the peer printed so far.
    pub fn output(&self) -> String {
        self.output.text()
    }

    /// Writes `line` and a newline to the peer's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        // One write, so the peer reads the line whole (and sends it as one record).
        stdin.write_all(format!("{line}\n").as_bytes()).expect("write to peer stdin");
        stdin.flush().expect("flush");
    }

    /// Waits until a UDP port is bound by the peer: we probe by sending nothing and simply
    /// give the process time to start, checking it is still alive.
    pub fn wait_started(&mut self, ready_text: &str, timeout: Duration) {
        self.expect(ready_text, timeout);
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("`{}` exited early with {status}:\n{}", self.name, self.output.text());
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The PSK used by every interop test, as hex (OpenSSL and GnuTLS take hex keys).
pub const PSK_HEX: &str = "0123456789abcdef0123456789abcdef";

/// The PSK as bytes.
pub fn psk() -> Vec<u8> {
    hex::decode(PSK_HEX).expect("hex")
}

/// Serves one peer on `server` as Qt's example server does, until its connection closes:
/// `on_connected` checks the connection once its handshake completes, the peer's message is
/// answered with `to <peer>: ACK`, and the last message is returned. Panics if the server has
/// no event for `timeout`.
pub fn serve_one(
    server: &mut rdtls::Server,
    timeout: Duration,
    mut on_connected: impl FnMut(&rdtls_proto::Connection),
) -> Option<Vec<u8>> {
    let mut got = None;
    loop {
        match server.poll(Some(timeout)).expect("server poll") {
            Some(rdtls::ServerEvent::Connected(p)) => on_connected(server.connection(p).expect("connected peer")),
            Some(rdtls::ServerEvent::Message(p, data)) => {
                server.send_to(p, format!("to {p}: ACK").as_bytes()).expect("send the answer");
                got = Some(data);
            }
            Some(rdtls::ServerEvent::Closed(_, _)) => return got,
            Some(_) => {}
            None => panic!("no event from our server within {timeout:?}"),
        }
    }
}
