//! Unit tests of the session encoding, the server's cache and ticket sealing.

use super::*;
use crate::crypto::default_provider;

fn session(created: u64) -> Session {
    Session {
        protocol: Protocol::Dtls1_2,
        suite: 0xc02b,
        extended_master_secret: true,
        secret: Zeroizing::new(vec![0x42; 48]),
        created,
        lifetime: 3600,
        server_name: Some("example.com".into()),
        context: b"ctx".to_vec(),
        psk_identity: Some(b"id".to_vec()),
        peer_certs: vec![CertificateDer::from(vec![1, 2, 3])],
        session_id: vec![5; 32],
        ticket: vec![6; 100],
        age_add: 0x0102_0304,
    }
}

#[test]
fn sessions_round_trip_and_refuse_damage() {
    let s = session(1_000);
    let bytes = s.to_bytes();
    assert_eq!(Session::from_bytes(&bytes), Some(s.clone()));
    // Every truncation is refused, as is anything after the end.
    for n in 0..bytes.len() {
        assert_eq!(Session::from_bytes(&bytes[..n]), None, "{n}");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(Session::from_bytes(&longer), None);
    // Validity: from its creation (a minute of clock skew allowed) to its expiry.
    assert!(s.is_valid_at(1_000) && s.is_valid_at(4_599) && !s.is_valid_at(4_600));
    assert!(s.is_valid_at(950) && !s.is_valid_at(900));
    // Secrets never reach Debug.
    assert!(!format!("{s:?}").contains("42, 42"));
}

#[test]
fn sessions_that_do_not_fit_their_encoding_are_refused() {
    // A name of more than 255 bytes would overflow its length byte and shift every field
    // after it: such a session is never made (the handshakes keep only sessions that fit).
    let mut long = session(0);
    long.server_name = Some("a".repeat(256));
    assert!(!long.fits());
    long.server_name = Some("a".repeat(255));
    assert!(long.fits());
    assert_eq!(Session::from_bytes(&long.to_bytes()), Some(long.clone()));
    for broken in [
        Session { server_name: Some(String::new()), ..session(0) },
        Session { context: vec![0; 33], ..session(0) },
        Session { secret: Zeroizing::new(Vec::new()), ..session(0) },
        Session { psk_identity: Some(vec![0; crate::MAX_PSK_IDENTITY_LEN + 1]), ..session(0) },
        Session { session_id: vec![0; 33], ..session(0) },
        Session { peer_certs: vec![CertificateDer::from(vec![1]); 11], ..session(0) },
    ] {
        assert!(!broken.fits(), "{broken:?}");
    }
}

#[test]
fn the_cache_evicts_the_least_recently_used_and_drops_expired_sessions() {
    let cache = SessionCache::new(2);
    cache.insert([1; 32], session(0));
    cache.insert([2; 32], session(0));
    assert!(cache.get(&[1; 32], 10).is_some()); // 1 is now the most recent
    cache.insert([3; 32], session(0)); // evicts 2
    assert!(cache.get(&[2; 32], 10).is_none());
    assert!(cache.get(&[1; 32], 10).is_some() && cache.get(&[3; 32], 10).is_some());
    assert_eq!(cache.len(), 2);
    // Expired: not returned, and gone.
    assert!(cache.get(&[1; 32], 3_600).is_none());
    assert_eq!(cache.len(), 1);
    // IDs of other lengths are never found.
    assert!(cache.get(&[3; 16], 10).is_none());
    let off = SessionCache::new(0);
    off.insert([1; 32], session(0));
    assert!(off.is_empty());
}

#[test]
fn tickets_open_in_their_period_and_the_next_only() {
    let provider = default_provider();
    let keys = TicketKeys::from_secret(&*provider, &[9; 32], Duration::from_secs(100)).unwrap();
    let plain = session(0).to_bytes();
    let ticket = keys.seal(&*provider, 250, &plain).unwrap();
    assert_eq!(ticket[..8], 2u64.to_be_bytes());
    assert_eq!(keys.open(&*provider, 299, &ticket).as_ref().map(|p| &p[..]), Some(&plain[..]));
    assert_eq!(keys.open(&*provider, 399, &ticket).as_ref().map(|p| &p[..]), Some(&plain[..]));
    assert!(keys.open(&*provider, 400, &ticket).is_none());
    assert!(keys.open(&*provider, 199, &ticket).is_none());
    // Any change is refused: the period, the nonce, the body, the tag.
    for at in [0, 7, 8, 19, 20, ticket.len() - 1] {
        let mut t = ticket.clone();
        t[at] ^= 0x80;
        assert!(keys.open(&*provider, 299, &t).is_none(), "{at}");
    }
    // Another secret's keys open nothing; nor do short or huge inputs.
    let other = TicketKeys::from_secret(&*provider, &[8; 32], Duration::from_secs(100)).unwrap();
    assert!(other.open(&*provider, 299, &ticket).is_none());
    assert!(keys.open(&*provider, 299, &ticket[..35]).is_none());
    assert!(keys.open(&*provider, 299, &vec![0; ticket::MAX_TICKET_LEN + 1]).is_none());
    // Two sealings of one session differ (fresh nonces).
    assert_ne!(keys.seal(&*provider, 250, &plain).unwrap(), ticket);
    assert!(TicketKeys::from_secret(&*provider, &[1; 15], Duration::from_secs(100)).is_err());
    assert!(TicketKeys::from_secret(&*provider, &[1; 16], Duration::from_secs(59)).is_err());
}
