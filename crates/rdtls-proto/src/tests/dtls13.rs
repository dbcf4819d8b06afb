//! DTLS 1.3 state-machine tests that forge records a well-behaved peer never sends
//! (post-handshake messages out of the rules, records with discarded fragments), with the
//! helpers of the DTLS 1.2 ones.

use super::*;

/// An established DTLS 1.3 PSK pair (no tickets, no cookie).
fn established13(now: Instant) -> (Connection, Connection) {
    let (mut c, mut s) = pair13(now);
    exchange(&mut c, &mut s, now, 4);
    assert!(c.is_established() && s.is_established());
    (c, s)
}

/// Found by BoGo (`KeyUpdate-WriteMessageOverflow-DTLS`, `KeyUpdate-ReadMessageOverflow-DTLS`):
/// DTLS 1.3 post-handshake messages numbered past 0xffff wrapped to 0. Now the last number is
/// used once: a KeyUpdate after it is refused, and a receiver that took message 0xffff takes
/// no message 0 as new (it acknowledges it as old).
#[test]
fn dtls13_handshake_message_numbers_never_wrap() {
    let now = Instant::now();
    let v13 = || Config::builder().protocol_versions(crate::Protocol::Dtls1_3, crate::Protocol::Dtls1_3);
    let c = v13().psk("sm", KEY.to_vec()).allow_session_export(true).build().unwrap();
    let s = v13().psk_server_key(KEY.to_vec()).cookie_verification(false).session_tickets(false).build().unwrap();
    let (mut c, mut s) = (Connection::client(Arc::new(c), now).unwrap(), Connection::server(Arc::new(s), now).unwrap());
    exchange(&mut c, &mut s, now, 4);
    assert!(c.is_established() && s.is_established());
    // The client's next message is the last one: 0xffff (and the server expects it).
    c.tls13.as_deref_mut().unwrap().next_send_seq = 0xffff;
    s.tls13.as_deref_mut().unwrap().peer_next_seq = 0xffff;
    c.update_keys(now, false).unwrap();
    exchange(&mut c, &mut s, now, 1);
    // The server acknowledges it on its ACK timer.
    let now = now + Duration::from_millis(300);
    s.handle_timeout(now).unwrap();
    let ack = drain(&mut s);
    deliver(&mut c, now, &ack).unwrap();
    assert_eq!((c.stats().key_updates_sent, s.stats().key_updates_received), (1, 1));
    // None is left.
    let err = c.update_keys(now, false).unwrap_err();
    assert!(matches!(err, Error::InvalidOperation(m) if m.contains("no handshake message number")), "{err:?}");
    let export = c.export_session().unwrap_err();
    assert!(matches!(export, Error::InvalidOperation(m) if m.contains("spent")), "{export:?}");
    // A KeyUpdate numbered 0 is old to the server now: acknowledged, not applied.
    let epoch = c.epochs.write_epoch() as u16;
    let forged = forge_handshake(&mut c, epoch, HandshakeType::KEY_UPDATE, 0, &[0]);
    let before = s.stats().key_updates_received;
    s.handle_datagram(now, &mut forged.clone()).unwrap();
    assert_eq!(s.stats().key_updates_received, before);
    assert!(!s.is_closed());
    // Data still flows both ways.
    let mut out = Vec::new();
    c.send(b"after the last number", &mut out).unwrap();
    assert_eq!(
        s.handle_datagram(now, &mut out).unwrap().iter().next().map(<[u8]>::to_vec),
        Some(b"after the last number".to_vec())
    );
}

/// Found by BoGo (`KeyUpdate-ExtraMessage-DTLS`, `KeyUpdate-*EpochOverflow-DTLS`): a KeyUpdate
/// is the last handshake message of its record (RFC 8446 §5.1), and epochs stop at 0xffff.
#[test]
fn key_updates_end_their_record_and_stop_at_the_last_epoch() {
    let now = Instant::now();
    let (mut c, mut s) = established13(now);
    let next = u16::try_from(s.tls13.as_deref().unwrap().peer_next_seq).unwrap();
    let mut msgs = Vec::new();
    write_message(&mut msgs, HandshakeType::KEY_UPDATE, next, &[0]);
    write_message(&mut msgs, HandshakeType::KEY_UPDATE, next + 1, &[0]);
    let mut record = Vec::new();
    let epoch = c.epochs.write_epoch();
    let _ = c.write_record(ContentType::HANDSHAKE, epoch, &msgs, &mut record);
    let err = s.handle_datagram(now, &mut record).unwrap_err();
    assert!(matches!(err, Error::PeerMisbehaved { alert: AlertDescription::UNEXPECTED_MESSAGE, .. }), "{err}");
    // The peer asks for an update where ours would pass 0xffff: the request is ignored.
    let (mut c2, mut s2) = established13(now);
    s2.epochs.set_write_epoch(0xffff);
    let next = u16::try_from(s2.tls13.as_deref().unwrap().peer_next_seq).unwrap();
    let epoch = c2.epochs.write_epoch() as u16;
    let request = forge_handshake(&mut c2, epoch, HandshakeType::KEY_UPDATE, next, &[1]);
    s2.handle_datagram(now, &mut request.clone()).unwrap();
    assert_eq!(s2.stats().key_updates_received, 1);
    assert!(!s2.tls13.as_deref().unwrap().key_update_busy(), "no KeyUpdate of ours queued or sent");
    // Our own: none that would take the write epoch past 0xffff.
    c.epochs.set_write_epoch(0xffff);
    let err = c.update_keys(now, false).unwrap_err();
    assert!(matches!(err, Error::InvalidOperation(m) if m.contains("too many KeyUpdates")), "{err:?}");
}

/// Found by BoGo (`DTLS-Retransmit-Server-DoNotACKDiscardedFragments-TLS13`): a record that
/// carries a fragment we discarded (here one far ahead of the window) is not acknowledged,
/// even when the rest of it was used (RFC 9147 §7): the peer sends it all again, and that
/// record is acknowledged.
#[test]
fn a_record_with_a_discarded_fragment_is_not_acknowledged() {
    let now = Instant::now();
    let (mut c, mut s) = established13(now);
    let next = u16::try_from(s.tls13.as_deref().unwrap().peer_next_seq).unwrap();
    let epoch = c.epochs.write_epoch();
    let record = |msgs: &[(u16, &[u8])], c: &mut Connection| {
        let mut body = Vec::new();
        for (seq, b) in msgs {
            write_message(&mut body, HandshakeType::KEY_UPDATE, *seq, b);
        }
        let mut out = Vec::new();
        let _ = c.write_record(ContentType::HANDSHAKE, epoch, &body, &mut out);
        out
    };
    let mixed = record(&[(next + 1000, &[0]), (next, &[0])], &mut c);
    s.handle_datagram(now, &mut mixed.clone()).unwrap();
    assert_eq!(s.stats().key_updates_received, 1, "the KeyUpdate was used");
    let later = now + Duration::from_secs(1);
    s.handle_timeout(later).unwrap();
    assert!(drain(&mut s).is_empty(), "no ACK for that record");
    // The KeyUpdate again, alone: acknowledged.
    let again = record(&[(next, &[0])], &mut c);
    s.handle_datagram(later, &mut again.clone()).unwrap();
    s.handle_timeout(later + Duration::from_secs(1)).unwrap();
    assert_eq!(drain(&mut s).len(), 1, "an ACK");
}

/// Found by BoGo (`KeyUpdate-ToClient-PacketLoss-DTLS`): the peer's previous epoch was read
/// until its next KeyUpdate. Now it is read while the peer may still write in it (until a
/// record of its new epoch authenticates: our ACK of its KeyUpdate may be lost, however long),
/// then for 240 s more (records reordered across the change), then its keys go.
#[test]
fn the_peers_previous_epoch_is_read_for_a_while_then_forgotten() {
    let now = Instant::now();
    let (mut c, mut s) = established13(now);
    let old = c.epochs.write_epoch();
    c.update_keys(now, false).unwrap();
    exchange(&mut c, &mut s, now, 1);
    assert_eq!(s.stats().key_updates_received, 1);
    let old_record = |c: &mut Connection, data: &[u8]| {
        let mut out = Vec::new();
        let _ = c.write_record(ContentType::APPLICATION_DATA, old, data, &mut out);
        out
    };
    let read = |s: &mut Connection, at: Instant, mut datagram: Vec<u8>| {
        s.handle_datagram(at, &mut datagram).unwrap().iter().next().map(<[u8]>::to_vec)
    };
    // Our ACK is lost for a long time: the client still writes in the old epoch, and is read.
    let late = now + Duration::from_secs(1000);
    s.handle_timeout(late).unwrap();
    let ack = drain(&mut s);
    assert_eq!(ack.len(), 1, "the ACK of the KeyUpdate");
    assert_eq!(read(&mut s, late, old_record(&mut c, b"still old")), Some(b"still old".to_vec()));
    assert!(s.epochs.can_read(old));
    // The server's state cannot be exported meanwhile: an importer would not read the old
    // epoch the client still writes in.
    let export = s.export_session();
    assert!(matches!(export, Err(Error::InvalidOperation(m)) if m.contains("KeyUpdate")), "{export:?}");
    // Two more records of the old epoch, held back: they arrive late, across the change.
    let (reordered, too_late) = (old_record(&mut c, b"reordered"), old_record(&mut c, b"too late"));
    // The ACK arrives: the client writes in the new epoch from now on, and its old write keys
    // go (nothing of its own is left to send there).
    deliver(&mut c, late, &ack).unwrap();
    assert_eq!(c.epochs.write_epoch(), old + 1);
    assert!(c.epochs.write_keys(old).is_none() && c.epochs.write_keys(old + 1).is_some());
    let mut new = Vec::new();
    c.send(b"new epoch", &mut new).unwrap();
    assert_eq!(read(&mut s, late, new), Some(b"new epoch".to_vec()));
    // A record reordered across the change still arrives, for 240 s.
    let expiry = late + Duration::from_secs(240);
    assert_eq!(s.poll_timeout(), Some(expiry));
    let before = expiry - Duration::from_millis(1);
    s.handle_timeout(before).unwrap();
    assert_eq!(read(&mut s, before, reordered), Some(b"reordered".to_vec()));
    // Then the old keys are gone: the same record is discarded, silently.
    s.handle_timeout(expiry).unwrap();
    assert!(!s.epochs.can_read(old));
    let dropped = s.stats().dropped_epoch;
    assert_eq!(read(&mut s, expiry, too_late), None);
    assert_eq!(s.stats().dropped_epoch, dropped + 1);
    assert!(!s.is_closed());
    assert_eq!(s.poll_timeout(), None, "no timer left");
    // The server still writes in the old epoch (it never updated its own keys), and the new
    // one reads on.
    assert_eq!(s.epochs.write_epoch(), old);
    let mut out = Vec::new();
    s.send(b"reply", &mut out).unwrap();
    assert_eq!(read(&mut c, expiry, out), Some(b"reply".to_vec()));
    let mut new = Vec::new();
    c.send(b"and on", &mut new).unwrap();
    assert_eq!(read(&mut s, expiry, new), Some(b"and on".to_vec()));
}

/// The peer updates its keys twice within the lifetime of its previous epoch: the epoch before
/// that goes at once when the newest is first heard, and a timer that fires while the peer may
/// still write in the previous epoch (our ACK of its second KeyUpdate lost) spares that one.
#[test]
fn a_second_key_update_keeps_only_the_epoch_the_peer_may_still_use() {
    // Runs one KeyUpdate of the client's to the server at `at`; `ack` delivers the server's
    // ACK (the client then writes in the new epoch) and a record in it.
    let update = |c: &mut Connection, s: &mut Connection, at: Instant, ack: bool| {
        c.update_keys(at, false).unwrap();
        exchange(c, s, at, 1);
        let acked = at + Duration::from_secs(1);
        s.handle_timeout(acked).unwrap();
        let datagrams = drain(s);
        if ack {
            deliver(c, acked, &datagrams).unwrap();
            let mut out = Vec::new();
            c.send(b"new epoch", &mut out).unwrap();
            assert_eq!(s.handle_datagram(acked, &mut out).unwrap().iter().count(), 1);
        }
    };
    for second_acked in [true, false] {
        let start = Instant::now();
        let (mut c, mut s) = established13(start);
        // Past the handshake's own timers (the server's handshake keys go after a while).
        let now = start + Duration::from_secs(300);
        s.handle_timeout(now).unwrap();
        c.handle_timeout(now).unwrap();
        assert_eq!(s.poll_timeout(), None);
        let first = c.epochs.write_epoch();
        update(&mut c, &mut s, now, true);
        assert!(s.epochs.can_read(first), "the previous epoch is kept for now");
        let later = now + Duration::from_secs(10);
        update(&mut c, &mut s, later, second_acked);
        if second_acked {
            // The newest epoch was heard while the first one's timer ran: the first goes now.
            assert!(!s.epochs.can_read(first) && s.epochs.can_read(first + 1) && s.epochs.can_read(first + 2));
            let expiry = later + Duration::from_secs(1) + Duration::from_secs(240);
            assert_eq!(s.poll_timeout(), Some(expiry));
            s.handle_timeout(expiry).unwrap();
            assert!(!s.epochs.can_read(first + 1) && s.epochs.can_read(first + 2));
        } else {
            // The first epoch's timer fires while the client still writes in the second one.
            let expiry = now + Duration::from_secs(1) + Duration::from_secs(240);
            assert_eq!(s.poll_timeout(), Some(expiry));
            s.handle_timeout(expiry).unwrap();
            assert!(!s.epochs.can_read(first) && s.epochs.can_read(first + 1) && s.epochs.can_read(first + 2));
            assert_eq!(s.poll_timeout(), None, "the second epoch waits for the third to be heard");
        }
    }
}

/// An exported DTLS 1.3 session names its epochs in 64 bits; the importer takes none past
/// 0xffff, where KeyUpdates stop (an epoch near 2^64 would overflow the next one's number).
#[test]
fn an_imported_session_with_an_epoch_past_0xffff_is_refused() {
    let now = Instant::now();
    let (mut c, mut s) = established13(now);
    // The server's acknowledgement of the client's Finished, so nothing awaits one.
    let later = now + Duration::from_secs(1);
    s.handle_timeout(later).unwrap();
    deliver(&mut c, later, &drain(&mut s)).unwrap();
    let config = c.config().clone();
    let exported = c.export_session().unwrap();
    assert!(Connection::import_session(config.clone(), &exported, later).is_ok());
    // After the magic (8 bytes), the side (1) and the suite (2): the read epoch, 8 bytes.
    for epoch in [0x1_0000u64, u64::MAX] {
        let mut forged = exported.to_vec();
        forged[11..19].copy_from_slice(&epoch.to_be_bytes());
        let err = Connection::import_session(config.clone(), &forged, later).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
}
