//! Session hand-off: an established connection serialized for another process, and resumed
//! there (EdgerOS `flyAway` / `createByFd`).

use super::*;

/// Marks an exported session (and its format version).
const SESSION_MAGIC: &[u8] = b"DTLSSES1";

impl Connection {
    /// Serializes an established connection so another process can resume it with
    /// [`import_session`](Self::import_session) (EdgerOS `flyAway` / `createByFd`). The result
    /// holds the master secret: pass it only over a private channel (a pipe or a UNIX socket to
    /// a cooperating process) and let it be wiped (it is zeroized on drop). The configuration
    /// must allow it ([`ConfigBuilder::allow_session_export`](crate::ConfigBuilder::allow_session_export)).
    /// Sequence numbers continue from where this connection stopped, so this connection closes
    /// (quietly, without an alert): two owners of one key would reuse nonces.
    pub fn export_session(&mut self) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        use crate::codec::Put;
        if !self.is_established() {
            return Err(Error::InvalidOperation("only an established connection can be exported"));
        }
        let (Some(secret), Some(suite)) = (self.details.as_ref().and_then(|d| d.export_secret.as_ref()), self.suite)
        else {
            return Err(Error::InvalidOperation("session export is not allowed by the configuration"));
        };
        let write_seq = self.epochs.next_seq(1).unwrap_or(0);
        if write_seq > MAX_SEQ {
            // The importer would start again from a sequence number already used.
            return Err(Error::SequenceExhausted);
        }
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(SESSION_MAGIC);
        out.put_u8(match self.side {
            Side::Client => 0,
            Side::Server => 1,
        });
        out.put_u16(suite.id);
        out.put_u8(u8::from(self.extended_master_secret));
        out.extend_from_slice(secret);
        out.put_u48(write_seq);
        let (top, bits) = self.epochs.window(1).map_or((0, 0), ReplayWindow::to_parts);
        out.extend_from_slice(&top.to_be_bytes());
        out.extend_from_slice(&bits.to_be_bytes());
        out.put_vec16(self.psk_identity.as_deref().unwrap_or_default());
        out.put_u16(self.peer_certificates().len() as u16);
        for c in self.peer_certificates() {
            out.put_len24(|b| b.extend_from_slice(c.as_ref()));
        }
        self.close(HandshakeState::Complete, None);
        if let Some(d) = &mut self.details {
            d.export_secret = None;
        }
        self.epochs.clear_keys();
        Ok(out)
    }

    /// Resumes a connection exported with [`export_session`](Self::export_session). `config`
    /// supplies the crypto provider and limits; the keys come from the exported state.
    pub fn import_session(config: Arc<Config>, data: &[u8], now: Instant) -> Result<Self, Error> {
        use crate::handshake::tls12::{epoch_keys, export_secret};
        let bad = Error::InvalidInput("not an exported DTLS session");
        let mut r = Reader::new(data);
        if r.take(SESSION_MAGIC.len()) != Some(SESSION_MAGIC) {
            return Err(bad);
        }
        let side = match r.u8() {
            Some(0) => Side::Client,
            Some(1) => Side::Server,
            _ => return Err(bad),
        };
        let suite = r.u16().and_then(CipherSuite::from_id).ok_or(bad.clone())?;
        let ems = r.u8().ok_or(bad.clone())? != 0;
        let master: [u8; 48] = r.take_array().ok_or(bad.clone())?;
        let master = zeroize::Zeroizing::new(master);
        let client_random: [u8; 32] = r.take_array().ok_or(bad.clone())?;
        let server_random: [u8; 32] = r.take_array().ok_or(bad.clone())?;
        let write_seq = r.u48().ok_or(bad.clone())?;
        let top = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let bits = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let identity = r.vec16().ok_or(bad.clone())?;
        let count = r.u16().ok_or(bad.clone())?;
        let mut peer_certs = Vec::with_capacity(usize::from(count.min(16)));
        for _ in 0..count {
            peer_certs.push(CertificateDer::from(r.vec24().ok_or(bad.clone())?.to_vec()));
        }
        r.finish().ok_or(bad)?;

        let (read, write) = epoch_keys(&*config.provider, suite, &master, &client_random, &server_random, side)?;
        let mut conn = Self::new(side, config, now)?;
        conn.set_established();
        conn.flight = None;
        conn.suite = Some(suite);
        conn.extended_master_secret = ems;
        conn.epochs.install(1, Some(EpochKeys::Dtls12(read)), Some(EpochKeys::Dtls12(write)));
        conn.epochs.set_write_epoch(1);
        conn.epochs.set_next_seq(1, write_seq);
        conn.epochs.set_window(1, ReplayWindow::from_parts(top, bits));
        conn.psk_identity = (!identity.is_empty()).then(|| identity.to_vec());
        if !peer_certs.is_empty() {
            conn.details_mut().peer_certs = peer_certs;
        }
        if conn.config.session_export {
            conn.details_mut().export_secret = Some(export_secret(&master, &client_random, &server_random));
        }
        Ok(conn)
    }
}
