//! A wolfSSL 5.9 DTLS 1.3 peer, in-process, over a UDP socket on loopback.
//!
//! wolfSSL is built from the source bundled in `wolfssl-sys` (a dev-dependency, so this module is
//! compiled into the test programs that include it, not into the interop library):
//!
//! ```ignore
//! #[allow(dead_code)]
//! #[path = "../src/wolfssl/mod.rs"]
//! mod wolfssl;
//! ```
//!
//! A [`WolfPeer`] is one wolfSSL connection, DTLS 1.3 only, configured by a [`WolfConfig`]: cipher
//! suites, an external PSK or certificates, groups, MTU. It drives wolfSSL in its non-blocking mode
//! and waits in `poll(2)` for the next datagram or wolfSSL's retransmission timer, whichever comes
//! first, so every call returns within the configured timeout. The secrets wolfSSL derives are
//! kept as NSS key log lines ([`WolfPeer::key_log`]).
//!
//! Setting `WOLFSSL_DEBUG` in the environment turns on wolfSSL's own debug log (to stderr) for
//! every peer of the process.
//!
//! wolfSSL behaviour seen with this build (wolfssl-sys 5.3.0, wolfSSL 5.9.4), for tests against it:
//! - The server answers every first ClientHello statelessly with a HelloRetryRequest carrying a
//!   cookie ([`WolfConfig::cookie`] turns that off), with the ClientHello's record sequence
//!   number; its ServerHello then has message_seq 1.
//! - The client sends an empty legacy_session_id; wolfssl-sys builds with
//!   `WOLFSSL_DTLS13_ECHO_LEGACY_SESSION_ID`, so the server echoes whatever it is sent.
//! - Without [`WolfConfig::groups`] the client's key share is P-256.
//! - Each handshake message goes in its own datagram. wolfssl-sys patches wolfSSL to fragment
//!   handshake messages 500 bytes below what the MTU allows: an MTU of 700 gives 200-byte
//!   datagrams, 540 gives 40-byte ones (about 150 for a 1 KB certificate message), and at 300 a
//!   message that needs fragmenting fails with BUFFER_E (-132).
//! - A server that does not know the client's PSK identity fails with BAD_BINDER (-423, "binder
//!   does not verify") and a fatal alert.
//! - With `HAVE_KEYING_MATERIAL` (for DTLS-SRTP's keys) wolfSSL derives the exporter secret too.
//! - Retransmission starts at 1 s and doubles.
//!
//! All of the FFI is here and in `callbacks.rs`; nothing else needs `unsafe`.

#![allow(unsafe_code)]

#[cfg(not(rdtls_bench))]
mod alpn;
mod callbacks;
// The benchmark needs no connection IDs (and a wolfSSL built before `.cargo/config.toml` gave
// its configure the define has none).
#[cfg(not(rdtls_bench))]
mod cid;
mod config;
mod memory;
mod session;
#[cfg(not(rdtls_bench))]
mod srtp;

use std::ffi::{c_int, c_long, c_ulong, CStr, CString};
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use wolfssl_sys as sys;

use callbacks::{CallbackState, PskState};
#[allow(unused_imports)]
pub(crate) use config::{Group, PskModes, Role, Version, WolfConfig};
use memory::MemoryIo;
#[allow(unused_imports)]
pub(crate) use session::WolfSession;

/// What went wrong in a [`WolfPeer`].
#[derive(Debug)]
pub(crate) enum WolfError {
    /// A wolfSSL call failed: the call, wolfSSL's error code and its description.
    Call { call: &'static str, code: c_int, reason: String },
    /// The call did not complete within the configured timeout.
    Timeout { call: &'static str, after: Duration },
    /// A socket operation failed.
    Io(io::Error),
    /// The configuration cannot be used as given.
    Config(String),
}

impl fmt::Display for WolfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Call { call, code, reason } => write!(f, "{call} failed: wolfSSL error {code} ({reason})"),
            Self::Timeout { call, after } => write!(f, "{call} did not complete within {after:?}"),
            Self::Io(e) => write!(f, "socket: {e}"),
            Self::Config(what) => write!(f, "configuration: {what}"),
        }
    }
}

impl std::error::Error for WolfError {}

impl From<io::Error> for WolfError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// wolfSSL's description of an error code.
fn reason(code: c_int) -> String {
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is writable for `buf.len()` bytes; wolfSSL writes at most that many,
    // NUL-terminated. The code is passed as wolfSSL's API takes it (an unsigned long it casts
    // back to int).
    unsafe { sys::wolfSSL_ERR_error_string_n(code as c_ulong, buf.as_mut_ptr().cast(), buf.len() as c_ulong) };
    CStr::from_bytes_until_nul(&buf).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Fails with `call`'s error unless `ret` is `WOLFSSL_SUCCESS`.
fn check(call: &'static str, ret: c_int) -> Result<(), WolfError> {
    if ret == sys::WOLFSSL_SUCCESS as c_int {
        Ok(())
    } else {
        Err(WolfError::Call { call, code: ret, reason: reason(ret) })
    }
}

// Peers run on several threads at once (a client and a server in one test); a single-threaded
// build has no locking around its global state.
const _: () = assert!(!sys::SINGLE_THREADED, "wolfSSL was built SINGLE_THREADED");

/// `wolfSSL_Init`, once per process.
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: wolfSSL_Init has no preconditions; `Once` runs it before any other call here.
        let ret = unsafe { sys::wolfSSL_Init() };
        assert_eq!(ret, sys::WOLFSSL_SUCCESS as c_int, "wolfSSL_Init failed: {}", reason(ret));
        if std::env::var_os("WOLFSSL_DEBUG").is_some() {
            // SAFETY: no preconditions; the library is initialised.
            unsafe { sys::wolfSSL_Debugging_ON() };
        }
    });
}

/// A `CString` of configuration text, or a configuration error naming `what`.
fn c_string(what: &str, text: &str) -> Result<CString, WolfError> {
    CString::new(text).map_err(|_| WolfError::Config(format!("{what} contains a NUL byte")))
}

/// A length as wolfSSL's buffer functions take it.
fn c_len(what: &str, len: usize) -> Result<c_long, WolfError> {
    c_long::try_from(len).map_err(|_| WolfError::Config(format!("{what} is too long")))
}

/// An owned `WOLFSSL_CTX`, which connections made from it may share.
struct Ctx(NonNull<sys::WOLFSSL_CTX>);

// SAFETY: a context is only configured before its first connection is made; after that wolfSSL
// reads it (under its own locks where it keeps counts), from whichever thread uses a connection.
unsafe impl Send for Ctx {}
// SAFETY: as above.
unsafe impl Sync for Ctx {}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: we own the context and every `WOLFSSL` made from it is freed before (the `Ssl`
        // field of `WolfPeer` is declared, and so dropped, first).
        unsafe { sys::wolfSSL_CTX_free(self.0.as_ptr()) };
    }
}

/// An owned `WOLFSSL`.
struct Ssl(NonNull<sys::WOLFSSL>);

impl Drop for Ssl {
    fn drop(&mut self) {
        // SAFETY: we own the object; nothing uses it after this.
        unsafe { sys::wolfSSL_free(self.0.as_ptr()) };
    }
}

/// What a [`WolfPeer`]'s datagrams go through.
enum Transport {
    /// Its own UDP socket, which wolfSSL reads and writes itself.
    Socket(UdpSocket),
    /// Queues in memory, through wolfSSL's I/O callbacks (see `memory.rs`).
    Memory(MemoryIo),
}

/// One wolfSSL DTLS 1.3 connection over its own UDP socket, or in memory.
pub(crate) struct WolfPeer {
    // Field order is drop order: the connection, then its context, then what its callbacks
    // point to, then the socket its descriptor names (or the queues its I/O callbacks use).
    ssl: Ssl,
    _ctx: Arc<Ctx>,
    state: Box<CallbackState>,
    transport: Transport,
    role: Role,
    timeout: Duration,
}

// SAFETY: a `WolfPeer` owns its `WOLFSSL` and `WOLFSSL_CTX` exclusively (the context is not shared
// with other peers), and it is not `Sync`, so the objects are used by one thread at a time;
// wolfSSL objects have no affinity to the thread that made them, and the library's global state
// is locked (a SINGLE_THREADED build does not compile here). The callback state is only touched
// through a `Mutex` and immutable data.
unsafe impl Send for WolfPeer {}

impl WolfPeer {
    /// A client on a socket bound to loopback and connected to `server`, ready to
    /// [`handshake`](Self::handshake).
    pub(crate) fn connect(config: &WolfConfig, server: SocketAddr) -> Result<Self, WolfError> {
        if config.role != Role::Client {
            return Err(WolfError::Config("connect needs a client configuration".into()));
        }
        let local: SocketAddr = if server.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse().expect("address");
        let socket = UdpSocket::bind(local)?;
        socket.connect(server)?;
        Self::new(config, socket)
    }

    /// A server on a socket bound to `local` (a loopback address; port 0 for any), ready to
    /// [`handshake`](Self::handshake) with the first client that sends it a ClientHello. Its
    /// address is [`local_addr`](Self::local_addr).
    pub(crate) fn bind(config: &WolfConfig, local: SocketAddr) -> Result<Self, WolfError> {
        if config.role != Role::Server {
            return Err(WolfError::Config("bind needs a server configuration".into()));
        }
        if !local.ip().is_loopback() {
            return Err(WolfError::Config(format!("{local} is not a loopback address")));
        }
        Self::new(config, UdpSocket::bind(local)?)
    }

    fn new(config: &WolfConfig, socket: UdpSocket) -> Result<Self, WolfError> {
        let (ssl, ctx, state) = Self::configure(config)?;
        Self::with_socket(ssl, ctx, state, config, socket)
    }

    /// A configured connection of `ctx` over `socket`.
    fn with_socket(
        ssl: Ssl,
        ctx: Arc<Ctx>,
        state: Box<CallbackState>,
        config: &WolfConfig,
        socket: UdpSocket,
    ) -> Result<Self, WolfError> {
        let s = ssl.0.as_ptr();
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        // SAFETY: `s` is live; `fd` stays open as long as `socket`, which `WolfPeer` drops after
        // the connection. A client's socket is connected to its server, a server's is not (wolfSSL
        // learns its client from the first ClientHello, statelessly until the cookie checks out).
        check("wolfSSL_set_fd", unsafe {
            match config.role {
                Role::Client => sys::wolfSSL_set_dtls_fd_connected(s, fd),
                Role::Server => sys::wolfSSL_set_fd(s, fd),
            }
        })?;
        // SAFETY: `s` is live; the socket is non-blocking, as this tells wolfSSL.
        unsafe { sys::wolfSSL_dtls_set_using_nonblock(s, 1) };
        let transport = Transport::Socket(socket);
        Ok(Self { ssl, _ctx: ctx, state, transport, role: config.role, timeout: config.timeout })
    }

    /// A configured connection and its own context, with no transport yet.
    fn configure(config: &WolfConfig) -> Result<(Ssl, Arc<Ctx>, Box<CallbackState>), WolfError> {
        let ctx = Arc::new(Self::context(config)?);
        let (ssl, state) = Self::connection(config, &ctx)?;
        Ok((ssl, ctx, state))
    }

    /// A `WOLFSSL_CTX` configured as `config` says: role, PSK callbacks, certificates,
    /// verification, suites.
    fn context(config: &WolfConfig) -> Result<Ctx, WolfError> {
        init();
        let ciphers = c_string("cipher list", &config.ciphers)?;
        // SAFETY: the method functions have no preconditions and return a fresh allocation that
        // wolfSSL_CTX_new takes over (and frees with the context).
        let method = unsafe {
            match (config.role, config.version) {
                (Role::Client, Version::Dtls13) => sys::wolfDTLSv1_3_client_method(),
                (Role::Server, Version::Dtls13) => sys::wolfDTLSv1_3_server_method(),
                (Role::Client, Version::Dtls12) => sys::wolfDTLSv1_2_client_method(),
                (Role::Server, Version::Dtls12) => sys::wolfDTLSv1_2_server_method(),
            }
        };
        if config.psk.is_some() && config.version == Version::Dtls12 {
            return Err(WolfError::Config("no DTLS 1.2 PSK callbacks here: use certificates".into()));
        }
        // SAFETY: `method` is a valid method (or NULL, which wolfSSL_CTX_new refuses).
        let ctx = Ctx(NonNull::new(unsafe { sys::wolfSSL_CTX_new(method) }).ok_or(WolfError::Call {
            call: "wolfSSL_CTX_new",
            code: 0,
            reason: "out of memory".into(),
        })?);
        let c = ctx.0.as_ptr();

        if config.psk.is_some() {
            // SAFETY: `c` is a live context; the callbacks match wolfSSL's types and find their
            // state through the PSK callback context set on the connection below.
            unsafe {
                match config.role {
                    Role::Client => sys::wolfSSL_CTX_set_psk_client_tls13_callback(c, Some(callbacks::psk_client)),
                    Role::Server => sys::wolfSSL_CTX_set_psk_server_tls13_callback(c, Some(callbacks::psk_server)),
                }
            }
        }
        if let Some((chain, key)) = &config.cert {
            // SAFETY: `c` is a live context; the buffers are valid for the lengths given and
            // wolfSSL copies what it loads.
            check("wolfSSL_CTX_use_certificate_chain_buffer", unsafe {
                sys::wolfSSL_CTX_use_certificate_chain_buffer(
                    c,
                    chain.as_ptr(),
                    c_len("certificate chain", chain.len())?,
                )
            })?;
            // SAFETY: as above.
            check("wolfSSL_CTX_use_PrivateKey_buffer", unsafe {
                sys::wolfSSL_CTX_use_PrivateKey_buffer(
                    c,
                    key.as_ptr(),
                    c_len("private key", key.len())?,
                    sys::WOLFSSL_FILETYPE_PEM as c_int,
                )
            })?;
        }
        let mut verify = sys::WOLFSSL_VERIFY_NONE;
        if let Some(ca) = &config.ca_pem {
            // SAFETY: as above.
            check("wolfSSL_CTX_load_verify_buffer", unsafe {
                sys::wolfSSL_CTX_load_verify_buffer(
                    c,
                    ca.as_ptr(),
                    c_len("CA certificates", ca.len())?,
                    sys::WOLFSSL_FILETYPE_PEM as c_int,
                )
            })?;
            verify = sys::WOLFSSL_VERIFY_PEER;
        }
        if config.require_client_cert {
            if config.role != Role::Server || config.ca_pem.is_none() {
                return Err(WolfError::Config("require_client_cert needs a server with a CA".into()));
            }
            verify |= sys::WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        }
        // SAFETY: `c` is a live context; no verify callback.
        unsafe { sys::wolfSSL_CTX_set_verify(c, verify as c_int, None) };
        // Last on the context: setting PSK callbacks and keys rebuilds wolfSSL's suite list.
        // SAFETY: `c` is a live context, `ciphers` a NUL-terminated string wolfSSL parses and
        // does not keep.
        check("wolfSSL_CTX_set_cipher_list", unsafe { sys::wolfSSL_CTX_set_cipher_list(c, ciphers.as_ptr()) })?;
        Ok(ctx)
    }

    /// A connection of `ctx` (made from the same `config`), with its callback state.
    fn connection(config: &WolfConfig, ctx: &Ctx) -> Result<(Ssl, Box<CallbackState>), WolfError> {
        let first_cipher = c_string("cipher list", config.ciphers.split(':').next().unwrap_or_default())?;
        let psk = match &config.psk {
            Some((identity, key)) => {
                Some(PskState { identity: c_string("PSK identity", identity)?, key: key.clone(), cipher: first_cipher })
            }
            None => None,
        };
        let state =
            Box::new(CallbackState { psk, accepted_identity: Mutex::new(None), key_log: Mutex::new(Vec::new()) });
        let c = ctx.0.as_ptr();
        // SAFETY: `c` is a live, configured context; the connection refers to it until freed,
        // which `WolfPeer`'s field order guarantees happens first (it holds a reference to the
        // context).
        let ssl = Ssl(NonNull::new(unsafe { sys::wolfSSL_new(c) }).ok_or(WolfError::Call {
            call: "wolfSSL_new",
            code: 0,
            reason: "out of memory".into(),
        })?);
        let s = ssl.0.as_ptr();
        let state_ptr = (&*state as *const CallbackState).cast_mut().cast();

        // SAFETY: `s` is a live connection. `state_ptr` points into the heap allocation of
        // `state`, which `WolfPeer` keeps (and never moves out of its box) until after the
        // connection is freed; the callbacks only read it or lock its mutex. (The benchmark
        // builds wolfSSL without its debug options, which the secret callback needs: no key log
        // there.)
        #[cfg(not(rdtls_bench))]
        check("wolfSSL_set_tls13_secret_cb", unsafe {
            sys::wolfSSL_set_tls13_secret_cb(s, Some(callbacks::tls13_secret), state_ptr)
        })?;
        if state.psk.is_some() {
            // SAFETY: as above.
            check("wolfSSL_set_psk_callback_ctx", unsafe { sys::wolfSSL_set_psk_callback_ctx(s, state_ptr) })?;
            // SAFETY: `s` is a live DTLS 1.3 connection; these set flags (and return 0).
            let ret = unsafe {
                match config.psk_modes {
                    PskModes::Both => 0,
                    PskModes::DheOnly => sys::wolfSSL_only_dhe_psk(s),
                    PskModes::PlainOnly => sys::wolfSSL_no_dhe_psk(s),
                }
            };
            if ret != 0 {
                return Err(WolfError::Call {
                    call: "wolfSSL_only_dhe_psk/no_dhe_psk",
                    code: ret,
                    reason: reason(ret),
                });
            }
        }
        if !config.groups.is_empty() {
            let mut groups: Vec<c_int> = config.groups.iter().map(|g| c_int::from(g.code())).collect();
            // SAFETY: `s` is live; `groups` is valid for `len` ints and copied by wolfSSL.
            check("wolfSSL_set_groups", unsafe {
                sys::wolfSSL_set_groups(s, groups.as_mut_ptr(), groups.len() as c_int)
            })?;
        }
        if let Some(group) = config.key_share {
            // SAFETY: `s` is live.
            check("wolfSSL_UseKeyShare", unsafe { sys::wolfSSL_UseKeyShare(s, group.code()) })?;
        }
        if let Some(name) = &config.server_name {
            let c_name = c_string("server name", name)?;
            let len = u16::try_from(name.len()).map_err(|_| WolfError::Config("server name is too long".into()))?;
            // SAFETY: `s` is live; the name is valid for `len` bytes and copied by wolfSSL.
            check("wolfSSL_UseSNI", unsafe {
                sys::wolfSSL_UseSNI(s, sys::WOLFSSL_SNI_HOST_NAME as u8, c_name.as_ptr().cast(), len)
            })?;
            // SAFETY: `s` is live; `c_name` is NUL-terminated and copied by wolfSSL.
            check("wolfSSL_check_domain_name", unsafe { sys::wolfSSL_check_domain_name(s, c_name.as_ptr()) })?;
        }
        if let Some(mtu) = config.mtu {
            // SAFETY: `s` is live.
            check("wolfSSL_dtls_set_mtu", unsafe { sys::wolfSSL_dtls_set_mtu(s, mtu) })?;
        }
        #[cfg(not(rdtls_bench))]
        if let Some(id) = &config.connection_id {
            cid::offer(s, id)?;
        }
        #[cfg(not(rdtls_bench))]
        if let Some(protocols) = &config.alpn {
            alpn::offer(s, protocols)?;
        }
        #[cfg(not(rdtls_bench))]
        if let Some(profiles) = &config.srtp {
            srtp::offer(s, profiles)?;
        }
        if config.role == Role::Server && !config.cookie && config.version == Version::Dtls13 {
            // SAFETY: `s` is a live DTLS 1.3 server.
            check("wolfSSL_disable_hrr_cookie", unsafe { sys::wolfSSL_disable_hrr_cookie(s) })?;
        }

        Ok((ssl, state))
    }

    fn ptr(&self) -> *mut sys::WOLFSSL {
        self.ssl.0.as_ptr()
    }

    /// The socket's local address (a server's, to connect a client to).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.socket().local_addr().expect("local address of a bound socket")
    }

    /// The socket of a peer made by [`connect`](Self::connect) or [`bind`](Self::bind).
    fn socket(&self) -> &UdpSocket {
        match &self.transport {
            Transport::Socket(socket) => socket,
            Transport::Memory(_) => panic!("an in-memory wolfSSL peer has no socket"),
        }
    }

    /// Runs the handshake to completion (`wolfSSL_connect` or `wolfSSL_accept`). A DTLS 1.3
    /// client whose last flight is not yet acknowledged may see the server's application data
    /// first: wolfSSL then reports `APP_DATA_READY`, which means the handshake is done and
    /// data waits for `recv`.
    pub(crate) fn handshake(&mut self) -> Result<(), WolfError> {
        let r = match self.role {
            // SAFETY: the connection is live and configured.
            Role::Client => self.drive("wolfSSL_connect", |s| unsafe { sys::wolfSSL_connect(s) }),
            // SAFETY: as above.
            Role::Server => self.drive("wolfSSL_accept", |s| unsafe { sys::wolfSSL_accept(s) }),
        };
        match r {
            Err(WolfError::Call { code, .. }) if code == sys::wolfSSL_ErrorCodes_APP_DATA_READY => Ok(()),
            r => r.map(drop),
        }
    }

    /// Sends `data` as one application data record (`wolfSSL_write`).
    pub(crate) fn send(&mut self, data: &[u8]) -> Result<(), WolfError> {
        let len = c_int::try_from(data.len()).map_err(|_| WolfError::Config("message too long".into()))?;
        // SAFETY: `data` is valid for `len` bytes; wolfSSL only reads it.
        let sent = self.drive("wolfSSL_write", |s| unsafe { sys::wolfSSL_write(s, data.as_ptr().cast(), len) })?;
        assert_eq!(sent, len, "wolfSSL_write wrote part of a record");
        Ok(())
    }

    /// Receives the next application data record (`wolfSSL_read`); `None` once the peer sent
    /// close_notify.
    pub(crate) fn recv(&mut self) -> Result<Option<Vec<u8>>, WolfError> {
        let mut buf = vec![0u8; 1 << 14];
        let cap = buf.len() as c_int;
        // SAFETY: `buf` is writable for `cap` bytes.
        let n = self.drive("wolfSSL_read", |s| unsafe { sys::wolfSSL_read(s, buf.as_mut_ptr().cast(), cap) })?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n as usize);
        Ok(Some(buf))
    }

    /// Sends close_notify (`wolfSSL_shutdown`, once: it does not wait for the peer's).
    pub(crate) fn close(&mut self) -> Result<(), WolfError> {
        // SAFETY: the connection is live.
        self.drive("wolfSSL_shutdown", |s| unsafe { sys::wolfSSL_shutdown(s) }).map(drop)
    }

    /// The negotiated protocol version, as wolfSSL names it (`DTLSv1.3`).
    /// Starts a DTLS 1.3 KeyUpdate (asking the peer to update too, wolfSSL's default); the
    /// next `send` or `recv` carries it on.
    pub(crate) fn update_keys(&mut self) -> Result<(), WolfError> {
        let s = self.ptr();
        // SAFETY: the connection is live and its handshake complete.
        let ret = unsafe { sys::wolfSSL_update_keys(s) };
        if ret == sys::WOLFSSL_SUCCESS as c_int {
            return Ok(());
        }
        // SAFETY: as above; `ret` is what the call returned.
        let err = unsafe { sys::wolfSSL_get_error(s, ret) };
        if err as u32 == sys::WOLFSSL_ERROR_WANT_WRITE || err as u32 == sys::WOLFSSL_ERROR_WANT_READ {
            return Ok(());
        }
        Err(WolfError::Call { call: "wolfSSL_update_keys", code: err, reason: reason(err) })
    }

    pub(crate) fn version(&self) -> String {
        // SAFETY: the connection is live; wolfSSL returns a static string.
        unsafe { static_str(sys::wolfSSL_get_version(self.ptr())) }.unwrap_or_default()
    }

    /// The negotiated cipher suite, as wolfSSL names it (`TLS13-AES128-GCM-SHA256`).
    pub(crate) fn cipher(&self) -> String {
        // SAFETY: the connection is live; wolfSSL returns a static string or NULL.
        unsafe { static_str(sys::wolfSSL_get_cipher_name(self.ptr())) }.unwrap_or_default()
    }

    /// The group of the (EC)DHE key exchange (`X25519`, `SECP256R1`, ...), if there was one
    /// (`wolfSSL_get_curve_name`). A client reports the group of its key share even when the
    /// server chose psk_ke and no exchange took place; the server's answer is the one to trust.
    pub(crate) fn group(&self) -> Option<String> {
        // SAFETY: the connection is live; wolfSSL returns a static string or NULL.
        unsafe { static_str(sys::wolfSSL_get_curve_name(self.ptr())) }
    }

    /// Server: the PSK identity its callback accepted, if any (wolfSSL's own
    /// `wolfSSL_get_psk_identity` reads state it frees when the handshake completes).
    pub(crate) fn psk_identity(&self) -> Option<String> {
        self.state.accepted_identity.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// NSS key log lines of the secrets wolfSSL derived so far, in order, each once:
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
    /// `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`, `EXPORTER_SECRET` (and the early
    /// ones with early data), each `LABEL <client random hex> <secret hex>`.
    pub(crate) fn key_log(&self) -> Vec<String> {
        self.state.key_log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Calls `step` until it returns a positive value (returned), or 0 with close_notify
    /// received (0 is returned); waits for the socket while wolfSSL wants to read, telling it
    /// when its retransmission timer expires.
    fn drive(
        &mut self,
        call: &'static str,
        mut step: impl FnMut(*mut sys::WOLFSSL) -> c_int,
    ) -> Result<c_int, WolfError> {
        let s = self.ptr();
        let deadline = Instant::now() + self.timeout;
        loop {
            let ret = step(s);
            if ret > 0 {
                return Ok(ret);
            }
            // SAFETY: the connection is live; `ret` is what its last call returned.
            let err = unsafe { sys::wolfSSL_get_error(s, ret) };
            // Application data arrived before the handshake's last flight was acknowledged:
            // `wolfSSL_read` has it on the next call.
            if err == sys::wolfSSL_ErrorCodes_APP_DATA_READY && call == "wolfSSL_read" {
                continue;
            }
            let events = match err as u32 {
                sys::WOLFSSL_ERROR_WANT_READ => libc::POLLIN,
                sys::WOLFSSL_ERROR_WANT_WRITE => libc::POLLOUT,
                sys::WOLFSSL_ERROR_ZERO_RETURN => return Ok(0),
                _ => return Err(WolfError::Call { call, code: err, reason: reason(err) }),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(WolfError::Timeout { call, after: self.timeout });
            }
            let timer = self.retransmission_timer();
            if self.wait(events, timer.min(deadline - now))? {
                continue;
            }
            if Instant::now() >= deadline {
                return Err(WolfError::Timeout { call, after: self.timeout });
            }
            // SAFETY: the connection is live.
            if unsafe { sys::wolfSSL_dtls_got_timeout(s) } != sys::WOLFSSL_SUCCESS as c_int {
                // SAFETY: as above; the failed call set the connection's error.
                let err = unsafe { sys::wolfSSL_get_error(s, -1) };
                return Err(WolfError::Call { call: "wolfSSL_dtls_got_timeout", code: err, reason: reason(err) });
            }
        }
    }

    /// How long wolfSSL wants to wait before its timer fires: its current timeout, a quarter
    /// of it when DTLS 1.3 asks for the quick one (then only ACKs are sent on expiry).
    fn retransmission_timer(&self) -> Duration {
        let s = self.ptr();
        // SAFETY: the connection is live.
        let (secs, quick) =
            unsafe { (sys::wolfSSL_dtls_get_current_timeout(s), sys::wolfSSL_dtls13_use_quick_timeout(s)) };
        let timer = Duration::from_secs(u64::try_from(secs).unwrap_or(1).max(1));
        if quick != 0 {
            timer / 4
        } else {
            timer
        }
    }

    /// Waits until the socket is ready for `events` (`true`) or `timeout` passed (`false`).
    fn wait(&self, events: libc::c_short, timeout: Duration) -> Result<bool, WolfError> {
        let mut pfd = libc::pollfd { fd: self.socket().as_raw_fd(), events, revents: 0 };
        // Rounded up, so a timer is not polled for early and spun on.
        let ms = c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
        loop {
            // SAFETY: `pfd` is one valid pollfd for an open socket.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n >= 0 {
                return Ok(n > 0);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
    }
}

/// A copy of a NUL-terminated string wolfSSL returned, `None` for NULL.
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated string valid for the duration of the call.
unsafe fn static_str(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: by the function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}
