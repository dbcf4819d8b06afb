//! What the handshake agreed on beyond the cipher suite, for the protocol that runs over the
//! connection: the application protocol (ALPN, RFC 7301), and DTLS-SRTP's profile and keys
//! (RFC 5764).

use super::*;
use crate::srtp::{SrtpKeyingMaterial, SrtpProfile, EXPORTER_LABEL};

impl Connection {
    /// The application-layer protocol the handshake agreed on (RFC 7301; see
    /// [`ConfigBuilder::alpn_protocols`](crate::ConfigBuilder::alpn_protocols)): `None` before
    /// the handshake chose one, or when either side offers or takes none. A server knows its
    /// choice from the ClientHello on, before the handshake authenticated the client.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.details.as_ref().and_then(|d| d.alpn.as_deref())
    }

    /// The SRTP protection profile the handshake agreed on (RFC 5764): `None` before the
    /// handshake chose one, when either side did not ask for DTLS-SRTP, or when they have no
    /// profile in common (a server then goes on without SRTP; an application that needs it
    /// closes the connection).
    pub fn srtp_profile(&self) -> Option<SrtpProfile> {
        self.details.as_ref().and_then(|d| d.srtp)
    }

    /// The SRTP master keys and salts of both sides (RFC 5764 §4.2), exported from the
    /// connection's secrets under the label `EXTRACTOR-dtls_srtp`. Both ends derive the
    /// same. Fails before the handshake completed, or when no SRTP profile was agreed on.
    pub fn srtp_keying_material(&self) -> Result<SrtpKeyingMaterial, Error> {
        let Some(profile) = self.srtp_profile() else {
            return Err(Error::InvalidOperation("no SRTP protection profile was agreed on"));
        };
        if self.details.as_ref().is_none_or(|d| d.export_secret.is_none()) && self.is_established() {
            // An imported session whose exporter left the secret out.
            return Err(Error::InvalidOperation("the SRTP keys' secret did not come with the imported session"));
        }
        let len = 2 * (profile.master_key_len() + profile.master_salt_len());
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; len]);
        self.export_with(EXPORTER_LABEL, None, &mut bytes)?;
        Ok(SrtpKeyingMaterial::new(profile, bytes))
    }
}
