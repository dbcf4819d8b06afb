//! wolfSSL's callbacks: TLS 1.3 PSK lookup (both roles) and the TLS 1.3 secrets, kept as NSS key
//! log lines. They run inside wolfSSL calls made by `WolfPeer`, on its thread; they never panic
//! (a panic cannot unwind through C).

use std::ffi::{c_char, c_int, c_uchar, c_uint, c_void, CStr, CString};
use std::ptr;
use std::sync::{Mutex, PoisonError};

use wolfssl_sys as sys;

/// What the callbacks of one connection read, boxed so its address is stable.
pub(super) struct CallbackState {
    pub(super) psk: Option<PskState>,
    /// Server: the PSK identity the callback accepted last.
    pub(super) accepted_identity: Mutex<Option<String>>,
    pub(super) key_log: Mutex<Vec<String>>,
}

/// An external PSK and the suite it is bound to.
pub(super) struct PskState {
    pub(super) identity: CString,
    pub(super) key: Vec<u8>,
    /// The suite name handed to wolfSSL, which keeps the pointer: it lives as long as the state.
    pub(super) cipher: CString,
}

/// The PSK state of `ssl`'s callback context.
///
/// # Safety
///
/// `ssl` is a live connection whose PSK callback context is NULL or a `CallbackState` that
/// outlives the returned reference.
unsafe fn psk_state<'a>(ssl: *mut sys::WOLFSSL) -> Option<(&'a CallbackState, &'a PskState)> {
    // SAFETY: `ssl` is live, by the function's contract.
    let ctx = unsafe { sys::wolfSSL_get_psk_callback_ctx(ssl) };
    // SAFETY: NULL or a live `CallbackState`, by the function's contract; only shared references
    // to it are ever made.
    let state = unsafe { ctx.cast::<CallbackState>().as_ref() }?;
    Some((state, state.psk.as_ref()?))
}

/// Client: the identity and key to offer, and the suite they go with.
///
/// # Safety
///
/// Called by wolfSSL with a connection whose PSK callback context is set by `WolfPeer`, an
/// identity buffer of `identity_max` bytes, a key buffer of `key_max` bytes and a place for the
/// suite name.
pub(super) unsafe extern "C" fn psk_client(
    ssl: *mut sys::WOLFSSL,
    _hint: *const c_char,
    identity: *mut c_char,
    identity_max: c_uint,
    key: *mut c_uchar,
    key_max: c_uint,
    cipher: *mut *const c_char,
) -> c_uint {
    // SAFETY: wolfSSL passes the connection `WolfPeer` set the context on.
    let Some((_, psk)) = (unsafe { psk_state(ssl) }) else { return 0 };
    let id = psk.identity.as_bytes_with_nul();
    if id.len() > identity_max as usize || psk.key.len() > key_max as usize || identity.is_null() || key.is_null() {
        return 0;
    }
    // SAFETY: the buffers are writable for `identity_max` and `key_max` bytes (checked above to
    // fit), and do not overlap our own data; `cipher` points to where wolfSSL reads the suite
    // name from, which stays valid as long as the state.
    unsafe {
        ptr::copy_nonoverlapping(id.as_ptr().cast(), identity, id.len());
        ptr::copy_nonoverlapping(psk.key.as_ptr(), key, psk.key.len());
        *cipher = psk.cipher.as_ptr();
    }
    psk.key.len() as c_uint
}

/// Server: the key for the client's identity (only the configured one), and its suite.
///
/// # Safety
///
/// Called by wolfSSL with a connection whose PSK callback context is set by `WolfPeer`, a
/// NUL-terminated identity, a key buffer of `key_max` bytes and a place for the suite name.
pub(super) unsafe extern "C" fn psk_server(
    ssl: *mut sys::WOLFSSL,
    identity: *const c_char,
    key: *mut c_uchar,
    key_max: c_uint,
    cipher: *mut *const c_char,
) -> c_uint {
    // SAFETY: wolfSSL passes the connection `WolfPeer` set the context on.
    let Some((state, psk)) = (unsafe { psk_state(ssl) }) else { return 0 };
    if identity.is_null() || key.is_null() || psk.key.len() > key_max as usize {
        return 0;
    }
    // SAFETY: wolfSSL NUL-terminates the identity it parsed.
    if unsafe { CStr::from_ptr(identity) } != psk.identity.as_c_str() {
        return 0;
    }
    // SAFETY: as in `psk_client`.
    unsafe {
        ptr::copy_nonoverlapping(psk.key.as_ptr(), key, psk.key.len());
        *cipher = psk.cipher.as_ptr();
    }
    *state.accepted_identity.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(psk.identity.to_string_lossy().into_owned());
    psk.key.len() as c_uint
}

/// The NSS key log label of a wolfSSL TLS 1.3 secret.
#[cfg(not(rdtls_bench))]
fn label(id: c_int) -> Option<&'static str> {
    Some(match sys::Tls13Secret::try_from(id).ok()? {
        sys::Tls13Secret_CLIENT_EARLY_TRAFFIC_SECRET => "CLIENT_EARLY_TRAFFIC_SECRET",
        sys::Tls13Secret_CLIENT_HANDSHAKE_TRAFFIC_SECRET => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        sys::Tls13Secret_SERVER_HANDSHAKE_TRAFFIC_SECRET => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        sys::Tls13Secret_CLIENT_TRAFFIC_SECRET => "CLIENT_TRAFFIC_SECRET_0",
        sys::Tls13Secret_SERVER_TRAFFIC_SECRET => "SERVER_TRAFFIC_SECRET_0",
        sys::Tls13Secret_EARLY_EXPORTER_SECRET => "EARLY_EXPORTER_SECRET",
        sys::Tls13Secret_EXPORTER_SECRET => "EXPORTER_SECRET",
        _ => return None,
    })
}

/// Each TLS 1.3 secret as it is derived: appended to the key log, keyed by the client random.
/// Secrets wolfSSL derives again (the same line) are kept once.
///
/// # Safety
///
/// Called by wolfSSL with a live connection, `secret_len` readable bytes at `secret` and the
/// `CallbackState` `WolfPeer` registered as `ctx`.
#[cfg(not(rdtls_bench))]
pub(super) unsafe extern "C" fn tls13_secret(
    ssl: *mut sys::WOLFSSL,
    id: c_int,
    secret: *const c_uchar,
    secret_len: c_int,
    ctx: *mut c_void,
) -> c_int {
    let (Some(label), Ok(len)) = (label(id), usize::try_from(secret_len)) else { return 0 };
    // SAFETY: `ctx` is the live `CallbackState` registered with this callback.
    let Some(state) = (unsafe { ctx.cast::<CallbackState>().as_ref() }) else { return 0 };
    if secret.is_null() {
        return 0;
    }
    // SAFETY: wolfSSL passes `secret_len` readable bytes.
    let secret = unsafe { std::slice::from_raw_parts(secret, len) };
    let mut random = [0u8; 32];
    // SAFETY: `ssl` is live and `random` writable for its length.
    let n = unsafe { sys::wolfSSL_get_client_random(ssl, random.as_mut_ptr(), random.len()) };
    let line = format!("{label} {} {}", hex::encode(&random[..n.min(random.len())]), hex::encode(secret));
    let mut log = state.key_log.lock().unwrap_or_else(PoisonError::into_inner);
    if !log.contains(&line) {
        log.push(line);
    }
    0
}
