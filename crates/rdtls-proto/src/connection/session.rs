//! Session hand-off: an established connection serialized for another process, and resumed
//! there (EdgerOS `flyAway` / `createByFd`).

use super::*;

/// Marks an exported DTLS 1.2 session (and its format version).
const SESSION_MAGIC: &[u8] = b"DTLSSES1";
/// Marks an exported DTLS 1.2 session with connection IDs: the `DTLSSES1` fields, then ours
/// and the peer's (each with a one-byte length), then (since return routability checks) the
/// connection ID extras (`write_cid_extras`), which an older export lacks.
const SESSION_CID_MAGIC: &[u8] = b"DTLSSES2";
/// Marks an exported DTLS 1.3 session: the traffic secrets of the current epochs in place of
/// the master secret; with connection IDs, ours and the peer's, then their extras.
const SESSION13_MAGIC: &[u8] = b"DTLSSES3";
/// A `DTLSSES3` export whose server had sent its NewSessionTicket and not yet seen it
/// acknowledged: after the message sequences, the ticket's `message_seq` and body, which the
/// importer sends again.
const SESSION13_TICKET_MAGIC: &[u8] = b"DTLSSES4";

/// Starts the optional sections that end an export, after everything else. Never the first
/// byte of what may come there before (our connection ID's length, at most 20; the connection
/// ID extras, which start with 0 or 1), so an export without sections reads as before.
const SECTIONS: u8 = 0xff;
/// Section: the SRTP protection profile agreed on, its code point (RFC 5764).
const SECTION_SRTP: u8 = 1;
/// Section: DTLS 1.3's exporter master secret, when the connection kept it.
const SECTION_EXPORTER13: u8 = 2;
/// Section: the application protocol agreed on (RFC 7301).
const SECTION_ALPN: u8 = 3;

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
        if self.tls13.is_some() {
            return self.export_session13();
        }
        if !self.config.session_export {
            // The secret may be kept for keying-material exports alone.
            return Err(Error::InvalidOperation("session export is not allowed by the configuration"));
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
        let cids = self.connection_id().zip(self.peer_connection_id());
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(if cids.is_some() { SESSION_CID_MAGIC } else { SESSION_MAGIC });
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
        if let Some((own, peer)) = cids {
            out.put_vec8(own);
            out.put_vec8(peer);
            self.write_cid_extras(&mut out);
        }
        self.write_sections(&mut out);
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
        if data.starts_with(SESSION13_MAGIC) {
            return Self::import_session13(config, &data[SESSION13_MAGIC.len()..], now, false);
        }
        if data.starts_with(SESSION13_TICKET_MAGIC) {
            return Self::import_session13(config, &data[SESSION13_TICKET_MAGIC.len()..], now, true);
        }
        let mut r = Reader::new(data);
        let with_cids = match r.take(SESSION_MAGIC.len()) {
            Some(SESSION_MAGIC) => false,
            Some(SESSION_CID_MAGIC) => true,
            _ => return Err(bad),
        };
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
        let cids = match with_cids {
            true => Some((r.vec8().ok_or(bad.clone())?, r.vec8().ok_or(bad.clone())?)),
            false => None,
        };

        let (read, write) = epoch_keys(&*config.provider, suite, &master, &client_random, &server_random, side)?;
        let mut conn = Self::new(side, config, now)?;
        conn.set_established(0);
        conn.flight = None;
        conn.suite = Some(suite);
        conn.extended_master_secret = ems;
        conn.epochs.install(1, Some(EpochKeys::Dtls12(read)), Some(EpochKeys::Dtls12(write)));
        conn.epochs.set_write_epoch(1);
        conn.epochs.set_next_seq(1, write_seq);
        conn.epochs.set_window(1, ReplayWindow::from_parts(top, bits));
        conn.psk_identity = (!identity.is_empty()).then(|| identity.into());
        if !peer_certs.is_empty() {
            conn.details_mut().peer_certs = peer_certs;
        }
        // The IDs the session negotiated, whatever the importing configuration asks for.
        if let Some((own, peer)) = cids {
            // Ours, so at most MAX_CID_LEN bytes (a longer one was never exported by us).
            let own = crate::cid::OwnCid::new(own).ok_or(bad.clone())?;
            conn.cid = Some(cid::Cid::negotiated(own));
            conn.set_peer_cid(peer);
            // An export made before return routability checks ends here.
            if !r.is_empty() && r.peek() != Some(SECTIONS) {
                conn.read_cid_extras(&mut r).ok_or(bad.clone())?;
            }
        }
        conn.read_sections(&mut r).ok_or(bad.clone())?;
        r.finish().ok_or(bad)?;
        if conn.config.session_export || conn.keeps_exporter_secret() {
            conn.details_mut().export_secret = Some(export_secret(&master, &client_random, &server_random));
        }
        Ok(conn)
    }

    /// The DTLS 1.3 export: side, suite, then for each direction its epoch and traffic secret
    /// (the read one with its replay window, the write one with its next sequence number),
    /// the post-handshake message sequences, identity and peer certificates.
    fn export_session13(&mut self) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        use crate::codec::Put;
        if !self.config.session_export {
            return Err(Error::InvalidOperation("session export is not allowed by the configuration"));
        }
        // A flight the importer could not resend: wait for the peer's acknowledgement. Our
        // ticket it can: it travels with the state.
        let pending_ticket = match self.flight.as_deref() {
            None => None,
            Some(fl) => match fl.items.as_slice() {
                [crate::handshake::FlightItem::Message { msg_type, seq, body, .. }]
                    if fl.awaits_ack && *msg_type == HandshakeType::NEW_SESSION_TICKET =>
                {
                    Some((*seq, body.clone()))
                }
                _ => {
                    return Err(Error::InvalidOperation(
                        "a flight (last handshake flight or KeyUpdate) awaits acknowledgement",
                    ))
                }
            },
        };
        let (Some(t), Some(suite)) = (self.tls13.as_deref(), self.suite) else {
            return Err(Error::Crypto);
        };
        // The importer reads one epoch of the peer's: not while the peer may still write in
        // the one before (it updated its keys and may not have our acknowledgement yet).
        if t.awaits_peer_new_epoch() {
            return Err(Error::InvalidOperation(
                "the peer's KeyUpdate is recent: nothing of its new epoch has arrived yet",
            ));
        }
        let Some((read, write)) = &t.secrets else { return Err(Error::Crypto) };
        let read_epoch = t.read_epoch.max(crate::handshake::tls13::EPOCH_APPLICATION);
        let write_epoch = self.epochs.write_epoch();
        let write_seq = self.epochs.next_seq(write_epoch).unwrap_or(0);
        if write_seq > MAX_SEQ {
            return Err(Error::SequenceExhausted);
        }
        // The handshake message numbers fit 16 bits until they are spent.
        let (Ok(next_send_seq), Ok(peer_next_seq)) = (u16::try_from(t.next_send_seq), u16::try_from(t.peer_next_seq))
        else {
            return Err(Error::InvalidOperation("the connection's handshake message numbers are spent"));
        };
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(if pending_ticket.is_some() { SESSION13_TICKET_MAGIC } else { SESSION13_MAGIC });
        out.put_u8(match self.side {
            Side::Client => 0,
            Side::Server => 1,
        });
        out.put_u16(suite.id);
        out.extend_from_slice(&read_epoch.to_be_bytes());
        out.put_vec8(read.as_bytes());
        let (top, bits) = self.epochs.window(read_epoch).map_or((0, 0), ReplayWindow::to_parts);
        out.extend_from_slice(&top.to_be_bytes());
        out.extend_from_slice(&bits.to_be_bytes());
        out.extend_from_slice(&write_epoch.to_be_bytes());
        out.put_vec8(write.as_bytes());
        out.put_u48(write_seq);
        out.put_u16(next_send_seq);
        out.put_u16(peer_next_seq);
        if let Some((seq, body)) = &pending_ticket {
            out.put_u16(*seq);
            out.put_vec16(body);
        }
        out.put_vec16(self.psk_identity.as_deref().unwrap_or_default());
        out.put_u16(self.peer_certificates().len() as u16);
        for c in self.peer_certificates() {
            out.put_len24(|b| b.extend_from_slice(c.as_ref()));
        }
        if let Some((own, peer)) = self.connection_id().zip(self.peer_connection_id()) {
            out.put_vec8(own);
            out.put_vec8(peer);
            self.write_cid_extras(&mut out);
        }
        self.write_sections(&mut out);
        self.close(HandshakeState::Complete, None);
        self.epochs.clear_keys();
        self.tls13 = None;
        if let Some(d) = &mut self.details {
            d.export_secret = None;
        }
        Ok(out)
    }

    fn import_session13(config: Arc<Config>, data: &[u8], now: Instant, with_ticket: bool) -> Result<Self, Error> {
        use crate::handshake::tls13::{epoch_keys, key_schedule::Secret};
        let bad = Error::InvalidInput("not an exported DTLS session");
        let mut r = Reader::new(data);
        let side = match r.u8() {
            Some(0) => Side::Client,
            Some(1) => Side::Server,
            _ => return Err(bad),
        };
        let suite = r.u16().and_then(CipherSuite::from_id).filter(|s| s.is_tls13()).ok_or(bad.clone())?;
        let secret_len = suite.hash.output_len();
        let read_epoch = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let read = r.vec8().filter(|s| s.len() == secret_len).map(Secret::from_bytes).ok_or(bad.clone())?;
        let top = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let bits = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let write_epoch = u64::from_be_bytes(r.take_array().ok_or(bad.clone())?);
        let write = r.vec8().filter(|s| s.len() == secret_len).map(Secret::from_bytes).ok_or(bad.clone())?;
        let write_seq = r.u48().ok_or(bad.clone())?;
        let next_send_seq = r.u16().ok_or(bad.clone())?;
        let peer_next_seq = r.u16().ok_or(bad.clone())?;
        let ticket = match with_ticket {
            true => Some((r.u16().ok_or(bad.clone())?, r.vec16().ok_or(bad.clone())?.to_vec())),
            false => None,
        };
        let identity = r.vec16().ok_or(bad.clone())?;
        let count = r.u16().ok_or(bad.clone())?;
        let mut peer_certs = Vec::with_capacity(usize::from(count.min(16)));
        for _ in 0..count {
            peer_certs.push(CertificateDer::from(r.vec24().ok_or(bad.clone())?.to_vec()));
        }
        let cids = match r.is_empty() || r.peek() == Some(SECTIONS) {
            true => None,
            false => Some((r.vec8().ok_or(bad.clone())?, r.vec8().ok_or(bad.clone())?)),
        };
        let first = crate::handshake::tls13::EPOCH_APPLICATION;
        let epochs = first..=tls13::MAX_EPOCH;
        if !epochs.contains(&read_epoch) || !epochs.contains(&write_epoch) {
            return Err(bad);
        }

        let provider = &*config.provider;
        let (read_keys, write_keys) = (epoch_keys(provider, suite, &read)?, epoch_keys(provider, suite, &write)?);
        let mut conn = Self::new(side, config, now)?;
        conn.set_established(0);
        conn.flight = None;
        conn.suite = Some(suite);
        conn.epochs.install(read_epoch, Some(read_keys), None);
        conn.epochs.set_window(read_epoch, ReplayWindow::from_parts(top, bits));
        conn.epochs.install(write_epoch, None, Some(write_keys));
        conn.epochs.set_write_epoch(write_epoch);
        conn.epochs.set_next_seq(write_epoch, write_seq);
        let mut t = Box::<tls13::State>::default();
        t.secrets = Some((read, write));
        t.peer_encrypts = true;
        t.next_send_seq = u32::from(next_send_seq);
        t.peer_next_seq = u32::from(peer_next_seq);
        t.read_epoch = read_epoch;
        conn.tls13 = Some(t);
        conn.psk_identity = (!identity.is_empty()).then(|| identity.into());
        if !peer_certs.is_empty() {
            conn.details_mut().peer_certs = peer_certs;
        }
        if let Some((own, peer)) = cids {
            // Ours, so at most MAX_CID_LEN bytes (a longer one was never exported by us).
            let own = crate::cid::OwnCid::new(own).ok_or(bad.clone())?;
            conn.cid = Some(cid::Cid::negotiated(own));
            conn.set_peer_cid(peer);
            conn.read_cid_extras(&mut r).ok_or(bad.clone())?;
        }
        conn.read_sections(&mut r).ok_or(bad.clone())?;
        r.finish().ok_or(bad)?;
        if let (Some((seq, body)), Some(t)) = (ticket, conn.tls13.as_deref_mut()) {
            // Sent again with its own sequence number: a client that had it acknowledges it
            // again, one that had not takes it.
            t.next_send_seq = u32::from(seq);
            conn.queue_ticket(now, body);
        }
        Ok(conn)
    }

    /// Appends the optional sections of an export: the SRTP profile, DTLS 1.3's exporter
    /// secret (DTLS 1.2's travels with the master secret), the application protocol. Nothing
    /// if there is none of them.
    fn write_sections(&self, out: &mut Vec<u8>) {
        use crate::codec::Put;
        let exporter13 = self.tls13.as_ref().and(self.details.as_ref()).and_then(|d| d.export_secret.as_deref());
        let (srtp, alpn) = (self.srtp_profile(), self.alpn_protocol());
        if srtp.is_none() && exporter13.is_none() && alpn.is_none() {
            return;
        }
        out.put_u8(SECTIONS);
        if let Some(profile) = srtp {
            out.put_u8(SECTION_SRTP);
            out.put_vec16(&profile.code_point().to_be_bytes());
        }
        if let Some(secret) = exporter13 {
            out.put_u8(SECTION_EXPORTER13);
            out.put_vec16(secret);
        }
        if let Some(protocol) = alpn {
            out.put_u8(SECTION_ALPN);
            out.put_vec16(protocol);
        }
    }

    /// Reads what [`write_sections`](Self::write_sections) wrote, if anything: each section
    /// once, in order. `None` if malformed, or for a section this version does not know (what
    /// it holds would be lost).
    fn read_sections(&mut self, r: &mut Reader<'_>) -> Option<()> {
        if r.peek() != Some(SECTIONS) {
            return Some(());
        }
        r.u8()?;
        // The marker comes only with a section after it.
        if r.is_empty() {
            return None;
        }
        let mut last = 0;
        while !r.is_empty() {
            let (tag, body) = (r.u8()?, r.vec16()?);
            if tag <= last {
                return None;
            }
            last = tag;
            match tag {
                SECTION_SRTP => {
                    let code = u16::from_be_bytes(body.try_into().ok()?);
                    self.details_mut().srtp = Some(crate::srtp::SrtpProfile::from_code_point(code)?);
                }
                SECTION_EXPORTER13 if self.tls13.is_some() => {
                    if body.len() != self.suite?.hash.output_len() {
                        return None;
                    }
                    // Kept to export from, or to pass on with a later export.
                    if self.keeps_exporter_secret() || self.config.session_export {
                        self.details_mut().export_secret = Some(zeroize::Zeroizing::new(body.to_vec()));
                    }
                }
                SECTION_ALPN if (1..=crate::alpn::MAX_PROTOCOL_LEN).contains(&body.len()) => {
                    self.details_mut().alpn = Some(body.to_vec());
                }
                _ => return None,
            }
        }
        Some(())
    }
}
