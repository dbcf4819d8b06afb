//! Connection ID (RFC 9146, RFC 9147 §9) on a [`WolfPeer`]: wolfSSL built with
//! `WOLFSSL_DTLS_CID` (the workspace's `.cargo/config.toml` gives its configure the define).

use std::ffi::c_uint;

use wolfssl_sys as sys;

use super::{check, WolfError, WolfPeer};

/// Offers the extension on connection `s` and asks for `id` on the records the peer sends.
pub(super) fn offer(s: *mut sys::WOLFSSL, id: &[u8]) -> Result<(), WolfError> {
    let len = c_uint::try_from(id.len()).map_err(|_| WolfError::Config("connection ID too long".into()))?;
    // SAFETY: `s` is a live connection not yet started.
    check("wolfSSL_dtls_cid_use", unsafe { sys::wolfSSL_dtls_cid_use(s) })?;
    let mut id = id.to_vec();
    // SAFETY: `s` is live; `id` is valid for `len` bytes and copied by wolfSSL (it may be empty:
    // a zero-length ID, and wolfSSL then ignores the pointer).
    check("wolfSSL_dtls_cid_set", unsafe { sys::wolfSSL_dtls_cid_set(s, id.as_mut_ptr(), len) })
}

impl WolfPeer {
    /// The connection IDs after the handshake, if the extension was used: the one wolfSSL
    /// receives (what it asked for) and the one it sends (what its peer asked for), each
    /// possibly empty.
    pub(crate) fn connection_ids(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        // SAFETY: the connection is live.
        if unsafe { sys::wolfSSL_dtls_cid_is_enabled(self.ptr()) } != 1 {
            return None;
        }
        let get = |rx: bool| -> Option<Vec<u8>> {
            let mut size: c_uint = 0;
            // SAFETY: the connection is live; `size` is a valid out-parameter.
            let ret = unsafe {
                if rx {
                    sys::wolfSSL_dtls_cid_get_rx_size(self.ptr(), &mut size)
                } else {
                    sys::wolfSSL_dtls_cid_get_tx_size(self.ptr(), &mut size)
                }
            };
            check("wolfSSL_dtls_cid_get_size", ret).ok()?;
            let mut buf = vec![0u8; size as usize];
            if size > 0 {
                // SAFETY: `buf` is writable for `size` bytes, the ID's length.
                let ret = unsafe {
                    if rx {
                        sys::wolfSSL_dtls_cid_get_rx(self.ptr(), buf.as_mut_ptr(), size)
                    } else {
                        sys::wolfSSL_dtls_cid_get_tx(self.ptr(), buf.as_mut_ptr(), size)
                    }
                };
                check("wolfSSL_dtls_cid_get", ret).ok()?;
            }
            Some(buf)
        };
        Some((get(true)?, get(false)?))
    }
}
