//! Input: datagrams from the peer, record by record: plaintext and protected records, alerts,
//! handshake fragments into reassembly, complete messages to the handshake.

use super::*;

impl Connection {
    /// Processes one datagram from the peer, decrypting it in place. Returns the application
    /// data it carried (Qt's `decryptDatagram`); handshake records advance the handshake (Qt's
    /// `doHandshake`). Invalid records are dropped silently.
    pub fn handle_datagram<'a>(&mut self, now: Instant, datagram: &'a mut [u8]) -> Result<Received<'a>, Error> {
        if self.is_closed() {
            return Err(self.last_error().cloned().unwrap_or(Error::InvalidOperation("the connection is closed")));
        }
        let mut ranges = [(0u32, 0u32); MAX_RECORDS_PER_DATAGRAM];
        let mut n = 0;
        let mut pos = 0;
        let mut records = 0;
        while records < self.config.max_records_per_datagram && !self.is_closed() {
            let Some(header) = datagram.get(pos..).and_then(RecordHeader::parse) else {
                if pos < datagram.len() {
                    self.stats.dropped_malformed += 1;
                }
                break;
            };
            records += 1;
            let start = pos + HEADER_LEN;
            let end = start + usize::from(header.length);
            pos = end;
            let result = self.handle_record(now, header, &mut datagram[start..end]);
            let result = result.and_then(|r| self.replay_early(now).map(|()| r));
            match result {
                Ok(Some(r)) => {
                    ranges[n] = ((start + r.start) as u32, (start + r.end) as u32);
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
        Ok(Received { buf: datagram, ranges, len: n })
    }

    /// Handles one record; returns the plaintext range of application data.
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
        let plain = if header.epoch == 0 {
            0..fragment.len()
        } else {
            let epoch = u64::from(header.epoch);
            let handshaking = self.hs.is_some();
            let Some(reader) = self.epochs.reader(epoch) else {
                // The peer's next-epoch records (its Finished) overtook the message that gives
                // us the keys: keep a few, bounded, and read them once we have keys.
                let keep = epoch == 1 && handshaking && fragment.len() <= MAX_EARLY_RECORD_LEN;
                match self.flight.as_deref_mut() {
                    Some(fl) if keep && fl.early.len() < MAX_EARLY_RECORDS => {
                        fl.early.push((header, fragment.to_vec()));
                    }
                    _ => self.stats.dropped_epoch += 1,
                }
                return Ok(None);
            };
            if !reader.window.check(header.seq) {
                self.stats.dropped_replayed += 1;
                return Ok(None);
            }
            let Ok(r) = reader.keys.open(&header, fragment) else {
                self.stats.dropped_bad_auth += 1;
                *reader.failures += 1;
                let limit =
                    self.config.max_failed_decryptions.unwrap_or_else(|| default_failed_decryption_limit(self.suite));
                if *reader.failures >= limit {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::BAD_RECORD_MAC,
                        reason: "too many records failed authentication under these keys",
                    });
                }
                // During the handshake, before any record of the new epoch authenticated,
                // repeated failures mean the two sides derived different keys (most often a
                // wrong pre-shared key): fail now with a clear cause rather than time out. An
                // attacker able to inject these could as well spoof a fatal alert.
                if handshaking && reader.window.highest().is_none() && *reader.failures >= KEY_MISMATCH_FAILURES {
                    return Err(Error::PeerMisbehaved {
                        alert: AlertDescription::BAD_RECORD_MAC,
                        reason: "the peer's encrypted records do not authenticate: the keys differ \
                                 (wrong pre-shared key?)",
                    });
                }
                return Ok(None);
            };
            reader.window.update(header.seq);
            r
        };
        if plain.len() > MAX_PLAINTEXT {
            self.stats.dropped_malformed += 1;
            return Ok(None);
        }
        let body = &fragment[plain.clone()];
        match header.content_type {
            ContentType::HANDSHAKE => {
                if self.side == Side::Server && header.epoch == 0 {
                    if let Some(hs) = &self.hs {
                        if hs.machine.awaits_client_hello() {
                            // Continue the record sequence the stateless HelloVerifyRequest used.
                            self.epochs.raise_plain_seq(header.seq);
                        }
                    }
                }
                self.stats.records_accepted += 1;
                self.handle_handshake_record(now, header.epoch, body)?;
                Ok(None)
            }
            ContentType::CHANGE_CIPHER_SPEC => {
                if header.epoch != 0 || body != [1] {
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
            ContentType::ALERT => self.handle_alert(header.epoch, body).map(|()| None),
            ContentType::APPLICATION_DATA => {
                if header.epoch == 0 || !self.is_established() {
                    self.stats.dropped_unexpected += 1;
                    return Ok(None);
                }
                self.stats.records_accepted += 1;
                if self.flight.is_some() {
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

    fn handle_alert(&mut self, epoch: u16, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
        let (Some(level), Some(desc), Some(())) = (r.u8(), r.u8(), r.finish()) else {
            self.stats.dropped_malformed += 1;
            return Ok(());
        };
        // Once keys are in use, unauthenticated alerts could be forged by anyone: ignore them.
        if epoch == 0 && self.epochs.can_read(1) && self.is_established() {
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

    fn handle_handshake_record(&mut self, now: Instant, epoch: u16, body: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(body);
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
                self.stats.dropped_unexpected += 1;
            }
            return Ok(());
        };
        let mut peer_retransmits = false;
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
                if h.message_seq <= crate::cookie::MAX_CLIENT_HELLO_SEQ && hs.reasm.buffered_bytes() == 0 && epoch == 0
                {
                    hs.reasm.set_next_seq(h.message_seq);
                }
            }
            match hs.reasm.insert(epoch, &h, frag) {
                Inserted::Buffered | Inserted::Duplicate => {}
                Inserted::Dropped => self.stats.dropped_fragments += 1,
                Inserted::Old => {
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
        self.process_messages(now)
    }

    /// Reads the next-epoch records kept while we had no keys, now that we have them.
    fn replay_early(&mut self, now: Instant) -> Result<(), Error> {
        let Some(fl) = self.flight.as_deref_mut() else {
            return Ok(());
        };
        if !self.epochs.can_read(1) || fl.early.is_empty() {
            return Ok(());
        }
        for (header, mut fragment) in core::mem::take(&mut fl.early) {
            // Application data cannot precede the handshake's end; anything else is handled
            // as if it had just arrived.
            let _ = self.handle_record(now, header, &mut fragment)?;
        }
        Ok(())
    }
}
