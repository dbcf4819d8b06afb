//! DTLS-SRTP (RFC 5764) on a [`WolfPeer`]: wolfSSL built with `WOLFSSL_SRTP` and
//! `HAVE_KEYING_MATERIAL` (the workspace's `.cargo/config.toml` gives its configure the defines).

use std::ffi::CString;

use wolfssl_sys as sys;

use super::{WolfError, WolfPeer};

/// Offers (client) or accepts (server) the `:`-separated profiles, in OpenSSL's names
/// (`SRTP_AES128_CM_SHA1_80`, `SRTP_AEAD_AES_128_GCM`...), on connection `s`.
pub(super) fn offer(s: *mut sys::WOLFSSL, profiles: &str) -> Result<(), WolfError> {
    let list = CString::new(profiles).map_err(|_| WolfError::Config("NUL in the SRTP profile list".into()))?;
    // SAFETY: `s` is live. wolfSSL exports keying material only from a connection that kept
    // its handshake data.
    unsafe { sys::wolfSSL_KeepArrays(s) };
    // SAFETY: `s` is a live connection not yet started; `list` is a C string wolfSSL reads now.
    // Like OpenSSL's, this call returns 0 on success.
    match unsafe { sys::wolfSSL_set_tlsext_use_srtp(s, list.as_ptr()) } {
        0 => Ok(()),
        _ => Err(WolfError::Config(format!("wolfSSL refused the SRTP profiles {profiles:?}"))),
    }
}

impl WolfPeer {
    /// The code point of the SRTP profile the handshake agreed on, if any.
    pub(crate) fn srtp_profile(&self) -> Option<u16> {
        // SAFETY: the connection is live; the profile is a static entry of wolfSSL's table.
        let profile = unsafe { sys::wolfSSL_get_selected_srtp_profile(self.ptr()) };
        // SAFETY: not null, so a valid entry.
        (!profile.is_null()).then(|| unsafe { (*profile).id } as u16)
    }

    /// The SRTP keying material wolfSSL exports for the agreed profile
    /// (`EXTRACTOR-dtls_srtp`).
    pub(crate) fn srtp_keying_material(&self) -> Option<Vec<u8>> {
        let mut len: usize = 0;
        // SAFETY: the connection is live; with no buffer wolfSSL only sets `len`.
        unsafe { sys::wolfSSL_export_dtls_srtp_keying_material(self.ptr(), std::ptr::null_mut(), &mut len) };
        if len == 0 {
            return None;
        }
        let mut out = vec![0u8; len];
        // SAFETY: `out` is writable for `len` bytes, which wolfSSL checks.
        let ret = unsafe { sys::wolfSSL_export_dtls_srtp_keying_material(self.ptr(), out.as_mut_ptr(), &mut len) };
        (ret == 1).then_some(out)
    }
}
