//! The handshake message parsers on arbitrary bytes: `HandshakeHeader::parse` (as a record's
//! fragment is walked), `ClientHello::parse`, `ServerHello::parse` (with the DTLS 1.3
//! extensions, and HelloRetryRequests), `parse_hello_verify_request`, `ServerEcdhParams::parse`,
//! and the DTLS 1.3 ACK, KeyUpdate, NewConnectionId and RequestConnectionId parsers, on the
//! whole input and on each message body found in it. The hellos' `connection_id`, `rrc`,
//! `use_srtp` and ALPN extensions are checked to survive a round trip, and the `use_srtp` and
//! ALPN parsers to read back exactly what they are given. The input is also read as a saved
//! resumption session and a client's session store, which must write back the same.

#![no_main]

use rdtls_proto::alpn::ProtocolList;
use rdtls_proto::codec::Reader;
use rdtls_proto::enums::HandshakeType;
use rdtls_proto::messages::tls13::{
    parse_ack, parse_key_update, parse_new_connection_id, parse_request_connection_id, write_ack,
    write_new_connection_id, PreSharedKey, Tls13Extensions, MAX_ACK_RECORDS,
};
use rdtls_proto::messages::{
    parse_hello_verify_request, ClientHello, HandshakeHeader, ServerEcdhParams, ServerHello, HS_HEADER_LEN,
};
use rdtls_proto::resumption::{Session, SessionStore};
use rdtls_proto::srtp::UseSrtp;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    parse_bodies(data);
    sessions(data);

    // Walk the input as the fragment of a handshake record.
    let mut r = Reader::new(data);
    let mut consumed = 0;
    while let Some((h, fragment)) = HandshakeHeader::parse(&mut r) {
        assert_eq!(fragment.len() as u64, u64::from(h.fragment_length));
        assert!(u64::from(h.fragment_offset) + u64::from(h.fragment_length) <= u64::from(h.length));
        assert!(h.length < 1 << 24 && h.fragment_offset < 1 << 24);
        let mut out = Vec::with_capacity(HS_HEADER_LEN);
        h.write(&mut out);
        assert_eq!(out, data[consumed..consumed + HS_HEADER_LEN], "handshake header round trip");
        assert_eq!(&data[consumed + HS_HEADER_LEN..][..fragment.len()], fragment);
        consumed += HS_HEADER_LEN + fragment.len();
        assert_eq!(r.remaining(), data.len() - consumed);

        if h.is_whole() {
            match h.msg_type {
                HandshakeType::CLIENT_HELLO => {
                    ClientHello::parse(fragment);
                }
                HandshakeType::SERVER_HELLO => {
                    ServerHello::parse(fragment);
                }
                HandshakeType::HELLO_VERIFY_REQUEST => {
                    parse_hello_verify_request(fragment);
                }
                HandshakeType::SERVER_KEY_EXCHANGE => {
                    parse_bodies(fragment);
                }
                _ => {}
            }
        }
    }
});

/// A saved session, or a store of them, from untrusted bytes: refused, or read back exactly.
fn sessions(data: &[u8]) {
    if let Some(session) = Session::from_bytes(data) {
        assert_eq!(&session.to_bytes()[..], data, "a session's encoding is canonical");
    }
    if let Some(store) = SessionStore::from_bytes(data, 4) {
        assert!(store.len() <= 4);
        let again = SessionStore::from_bytes(&store.to_bytes(), 4).expect("a written store reads back");
        assert_eq!(again.entries(), store.entries());
    }
}

/// Runs every body parser on `body` and checks what they report against the bytes.
fn parse_bodies(body: &[u8]) {
    if let Some((hello, span)) = ClientHello::parse(body) {
        assert!(span.start < span.end && span.end <= body.len());
        assert_eq!(usize::from(body[span.start]), span.end - span.start - 1, "cookie length byte");
        assert_eq!(&body[span.start + 1..span.end], &hello.cookie[..]);
        assert_eq!(span.start, 2 + 32 + 1 + hello.session_id.len());
        assert!(hello.session_id.len() <= 32);
        assert!(!hello.cipher_suites.is_empty() && !hello.compression_methods.is_empty());
        assert_eq!(&body[2..34], &hello.random[..]);
    }
    if let Some((hello, _)) = ClientHello::parse(body) {
        // The binders are the last bytes of the hello.
        if let Some(psk @ PreSharedKey::Offered { binders, .. }) = &hello.extensions.tls13.pre_shared_key {
            let len = psk.binders_len();
            assert!(len <= body.len());
            assert!(body.ends_with(binders.last().expect("a binder")));
            let listed = u16::from_be_bytes([body[body.len() - len], body[body.len() - len + 1]]);
            assert_eq!(usize::from(listed) + 2, len, "the binders list starts where binders_len says");
        }
        // What parsed is written back to something that parses to the same.
        let mut out = Vec::new();
        hello.emit(&mut out);
        let (again, _) = ClientHello::parse(&out).expect("an emitted ClientHello parses");
        assert_eq!((again.random, &again.cipher_suites), (hello.random, &hello.cipher_suites));
        // A malformed DTLS 1.3 extension is marked and left out: what is written back is
        // well formed.
        let written = Tls13Extensions { malformed: false, ..hello.extensions.tls13.clone() };
        assert_eq!(again.extensions.tls13, written);
        assert_eq!(again.extensions.connection_id, hello.extensions.connection_id);
        assert_eq!(again.extensions.rrc, hello.extensions.rrc);
        assert_eq!(again.extensions.use_srtp, hello.extensions.use_srtp);
        assert_eq!(again.extensions.alpn, hello.extensions.alpn);
    }
    if let Some(hello) = ServerHello::parse(body) {
        assert!(hello.session_id.len() <= 32);
        assert_eq!(&body[2..34], &hello.random[..]);
        let mut out = Vec::new();
        hello.emit(&mut out);
        let again = ServerHello::parse(&out).expect("an emitted ServerHello parses");
        assert_eq!(again.extensions.tls13, hello.extensions.tls13);
        assert_eq!(again.extensions.connection_id, hello.extensions.connection_id);
        assert_eq!(again.extensions.rrc, hello.extensions.rrc);
        assert_eq!(again.extensions.use_srtp, hello.extensions.use_srtp);
        assert_eq!(again.extensions.alpn, hello.extensions.alpn);
        assert_eq!(again.is_retry_request(), hello.is_retry_request());
    }
    if let Some((ids, usage)) = parse_new_connection_id(body, usize::MAX) {
        let kept = parse_new_connection_id(body, 2).expect("the same list parses with fewer kept");
        assert_eq!((&kept.0[..], kept.1), (&ids[..ids.len().min(2)], usage));
        // Every byte is accounted for: the list, each ID with its length, the usage.
        assert_eq!(body.len(), 2 + ids.iter().map(|id| 1 + id.len()).sum::<usize>() + 1);
        let owned: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
        let mut out = Vec::new();
        write_new_connection_id(&owned, usage, &mut out);
        assert_eq!(out, body, "NewConnectionId round trip");
    }
    if let Some(srtp) = UseSrtp::parse(body) {
        assert!(!srtp.profiles.is_empty() && srtp.mki.len() <= 255);
        let mut out = Vec::new();
        srtp.emit(&mut out);
        assert_eq!(out, body, "use_srtp round trip");
    }
    if let Some(protocols) = ProtocolList::parse(body) {
        let names: Vec<&[u8]> = protocols.iter().collect();
        assert!(!names.is_empty() && names.iter().all(|p| (1..=255).contains(&p.len())));
        assert_eq!(ProtocolList::new(&names).as_ref(), Some(&protocols));
        let mut out = Vec::new();
        protocols.emit(&mut out);
        assert_eq!(out, body, "ALPN round trip");
    }
    if let Some(n) = parse_request_connection_id(body) {
        assert_eq!(body, [n]);
    }
    if let Some(records) = parse_ack(body) {
        assert!(records.len() <= MAX_ACK_RECORDS);
        assert_eq!(body.len(), 2 + 16 * records.len());
        if records.windows(2).all(|w| w[0] < w[1]) {
            let mut out = Vec::new();
            write_ack(&mut out, &records);
            assert_eq!(out, body, "ACK round trip");
        }
    }
    if let Some(requested) = parse_key_update(body) {
        assert_eq!(body, [u8::from(requested)]);
    }
    if let Some((version, cookie)) = parse_hello_verify_request(body) {
        assert_eq!(body.len(), 3 + cookie.len());
        assert_eq!(version.0, u16::from_be_bytes([body[0], body[1]]));
    }
    // ServerKeyExchange for ECDHE-PSK: psk_identity_hint<0..2^16-1> then ServerECDHParams.
    let mut r = Reader::new(body);
    if r.vec16().is_some() {
        if let Some(params) = ServerEcdhParams::parse(&mut r) {
            assert!(!params.public.is_empty());
            let mut out = Vec::new();
            params.write(&mut out);
            assert_eq!(out.len(), 4 + params.public.len());
        }
    }
}
