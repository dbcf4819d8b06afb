//! Input: datagrams from the peer, record by record: plaintext and protected records, alerts,
//! handshake fragments into reassembly, complete messages to the handshake.

use super::*;
use crate::record::{Header, UnifiedHeader};

/// What handling one record gives: the range of its application data, if any, or a fatal error.
type RecordResult = Result<Option<Range<usize>>, Error>;

impl Connection {
    /// Processes one datagram from the peer, decrypting it in place. Returns the application
    /// data it carried (Qt's `decryptDatagram`); handshake records advance the handshake (Qt's
    /// `doHandshake`). Invalid records are dropped silently.
    pub fn handle_datagram<'a>(&mut self, now: Instant, datagram: &'a mut [u8]) -> Result<Received<'a>, Error> {
        if self.is_closed() {
            return Err(self.last_error().cloned().unwrap_or(Error::InvalidOperation("the connection is closed")));
        }
        self.newest_before = self.epochs.newest_received();
        let mut ranges = [(0u32, 0u32); MAX_RECORDS_PER_DATAGRAM];
        let mut n = 0;
        let mut pos = 0;
        let mut records = 0;
        while records < self.config.max_records_per_datagram && !self.is_closed() && pos < datagram.len() {
            let Some((taken, result)) = self.handle_one(now, &mut datagram[pos..]) else {
                self.stats.dropped_malformed += 1;
                break;
            };
            records += 1;
            let at = pos;
            pos += taken;
            let result = result.and_then(|r| self.replay_early(now).map(|()| r));
            match result {
                Ok(Some(r)) => {
                    ranges[n] = ((at + r.start) as u32, (at + r.end) as u32);
                    n += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail(e.clone());
                    if n == 0 {
                        return Err(e);
                    }
                    // The application data before the error is delivered now; the error is
                    // returned by the next call.
                    break;
                }
            }
        }
        // DTLS 1.3: what came before the handshake's end, once it has ended.
        let established = self.is_established();
        let held = match &mut self.tls13 {
            Some(t) if established => t.take_held(),
            _ => Vec::new(),
        };
        Ok(Received { buf: datagram, ranges, len: n, held })
    }

    /// Handles the record at the front of `buf`, in any format. Returns the bytes it took and
    /// the range of its application data within `buf`; `None` if it cannot be framed (the
    /// rest of the datagram cannot be either).
    #[inline]
    fn handle_one(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, RecordResult)> {
        // The 13-byte header (every DTLS 1.2 record, and 1.3's plaintext ones): parsed once.
        let first = *buf.first()?;
        if first & 0b1110_0000 != 0b0010_0000 && first != ContentType::TLS12_CID.0 {
            let header = RecordHeader::parse(buf)?;
            let end = HEADER_LEN + usize::from(header.length);
            let result = self.handle_record(now, header, &mut buf[HEADER_LEN..end]);
            return Some((end, result.map(|r| r.map(|r| HEADER_LEN + r.start..HEADER_LEN + r.end))));
        }
        let total = buf.len();
        let (header, fragment, rest) = Header::split(buf, self.own_cid_len())?;
        let (fragment_len, rest_len) = (fragment.len(), rest.len());
        let start = total - rest_len - fragment_len;
        let result = match header {
            Header::Plain(h) => self.handle_record(now, h, fragment),
            Header::Unified(u) => self.handle_unified(now, &u, fragment),
            Header::Cid12 { header, cid } => self.handle_cid12(now, header, cid, fragment),
        };
        Some((total - rest_len, result.map(|r| r.map(|r| start + r.start..start + r.end))))
    }

    /// Keeps a record of an epoch we cannot read yet, during the handshake: the peer's
    /// next-epoch records may overtake the message that gives us their keys. Bounded.
    pub(super) fn keep_early(&mut self, header: Header<'_>, fragment: &[u8]) {
        let keep = self.hs.is_some() && fragment.len() <= MAX_EARLY_RECORD_LEN;
        match self.flight.as_deref_mut() {
            Some(fl) if keep && fl.early.len() < MAX_EARLY_RECORDS => {
                let mut raw = Vec::with_capacity(HEADER_LEN + fragment.len());
                header.write(fragment.len() as u16, &mut raw);
                raw.extend_from_slice(fragment);
                fl.early.push(raw);
            }
            _ => self.stats.dropped_epoch += 1,
        }
    }

    /// Counts a record that failed authentication under `epoch`'s keys; an error once the
    /// limit is reached, or once the keys evidently differ from the peer's.
    pub(super) fn auth_failed(&mut self, epoch: u64) -> Result<(), Error> {
        self.stats.dropped_bad_auth += 1;
        let handshaking = self.hs.is_some();
        let limit = self.config.max_failed_decryptions.unwrap_or_else(|| default_failed_decryption_limit(self.suite));
        let Some(reader) = self.epochs.reader(epoch) else { return Ok(()) };
        *reader.failures += 1;
        if *reader.failures >= limit {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::BAD_RECORD_MAC,
                reason: "too many records failed authentication under these keys",
            });
        }
        // During the handshake, before any record of the new epoch authenticated, repeated
        // failures mean the two sides derived different keys (most often a wrong pre-shared
        // key): fail now with a clear cause rather than time out. An attacker able to inject
        // these could as well spoof a fatal alert.
        if handshaking && reader.window.highest().is_none() && *reader.failures >= KEY_MISMATCH_FAILURES {
            return Err(Error::PeerMisbehaved {
                alert: AlertDescription::BAD_RECORD_MAC,
                reason: "the peer's encrypted records do not authenticate: the keys differ \
                         (wrong pre-shared key?)",
            });
        }
        Ok(())
    }

    /// Handles one record with the 13-byte header; returns the plaintext range of application
    /// data.
    fn handle_record(
        &mut self,
        now: Instant,
        header: RecordHeader,
        fragment: &mut [u8],
    ) -> Result<Option<Range<usize>>, Error> {
        if !header.version.is_dtls() {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        let epoch = u64::from(header.epoch);
        // RFC 9146 §4: with our connection ID negotiated, protected records carry it; one in
        // this format is malformed.
        let cid_required = self.cid_records_required;
        let plain = if header.epoch == 0 {
            0..fragment.len()
        } else {
            let Some(reader) = self.epochs.reader(epoch) else {
                if epoch == 1 && self.tls13.is_none() {
                    self.keep_early(Header::Plain(header), fragment);
                } else {
                    self.stats.dropped_epoch += 1;
                }
                return Ok(None);
            };
            if !reader.window.check(header.seq) {
                self.stats.dropped_replayed += 1;
                return Ok(None);
            }
            let (EpochKeys::Dtls12(keys), false) = (reader.keys, cid_required) else {
                self.stats.dropped_malformed += 1;
                return Ok(None);
            };
            let Ok(r) = keys.open(&header, fragment) else {
                self.auth_failed(epoch)?;
                return Ok(None);
            };
            reader.window.update(header.seq);
            r
        };
        self.dispatch(now, epoch, header.seq, header.content_type, fragment, plain)
    }

    /// Handles one DTLS 1.3 record with the unified header.
    fn handle_unified(
        &mut self,
        now: Instant,
        header: &UnifiedHeader<'_>,
        fragment: &mut [u8],
    ) -> Result<Option<Range<usize>>, Error> {
        // RFC 9147 §9: with our connection ID negotiated, the peer's records carry it (the C
        // bit), and only it (the length is ours, so any other value is a wrong ID).
        let cid_ok = match header.cid {
            Some(cid) => self.owns_cid(cid),
            None => !self.cid_records_required,
        };
        if !cid_ok {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        if self.tls13.is_none() {
            // A DTLS 1.3 client whose ServerHello is not whole yet (fragmented, its last piece
            // late) keeps what follows it for when the keys are there.
            if self.side == Side::Client && self.hs.is_some() && self.config.enables(Protocol::Dtls1_3) {
                self.keep_early(Header::Unified(*header), fragment);
            } else {
                self.stats.dropped_malformed += 1;
            }
            return Ok(None);
        }
        let Some(epoch) = self.epochs.read_epoch_with_bits(header.epoch_bits) else {
            self.keep_early(Header::Unified(*header), fragment);
            return Ok(None);
        };
        let Some(reader) = self.epochs.reader(epoch) else { return Ok(None) };
        let EpochKeys::Dtls13(keys) = reader.keys else {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        };
        // Too short to carry a mask sample, or replayed: dropped before any decryption.
        let Some(clear) = keys.unmask(header, fragment) else {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        };
        let seq = reader.window.reconstruct(u64::from(clear), if header.seq_16 { 16 } else { 8 });
        if !reader.window.check(seq) {
            self.stats.dropped_replayed += 1;
            return Ok(None);
        }
        // Unmasked once: the mask is a block cipher call.
        let Ok(opened) = keys.open_unmasked(header, clear, seq, fragment, reader.window) else {
            self.auth_failed(epoch)?;
            return Ok(None);
        };
        if let Some(t) = &mut self.tls13 {
            t.peer_encrypts = true;
            if let Some(before) = t.heard_in(now, epoch) {
                self.epochs.retire_reads(crate::handshake::tls13::EPOCH_APPLICATION..before);
            }
        }
        self.dispatch(now, epoch, opened.seq, opened.content_type, fragment, opened.plaintext)
    }

    /// Handles a record's content once it is authenticated (or plaintext, in epoch 0).
    pub(super) fn dispatch(
        &mut self,
        now: Instant,
        epoch: u64,
        seq: u64,
        content_type: ContentType,
        fragment: &mut [u8],
        plain: Range<usize>,
    ) -> Result<Option<Range<usize>>, Error> {
        if plain.len() > MAX_PLAINTEXT {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        let tls13 = self.tls13.is_some();
        if epoch == 0 && self.tls13.as_ref().is_some_and(|t| t.peer_encrypts) {
            // DTLS 1.3: once the peer encrypts, plaintext records can only be forged (or
            // stale): none is needed any more.
            self.stats.dropped_unexpected += 1;
            return Ok(None);
        }
        let body = &fragment[plain.clone()];
        match content_type {
            ContentType::HANDSHAKE => {
                if self.side == Side::Server && epoch == 0 {
                    if let Some(hs) = &self.hs {
                        if hs.machine.awaits_client_hello() {
                            // Continue the record sequence the stateless HelloVerifyRequest used.
                            self.epochs.raise_plain_seq(seq);
                        }
                    }
                }
                self.stats.records_accepted += 1;
                let Ok(epoch16) = u16::try_from(epoch) else {
                    self.stats.dropped_epoch += 1;
                    return Ok(None);
                };
                let flights = self.tls13.as_ref().map_or(0, |t| t.flights);
                let early = self.tls13.is_none();
                let was_established = self.is_established();
                let keep = self.handle_handshake_record(now, epoch16, body)?;
                // The record that completed the handshake (the peer's last flight, epoch 2) is
                // acknowledged at once: the peer waits for that ACK. Anything later (that flight
                // again, post-handshake messages) waits for the ACK timer, so that what comes
                // together takes one ACK. A record that completed the peer's flight and made us
                // start ours needs no ACK: our flight acknowledges it.
                let ack_at_once = !was_established && self.is_established() && epoch == 2;
                // RFC 9147 §7.1: a quarter of the current retransmission timeout.
                let rto = self.flight.as_deref().map_or(self.config.initial_retransmit, |fl| fl.rto);
                match (&mut self.tls13, &mut self.hs) {
                    // Our flight started by this record acknowledges it.
                    // One that told us the version is named by the next ACK, which only an
                    // encrypted record calls for (as those before it, below).
                    (Some(t), _) if keep && t.flights == flights && early => t.note(epoch, seq),
                    (Some(t), _) if keep && t.flights == flights => {
                        t.received(now, epoch, seq, rto, ack_at_once);
                    }
                    // A client that does not know the version yet: DTLS 1.3 acknowledges these
                    // too (the ACK that follows names them, in a later epoch).
                    (None, Some(hs)) if keep && early && self.side == Side::Client && hs.early_records.len() < 8 => {
                        hs.early_records.push(seq);
                    }
                    _ => {}
                }
                Ok(None)
            }
            ContentType::CHANGE_CIPHER_SPEC if !tls13 => {
                if epoch != 0 || body != [1] {
                    self.stats.dropped_malformed += 1;
                    return Ok(None);
                }
                let Some(hs) = &mut self.hs else {
                    self.stats.dropped_unexpected += 1;
                    return Ok(None);
                };
                self.stats.records_accepted += 1;
                hs.machine.handle_change_cipher_spec();
                self.process_messages(now)?;
                Ok(None)
            }
            ContentType::ACK if tls13 => {
                self.handle_ack(now, epoch, body)?;
                Ok(None)
            }
            ContentType::ALERT => self.handle_alert(epoch, body).map(|()| None),
            ContentType::RETURN_ROUTABILITY_CHECK => {
                self.handle_rrc(epoch, body);
                Ok(None)
            }
            ContentType::APPLICATION_DATA => {
                let first_epoch = if tls13 { crate::handshake::tls13::EPOCH_APPLICATION } else { 1 };
                if epoch < first_epoch {
                    self.stats.dropped_unexpected += 1;
                    return Ok(None);
                }
                if !self.is_established() {
                    // A DTLS 1.3 server reads the client's application keys once its own
                    // Finished is out, and the client sends as soon as its Finished is: data
                    // that overtook that Finished (or outlived its loss) waits for it, bounded.
                    let held = self.side == Side::Server
                        && self.hs.is_some()
                        && self.tls13.as_mut().is_some_and(|t| t.hold(body));
                    if !held {
                        self.stats.dropped_unexpected += 1;
                    }
                    return Ok(None);
                }
                self.stats.records_accepted += 1;
                if self.flight.as_ref().is_some_and(|f| !f.awaits_ack) {
                    // The peer has our Finished: the final flight we held is no longer needed.
                    self.flight = None;
                }
                Ok(Some(plain))
            }
            _ => {
                self.stats.dropped_malformed += 1;
                Ok(None)
            }
        }
    }

    fn handle_alert(&mut self, epoch: u64, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
        let (Some(level), Some(desc), Some(())) = (r.u8(), r.u8(), r.finish()) else {
            self.stats.dropped_malformed += 1;
            return Ok(());
        };
        // Once keys are in use, unauthenticated alerts could be forged by anyone: ignore them.
        if epoch == 0 && self.is_established() {
            self.stats.dropped_unexpected += 1;
            return Ok(());
        }
        self.stats.records_accepted += 1;
        let desc = AlertDescription(desc);
        if desc == AlertDescription::CLOSE_NOTIFY {
            // Answer with our own close_notify, then close (RFC 5246 §7.2.1).
            self.alert = Some((AlertLevel::WARNING, AlertDescription::CLOSE_NOTIFY));
            self.flight = None;
            return Err(Error::RemoteClosed);
        }
        if AlertLevel(level) == AlertLevel::FATAL {
            return Err(Error::AlertReceived(desc));
        }
        self.events.push_back(Event::WarningAlert(desc));
        Ok(())
    }

    /// Handles a handshake record's fragments. Returns whether the record may be acknowledged
    /// (DTLS 1.3): something of it was processed, buffered or already had.
    fn handle_handshake_record(&mut self, now: Instant, epoch: u16, body: &[u8]) -> Result<bool, Error> {
        let mut r = Reader::new(body);
        if self.hs.is_none() && self.tls13.is_some() {
            return self.handle_post_handshake(now, epoch, body);
        }
        let Some(hs) = &mut self.hs else {
            // The handshake is over: the peer may be retransmitting its last flight because our
            // final flight was lost, or trying to renegotiate, which we refuse.
            while let Some((h, _)) = HandshakeHeader::parse(&mut r) {
                let renegotiation = match self.side {
                    Side::Server => h.msg_type == HandshakeType::CLIENT_HELLO,
                    Side::Client => h.msg_type == HandshakeType::HELLO_REQUEST,
                };
                if renegotiation {
                    if epoch == 1 {
                        self.alert = Some((AlertLevel::WARNING, AlertDescription::NO_RENEGOTIATION));
                    } else {
                        self.stats.dropped_unexpected += 1;
                    }
                    break;
                }
                // Only an authenticated record of the peer's last flight (its Finished, which
                // every retransmission of that flight carries) proves our final flight was
                // lost: epoch-0 look-alikes can be forged by anyone, and each would draw our
                // whole final flight to the peer's address.
                let trigger = self.flight.as_ref().and_then(|f| f.final_trigger.as_ref());
                if epoch != 0 && trigger.is_some_and(|t| t.contains(&h.message_seq)) {
                    self.answer_retransmission(now);
                    break;
                }
                let last = self.peer_last_seq();
                if epoch != 0 && last != 0 && h.message_seq > last {
                    // Authenticated, and new: the peer sends a message after its Finished.
                    return Err(Error::unexpected("handshake message after the peer's Finished"));
                }
                self.stats.dropped_unexpected += 1;
            }
            return Ok(false);
        };
        let mut peer_retransmits = false;
        let mut kept = false;
        let mut dropped = false;
        let mut progressed = false;
        while !r.is_empty() {
            let Some((h, frag)) = HandshakeHeader::parse(&mut r) else {
                self.stats.dropped_malformed += 1;
                break;
            };
            if self.side == Side::Server
                && hs.machine.awaits_client_hello()
                && h.msg_type == HandshakeType::CLIENT_HELLO
            {
                // The first ClientHello we see sets the sequence: 0, or one more after each
                // HelloVerifyRequest the client followed.
                if h.message_seq <= crate::handshake::MAX_CLIENT_HELLO_SEQ
                    && hs.reasm.buffered_bytes() == 0
                    && epoch == 0
                {
                    hs.reasm.set_next_seq(h.message_seq);
                }
            }
            match hs.reasm.insert(epoch, &h, frag) {
                Inserted::Buffered => (kept, progressed) = (true, true),
                Inserted::Duplicate => kept = true,
                Inserted::Dropped => {
                    self.stats.dropped_fragments += 1;
                    dropped = true;
                }
                Inserted::Old => {
                    kept = true;
                    // The peer repeats its last flight: ours was lost. Later messages of this
                    // record are still read (a peer may repack its flight).
                    peer_retransmits |=
                        hs.peer_flight_start.is_some_and(|s| h.message_seq >= s) && h.fragment_offset == 0;
                }
            }
        }
        if peer_retransmits {
            self.answer_retransmission(now);
        }
        // DTLS 1.3: part of the peer's next flight acknowledges ours implicitly (RFC 9147 §7):
        // it is not sent again; the peer resends its own if it must. A client takes only an
        // encrypted part as such: a plaintext one may be a DTLS 1.2 server's, which never
        // acknowledges, and whose flight needs our ClientHello again if it was lost.
        if progressed && self.tls13.is_some() && (self.side == Side::Server || epoch > 0) {
            if let Some(fl) = self.flight.as_deref_mut().filter(|fl| fl.awaits_reply) {
                fl.retransmit_at = None;
                fl.cursor = None;
            }
        }
        self.process_messages(now)?;
        // RFC 9147 §7: a record with a fragment we discarded is not acknowledged (the peer
        // sends it all again).
        Ok(kept && !dropped)
    }

    /// Reads the next-epoch records kept while we had no keys, once we have them.
    fn replay_early(&mut self, now: Instant) -> Result<(), Error> {
        let Some(fl) = self.flight.as_deref_mut() else {
            return Ok(());
        };
        if fl.early.is_empty() {
            return Ok(());
        }
        let early = core::mem::take(&mut fl.early);
        let mut kept = Vec::new();
        for mut raw in early {
            let readable = match Header::parse(&raw, self.own_cid_len()) {
                Some((Header::Plain(h) | Header::Cid12 { header: h, .. }, _, _)) => {
                    self.epochs.can_read(u64::from(h.epoch))
                }
                Some((Header::Unified(u), _, _)) => self.epochs.read_epoch_with_bits(u.epoch_bits).is_some(),
                _ => false,
            };
            if !readable {
                kept.push(raw);
                continue;
            }
            // Handled as if it had just arrived; application data (DTLS 1.3 only: it cannot
            // precede the handshake's end in 1.2) joins what the server holds for delivery.
            if let Some((_, r)) = self.handle_one(now, &mut raw) {
                if let (Some(range), Some(t)) = (r?, &mut self.tls13) {
                    if !t.hold(&raw[range]) {
                        self.stats.dropped_unexpected += 1;
                    }
                }
            }
        }
        if let Some(fl) = self.flight.as_deref_mut() {
            kept.append(&mut fl.early);
            fl.early = kept;
        }
        Ok(())
    }
}

/// The default number of records failing authentication after which a DTLS 1.2 connection
/// closes. DTLS 1.2 has no key update, so reaching the limit ends the connection, and anyone who
/// knows its addresses can send forged records: the limit weighs forgery against that denial
/// of service. AES-GCM and ChaCha20-Poly1305 use RFC 9147 §4.5.3's 2^36, and AES-CCM its 2^23.
/// For AES-CCM-8, RFC 9147 sets no limit that does both (its 64-bit tag gives a forger one
/// chance in 2^64 per record) and leaves the choice to the implementation: we take 2^23 too, so
/// closing a connection costs an off-path attacker about 8 million forged records (some
/// 300 MB), and its chance of one forgery before that stays below 2^-41.
pub(crate) fn default_failed_decryption_limit(suite: Option<&CipherSuite>) -> u64 {
    use crate::crypto::AeadAlgorithm as A;
    match suite.map(|s| s.aead) {
        Some(A::Aes128Ccm | A::Aes128Ccm8) => 1 << 23,
        _ => 1 << 36,
    }
}
