//! ALPN (RFC 7301) on a [`WolfPeer`]: wolfSSL built with `HAVE_ALPN` (wolfssl-sys's `alpn`
//! feature).

use std::ffi::{c_char, c_uint};

use wolfssl_sys as sys;

use super::{check, WolfError, WolfPeer};

/// Offers (client) or accepts (server) the comma-separated `protocols` on connection `s`,
/// failing the handshake when the peer's list has none of them.
pub(super) fn offer(s: *mut sys::WOLFSSL, protocols: &str) -> Result<(), WolfError> {
    let mut list = protocols.as_bytes().to_vec();
    let len = c_uint::try_from(list.len()).map_err(|_| WolfError::Config("ALPN list too long".into()))?;
    let options = sys::WOLFSSL_ALPN_FAILED_ON_MISMATCH as u8;
    // SAFETY: `s` is a live connection not yet started; `list` is valid for `len` bytes and
    // copied by wolfSSL.
    check("wolfSSL_UseALPN", unsafe { sys::wolfSSL_UseALPN(s, list.as_mut_ptr().cast::<c_char>(), len, options) })
}

impl WolfPeer {
    /// The protocol the handshake agreed on, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        let (mut name, mut size): (*mut c_char, u16) = (std::ptr::null_mut(), 0);
        // SAFETY: the connection is live; both are valid out-parameters.
        let ret = unsafe { sys::wolfSSL_ALPN_GetProtocol(self.ptr(), &mut name, &mut size) };
        if ret != 1 || name.is_null() {
            return None;
        }
        // SAFETY: wolfSSL points `name` at `size` bytes it owns while the connection lives.
        Some(unsafe { std::slice::from_raw_parts(name.cast::<u8>(), usize::from(size)) }.to_vec())
    }
}
