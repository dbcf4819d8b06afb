//! Keying-material exporters: RFC 5705 for DTLS 1.2, RFC 8446 §7.5 for DTLS 1.3 (with DTLS
//! 1.3's `"dtls13"` label prefix, RFC 9147 §5.9). What DTLS-SRTP (RFC 5764) and other protocols
//! built on DTLS derive their keys with.

use super::*;
use crate::crypto::{hkdf_expand_label, DTLS13_LABEL_PREFIX};

/// The labels DTLS 1.2 itself uses with its PRF: an export may not reuse them (RFC 5705 §4).
const RESERVED_LABELS: [&[u8]; 5] =
    [b"client finished", b"server finished", b"master secret", b"key expansion", b"extended master secret"];

impl Connection {
    /// Fills `out` with keying material for another protocol, from this connection's secrets,
    /// under `label` and an optional `context` (RFC 5705 for DTLS 1.2: `PRF(master_secret,
    /// label, client_random || server_random [|| context_length || context])`; RFC 8446 §7.5
    /// for DTLS 1.3, where no context and an empty one give the same). Both ends of a
    /// connection derive the same bytes.
    ///
    /// The configuration must keep the secret
    /// ([`ConfigBuilder::keying_material_exporter`](crate::ConfigBuilder::keying_material_exporter)).
    /// Fails before the handshake completed, for a label DTLS 1.2 uses itself, or one too long
    /// for DTLS 1.3's labels (over 249 bytes), and for a context over 65,535 bytes.
    pub fn export_keying_material(&self, label: &[u8], context: Option<&[u8]>, out: &mut [u8]) -> Result<(), Error> {
        if !self.config.exporter {
            // The secret may be there for session export or DTLS-SRTP alone.
            return Err(Error::InvalidOperation(
                "keying-material export is not enabled (ConfigBuilder::keying_material_exporter)",
            ));
        }
        self.export_with(label, context, out)
    }

    /// Whether this connection keeps the secret exports derive from: for the configuration's
    /// keying-material exports, or for the SRTP profile agreed on (a configuration that offers
    /// DTLS-SRTP keeps nothing for connections that did not agree on a profile).
    pub(crate) fn keeps_exporter_secret(&self) -> bool {
        self.config.exporter || self.srtp_profile().is_some()
    }

    /// [`export_keying_material`](Self::export_keying_material), whatever the configuration
    /// says of it, from the secret if the connection kept it.
    pub(crate) fn export_with(&self, label: &[u8], context: Option<&[u8]>, out: &mut [u8]) -> Result<(), Error> {
        if !self.is_established() {
            return Err(Error::InvalidOperation("keying material is exported once the handshake completed"));
        }
        let (Some(secret), Some(suite)) = (self.details.as_ref().and_then(|d| d.export_secret.as_deref()), self.suite)
        else {
            return Err(Error::InvalidOperation(
                "keying-material export is not enabled (ConfigBuilder::keying_material_exporter)",
            ));
        };
        let provider = &*self.config.provider;
        let hash = suite.hash;
        if self.tls13.is_some() {
            // Derive-Secret(exporter_master_secret, label, "") then
            // HKDF-Expand-Label(that, "exporter", Hash(context), length).
            if label.len() > 255 - DTLS13_LABEL_PREFIX.len() {
                return Err(Error::InvalidInput("an exporter label is at most 249 bytes in DTLS 1.3"));
            }
            let n = hash.output_len();
            let mut derived = zeroize::Zeroizing::new([0u8; 64]);
            let empty = provider.hash(hash, &[]);
            hkdf_expand_label(provider, hash, secret, DTLS13_LABEL_PREFIX, label, empty.as_bytes(), &mut derived[..n])?;
            let context = provider.hash(hash, &[context.unwrap_or_default()]);
            hkdf_expand_label(
                provider,
                hash,
                &derived[..n],
                DTLS13_LABEL_PREFIX,
                b"exporter",
                context.as_bytes(),
                out,
            )?;
            return Ok(());
        }
        if RESERVED_LABELS.contains(&label) {
            return Err(Error::InvalidInput("this label is DTLS 1.2's own (RFC 5705 §4)"));
        }
        let (master, randoms) = secret.split_at(crate::handshake::tls12::MASTER_SECRET_LEN);
        let mut seed = Vec::with_capacity(randoms.len() + 2 + context.map_or(0, <[u8]>::len));
        seed.extend_from_slice(randoms);
        if let Some(c) = context {
            let len = u16::try_from(c.len())
                .map_err(|_| Error::InvalidInput("an exporter context is at most 65,535 bytes"))?;
            seed.extend_from_slice(&len.to_be_bytes());
            seed.extend_from_slice(c);
        }
        provider.prf(hash, master, label, &seed, out)?;
        Ok(())
    }
}
