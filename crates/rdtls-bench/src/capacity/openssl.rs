//! OpenSSL's DTLS server as its documentation has it run: `DTLSv1_listen` on an unconnected
//! socket answers ClientHellos with a HelloVerifyRequest and no per-peer state; a ClientHello
//! with a valid cookie gets its own socket, bound to the server's address and port
//! (`SO_REUSEPORT`) and connected to the peer, on which `SSL_accept` completes the handshake.
//! One thread per core, each with its own listening socket in one `SO_REUSEPORT` group, each
//! multiplexing its handshakes with `poll`, non-blocking.
//!
//! The `openssl` crate wraps neither `DTLSv1_listen` nor the datagram BIO, so this file calls
//! libssl directly.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::pkey::PKey;
use openssl::ssl::{SslContext, SslOptions, SslRef};
use openssl_sys as sys;
use socket2::{Domain, Socket, Type};

use crate::setup::{self, Credentials, Kind};

/// libssl and libcrypto calls the `openssl-sys` crate does not declare.
mod ffi {
    use std::ffi::{c_int, c_void};

    #[repr(C)]
    pub(super) struct BioAddr {
        _private: [u8; 0],
    }

    extern "C" {
        pub(super) fn DTLSv1_listen(ssl: *mut openssl_sys::SSL, peer: *mut BioAddr) -> c_int;
        pub(super) fn BIO_new_dgram(fd: c_int, close_flag: c_int) -> *mut openssl_sys::BIO;
        pub(super) fn BIO_ADDR_new() -> *mut BioAddr;
        pub(super) fn BIO_ADDR_free(addr: *mut BioAddr);
        pub(super) fn BIO_test_flags(bio: *const openssl_sys::BIO, flags: c_int) -> c_int;
        pub(super) fn BIO_ADDR_rawaddress(addr: *const BioAddr, p: *mut c_void, len: *mut usize) -> c_int;
        pub(super) fn BIO_ADDR_rawport(addr: *const BioAddr) -> u16;
    }
}

const BIO_NOCLOSE: c_int = 0;
const BIO_CLOSE: c_int = 1;
const BIO_CTRL_DGRAM_SET_CONNECTED: c_int = 32;
const BIO_CTRL_DGRAM_GET_PEER: c_int = 46;
const DTLS_CTRL_HANDLE_TIMEOUT: c_int = 74;
const SSL_ERROR_WANT_READ: c_int = 2;
const SSL_ERROR_WANT_WRITE: c_int = 3;

/// A handshake is given up after this long (a lost datagram under overload).
const GIVE_UP: Duration = Duration::from_secs(10);
/// How often pending handshakes get their retransmission timers checked.
const TIMER_TICK: Duration = Duration::from_millis(50);
/// Most ClientHellos one `DTLSv1_listen` round takes before the connections get a turn.
const LISTEN_BURST: usize = 64;

/// OpenSSL's server context for the capacity figure: the benchmark's suites and credentials, and
/// an HMAC-SHA256 cookie over the peer's address, as a server on a real socket computes it.
pub(crate) fn context(kind: Kind, creds: &Credentials) -> SslContext {
    let mut b = setup::ossl_server_base(kind, creds);
    b.set_options(SslOptions::COOKIE_EXCHANGE);
    let mut secret = [0u8; 32];
    openssl::rand::rand_bytes(&mut secret).expect("random");
    b.set_cookie_generate_cb(move |ssl, out| {
        let mac = cookie(&secret, ssl);
        out[..mac.len()].copy_from_slice(&mac);
        Ok(mac.len())
    });
    b.set_cookie_verify_cb(move |ssl, cookie_in| openssl::memcmp::eq(cookie_in, &cookie(&secret, ssl)));
    b.build()
}

/// HMAC-SHA256 (truncated to 16 bytes) of the peer's address as the datagram BIO saw it.
fn cookie(secret: &[u8; 32], ssl: &mut SslRef) -> [u8; 16] {
    let mut peer = [0u8; 128];
    // SAFETY: the SSL is live for the callback; GET_PEER copies at most the address's
    // sockaddr size (at most 110 bytes) into `peer`.
    let len = unsafe {
        let rbio = sys::SSL_get_rbio(ssl.as_ptr());
        sys::BIO_ctrl(rbio, BIO_CTRL_DGRAM_GET_PEER, 0, peer.as_mut_ptr().cast::<c_void>())
    };
    let len = usize::try_from(len).unwrap_or(0).min(peer.len());
    let key = PKey::hmac(secret).expect("HMAC key");
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).expect("HMAC");
    signer.update(&peer[..len]).expect("HMAC update");
    let mac = signer.sign_to_vec().expect("HMAC final");
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac[..16]);
    out
}

/// An SSL object, created by the `openssl` crate (whose callbacks need its bookkeeping) and
/// driven through libssl.
struct Ssl(openssl::ssl::Ssl);

impl Ssl {
    fn new(ctx: &SslContext) -> Self {
        let mut ssl = openssl::ssl::Ssl::new(ctx).expect("SSL_new");
        // The context does not query the path MTU (as in the other figures): set the one
        // both stacks use.
        ssl.set_mtu(1400).expect("mtu");
        Self(ssl)
    }

    fn ptr(&self) -> *mut sys::SSL {
        self.0.as_ptr()
    }

    /// Makes `fd` (a datagram socket) this SSL's transport; with `close`, the SSL owns it.
    fn set_socket(&mut self, fd: c_int, close: bool) -> *mut sys::BIO {
        // SAFETY: BIO_new_dgram wraps the descriptor; SSL_set_bio takes the one reference
        // (the same BIO for reading and writing) and frees the BIO it replaces.
        unsafe {
            let bio = ffi::BIO_new_dgram(fd, if close { BIO_CLOSE } else { BIO_NOCLOSE });
            assert!(!bio.is_null(), "BIO_new_dgram");
            sys::SSL_set_bio(self.ptr(), bio, bio);
            bio
        }
    }

    /// `SSL_accept`: `Some(true)` done, `Some(false)` waiting for the peer, `None` failed.
    fn accept(&mut self) -> Option<bool> {
        // SAFETY: a live SSL with a BIO.
        unsafe {
            let r = sys::SSL_accept(self.ptr());
            if r == 1 {
                return Some(true);
            }
            match sys::SSL_get_error(self.ptr(), r) {
                SSL_ERROR_WANT_READ | SSL_ERROR_WANT_WRITE => Some(false),
                _ => {
                    sys::ERR_clear_error();
                    None
                }
            }
        }
    }

    /// Retransmits the last flight if its timer ran out; false if the handshake failed.
    fn handle_timeout(&mut self) -> bool {
        // SAFETY: a live SSL; the control takes no pointer.
        unsafe { sys::SSL_ctrl(self.ptr(), DTLS_CTRL_HANDLE_TIMEOUT, 0, std::ptr::null_mut()) >= 0 }
    }

    /// Sends close_notify.
    fn shutdown(&mut self) {
        // SAFETY: a live SSL.
        unsafe {
            sys::SSL_shutdown(self.ptr());
            sys::ERR_clear_error();
        }
    }
}

/// A `BIO_ADDR` for `DTLSv1_listen` to fill.
struct PeerAddr(*mut ffi::BioAddr);

impl PeerAddr {
    fn new() -> Self {
        // SAFETY: allocation only.
        let p = unsafe { ffi::BIO_ADDR_new() };
        assert!(!p.is_null(), "BIO_ADDR_new");
        Self(p)
    }

    /// The IPv4 address and port it holds.
    fn get(&self) -> Option<SocketAddr> {
        let mut ip = [0u8; 4];
        let mut len = 0usize;
        // SAFETY: the first call asks the length only; the second writes at most 4 bytes.
        unsafe {
            if ffi::BIO_ADDR_rawaddress(self.0, std::ptr::null_mut(), &mut len) != 1 || len != 4 {
                return None;
            }
            ffi::BIO_ADDR_rawaddress(self.0, ip.as_mut_ptr().cast(), &mut len);
            Some(SocketAddr::from((ip, u16::from_be(ffi::BIO_ADDR_rawport(self.0)))))
        }
    }
}

impl Drop for PeerAddr {
    fn drop(&mut self) {
        // SAFETY: owned.
        unsafe { ffi::BIO_ADDR_free(self.0) }
    }
}

struct Pending {
    ssl: Ssl,
    fd: c_int,
    started: Instant,
}

/// One server thread: a listening socket in the `SO_REUSEPORT` group at `addr` and the
/// handshakes it has started.
struct Worker {
    ctx: SslContext,
    addr: SocketAddr,
    listen: UdpSocket,
    listening: Ssl,
    peer: PeerAddr,
    pending: Vec<Pending>,
    /// Handshakes completed.
    done: u64,
}

fn reuse_port_socket(addr: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

impl Worker {
    fn new(ctx: SslContext, addr: SocketAddr) -> std::io::Result<Self> {
        let listen: UdpSocket = reuse_port_socket(addr)?.into();
        let listening = Self::listening(&ctx, &listen);
        Ok(Self { ctx, addr, listen, listening, peer: PeerAddr::new(), pending: Vec::new(), done: 0 })
    }

    fn listening(ctx: &SslContext, listen: &UdpSocket) -> Ssl {
        let mut ssl = Ssl::new(ctx);
        ssl.set_socket(listen.as_raw_fd(), false);
        ssl
    }

    /// Runs `DTLSv1_listen` until the socket has nothing more to read (or a burst is done).
    fn listen(&mut self) {
        for _ in 0..LISTEN_BURST {
            // SAFETY: live SSL and BIO_ADDR.
            let r = unsafe { ffi::DTLSv1_listen(self.listening.ptr(), self.peer.0) };
            if r > 0 {
                self.start();
                continue;
            }
            // SAFETY: the listening SSL's BIO is live.
            let empty = unsafe {
                sys::ERR_clear_error();
                ffi::BIO_test_flags(sys::SSL_get_rbio(self.listening.ptr()), sys::BIO_FLAGS_SHOULD_RETRY) != 0
            };
            if r < 0 {
                self.listening = Self::listening(&self.ctx, &self.listen);
            }
            if empty {
                return;
            }
        }
    }

    /// The listening SSL verified a cookie: it moves to its own connected socket and a new
    /// one takes its place.
    fn start(&mut self) {
        let fresh = Self::listening(&self.ctx, &self.listen);
        let mut ssl = std::mem::replace(&mut self.listening, fresh);
        let Some(peer) = self.peer.get() else { return };
        let Ok(socket) = reuse_port_socket(self.addr).and_then(|s| s.connect(&peer.into()).map(|()| s)) else {
            return;
        };
        let fd = socket.into_raw_fd();
        let bio = ssl.set_socket(fd, true);
        // SAFETY: the BIO is live (owned by the SSL); SET_CONNECTED copies the address.
        unsafe { sys::BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, self.peer.0.cast::<c_void>()) };
        self.step(Pending { ssl, fd, started: Instant::now() });
    }

    fn step(&mut self, mut p: Pending) {
        match p.ssl.accept() {
            Some(true) => {
                p.ssl.shutdown();
                self.done += 1;
            }
            Some(false) => self.pending.push(p),
            None => {}
        }
    }

    fn run(mut self, stop: &AtomicBool) -> u64 {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut last_tick = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            fds.clear();
            fds.push(libc::pollfd { fd: self.listen.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            fds.extend(self.pending.iter().map(|p| libc::pollfd { fd: p.fd, events: libc::POLLIN, revents: 0 }));
            // SAFETY: `fds` is a valid array of its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 20) };
            if n > 0 {
                // Connections first (in reverse, so removal keeps the indices of the rest).
                for i in (0..self.pending.len()).rev() {
                    if fds[i + 1].revents != 0 {
                        let p = self.pending.swap_remove(i);
                        self.step(p);
                    }
                }
                if fds[0].revents != 0 {
                    self.listen();
                }
            }
            if last_tick.elapsed() >= TIMER_TICK {
                last_tick = Instant::now();
                self.pending.retain_mut(|p| p.started.elapsed() < GIVE_UP && p.ssl.handle_timeout());
            }
        }
        self.done
    }
}

/// OpenSSL server threads (named `cap-openssl`) on one address and port.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Server {
    pub(crate) fn start(ctx: &SslContext, threads: usize) -> Self {
        let first = reuse_port_socket("127.0.0.1:0".parse().expect("address")).expect("OpenSSL server socket");
        let addr = first.local_addr().expect("address").as_socket().expect("IP address");
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(threads);
        // The first socket keeps the port while the workers bind theirs.
        for _ in 0..threads {
            workers.push(Worker::new(ctx.clone(), addr).expect("OpenSSL worker socket"));
        }
        drop(first);
        let threads = workers
            .into_iter()
            .map(|w| {
                let stop = stop.clone();
                thread::Builder::new()
                    .name("cap-openssl".into())
                    .spawn(move || w.run(&stop))
                    .expect("OpenSSL server thread")
            })
            .collect();
        Self { addr, stop, threads }
    }

    /// Stops the threads; returns the handshakes they completed.
    pub(crate) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|t| t.join().expect("OpenSSL server thread")).sum()
    }
}

// SAFETY: a Worker's SSL objects and BIO_ADDR are used by the one thread that owns the worker.
unsafe impl Send for Worker {}
