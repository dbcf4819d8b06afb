//! A third party's DTLS 1.3 on the wire, read with our code: a wolfSSL client and a wolfSSL
//! server exchange a message through a relay that records every datagram; then, with nothing but
//! the client's NSS key log, our record layer (`record::UnifiedProtection` from each traffic
//! secret: the "dtls13" key schedule labels, record-number decryption, sequence reconstruction,
//! the additional data) opens every encrypted record both ways, and our message codecs read
//! wolfSSL's ClientHellos, HelloRetryRequest, ServerHello and ACKs.
//!
//! Both ends here are wolfSSL's, so a mistake we share with ourselves cannot pass: the secrets,
//! the bytes and the plaintexts all come from wolfSSL.

#[allow(dead_code)]
#[path = "../src/wolfssl/mod.rs"]
mod wolfssl;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rdtls_interop::{loopback, psk};
use rdtls_proto::codec::Reader;
use rdtls_proto::crypto::{default_provider, AeadAlgorithm, HashAlgorithm};
use rdtls_proto::enums::{ContentType, HandshakeType, ProtocolVersion};
use rdtls_proto::messages::tls13::{parse_ack, KeyShare, SupportedVersions};
use rdtls_proto::messages::{ClientHello, HandshakeHeader, ServerHello};
use rdtls_proto::record::{Header, ReplayWindow, UnifiedProtection};
use wolfssl::{Group, PskModes, WolfConfig, WolfPeer};

const MESSAGE: &[u8] = b"a message for the capture";

/// Datagrams as they passed the relay: (sent by the client, bytes).
type Capture = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

/// A relay between one client and `server` that keeps a copy of every datagram.
fn relay(server: SocketAddr, stop: Arc<AtomicBool>, capture: Capture) -> (SocketAddr, thread::JoinHandle<()>) {
    let socket = UdpSocket::bind(loopback(0)).expect("relay socket");
    socket.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let addr = socket.local_addr().expect("relay address");
    let thread = thread::spawn(move || {
        let mut client = None;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
            let from_client = from != server;
            capture.lock().expect("capture").push((from_client, buf[..n].to_vec()));
            let to = if from_client {
                client = Some(from);
                server
            } else {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            };
            socket.send_to(&buf[..n], to).expect("relay send");
        }
    });
    (addr, thread)
}

/// One wolfSSL exchange through the relay; returns the client's key log and the capture.
fn capture_exchange(cipher: &str) -> (Vec<String>, Vec<(bool, Vec<u8>)>) {
    let key = psk();
    let cfg =
        |c: WolfConfig| c.ciphers(cipher).psk("capture", &key).psk_modes(PskModes::DheOnly).groups(&[Group::X25519]);
    let mut server = WolfPeer::bind(&cfg(WolfConfig::server()), loopback(0)).expect("server socket");
    let server_addr = server.local_addr();
    let server = thread::spawn(move || {
        server.handshake().expect("server handshake");
        let m = server.recv().expect("server recv").expect("a message");
        server.send(&m).expect("server send");
        assert_eq!(server.recv().expect("server recv"), None, "close_notify");
    });
    let (stop, capture) = (Arc::new(AtomicBool::new(false)), Capture::default());
    let (addr, relay) = relay(server_addr, stop.clone(), capture.clone());
    let mut client = WolfPeer::connect(&cfg(WolfConfig::client()), addr).expect("client socket");
    client.handshake().expect("client handshake");
    client.send(MESSAGE).expect("client send");
    assert_eq!(client.recv().expect("client recv").as_deref(), Some(MESSAGE));
    client.close().expect("close_notify");
    server.join().expect("server thread");
    stop.store(true, Ordering::Relaxed);
    relay.join().expect("relay thread");
    let captured = std::mem::take(&mut *capture.lock().expect("capture"));
    (client.key_log(), captured)
}

/// The secret of `label` in an NSS key log.
fn secret(key_log: &[String], label: &str) -> Vec<u8> {
    let line = key_log.iter().find(|l| l.starts_with(&format!("{label} "))).unwrap_or_else(|| panic!("no {label}"));
    hex::decode(line.rsplit(' ').next().expect("secret")).expect("hex secret")
}

/// What was read from the capture.
#[derive(Default, Debug)]
struct Read {
    /// Plaintext handshake messages (epoch 0), by sender: (client?, type, body).
    plain: Vec<(bool, HandshakeType, Vec<u8>)>,
    /// Opened records: (client?, epoch bits, inner content type, plaintext).
    opened: Vec<(bool, u8, ContentType, Vec<u8>)>,
}

fn read_capture(key_log: &[String], capture: &[(bool, Vec<u8>)], aead: AeadAlgorithm, hash: HashAlgorithm) -> Read {
    let provider = default_provider();
    let protection = |label: &str| {
        UnifiedProtection::from_traffic_secret(&*provider, aead, hash, &secret(key_log, label)).expect("keys")
    };
    // Epoch 2 carries the handshake, epoch 3 the application data (RFC 9147 §6.1).
    let keys = [
        ((true, 2), protection("CLIENT_HANDSHAKE_TRAFFIC_SECRET")),
        ((true, 3), protection("CLIENT_TRAFFIC_SECRET_0")),
        ((false, 2), protection("SERVER_HANDSHAKE_TRAFFIC_SECRET")),
        ((false, 3), protection("SERVER_TRAFFIC_SECRET_0")),
    ];
    let mut windows: HashMap<(bool, u8), ReplayWindow> = HashMap::new();
    let mut read = Read::default();
    for (from_client, datagram) in capture {
        let mut bytes = datagram.clone();
        let mut rest = &mut bytes[..];
        while !rest.is_empty() {
            let (header, fragment, tail) = Header::split(rest, 0).expect("every record frames");
            match header {
                Header::Plain(h) => {
                    assert_eq!(h.epoch, 0, "plaintext records are epoch 0");
                    assert_eq!(h.content_type, ContentType::HANDSHAKE, "only hellos go in the clear");
                    let mut r = Reader::new(fragment);
                    while let Some((hs, body)) = HandshakeHeader::parse(&mut r) {
                        assert!(hs.is_whole(), "hellos fit a datagram here");
                        read.plain.push((*from_client, hs.msg_type, body.to_vec()));
                    }
                }
                Header::Unified(u) => {
                    let key = (*from_client, u.epoch_bits);
                    let (_, prot) =
                        keys.iter().find(|(k, _)| *k == key).unwrap_or_else(|| panic!("epoch bits {key:?}"));
                    let window = windows.entry(key).or_default();
                    let opened = prot.open(&u, fragment, window).unwrap_or_else(|_| {
                        panic!(
                            "a record of {} in epoch {} does not open",
                            if key.0 { "the client" } else { "the server" },
                            key.1
                        )
                    });
                    read.opened.push((key.0, key.1, opened.content_type, fragment[opened.plaintext].to_vec()));
                }
                other => panic!("unexpected record format {other:?}"),
            }
            rest = tail;
        }
    }
    read
}

fn check(cipher: &str, aead: AeadAlgorithm, hash: HashAlgorithm) {
    let (key_log, capture) = capture_exchange(cipher);
    let read = read_capture(&key_log, &capture, aead, hash);

    // In the clear: ClientHello, HelloRetryRequest (wolfSSL's stateless cookie), ClientHello
    // with the cookie, ServerHello; our codecs read each one.
    let hellos: Vec<_> = read.plain.iter().map(|(c, t, _)| (*c, *t)).collect();
    assert_eq!(
        hellos,
        [
            (true, HandshakeType::CLIENT_HELLO),
            (false, HandshakeType::SERVER_HELLO),
            (true, HandshakeType::CLIENT_HELLO),
            (false, HandshakeType::SERVER_HELLO)
        ],
        "{read:?}"
    );
    let (first, _) = ClientHello::parse(&read.plain[0].2).expect("wolfSSL's ClientHello parses");
    let offered = first.extensions.tls13.supported_versions.clone().expect("supported_versions");
    assert!(matches!(&offered, SupportedVersions::Offered(v) if v.contains(&ProtocolVersion::DTLS1_3)), "{offered:?}");
    assert!(
        matches!(first.extensions.tls13.key_share, Some(KeyShare::Offered(ref s)) if s.iter().any(|e| e.group == 29))
    );
    let hrr = ServerHello::parse(&read.plain[1].2).expect("wolfSSL's HelloRetryRequest parses");
    assert!(hrr.is_retry_request());
    let cookie = hrr.extensions.tls13.cookie.clone().expect("the HelloRetryRequest's cookie");
    let (second, _) = ClientHello::parse(&read.plain[2].2).expect("the second ClientHello parses");
    assert_eq!(second.extensions.tls13.cookie, Some(cookie), "the cookie comes back");
    let sh = ServerHello::parse(&read.plain[3].2).expect("wolfSSL's ServerHello parses");
    assert!(!sh.is_retry_request());
    assert_eq!(sh.extensions.tls13.supported_versions, Some(SupportedVersions::Selected(ProtocolVersion::DTLS1_3)));
    assert!(matches!(sh.extensions.tls13.key_share, Some(KeyShare::Chosen(ref e)) if e.group == 29));

    // Encrypted: every record opened (read_capture panics otherwise); now what they hold.
    let types = |client: bool, epoch: u8, ty: ContentType| {
        read.opened.iter().filter(move |(c, e, t, _)| *c == client && *e == epoch && *t == ty).map(|(_, _, _, p)| p)
    };
    // The server's handshake flight starts with EncryptedExtensions and ends with Finished;
    // the client's with its Finished (DTLS handshake headers inside, 12 bytes).
    let server_hs: Vec<u8> = types(false, 2, ContentType::HANDSHAKE).map(|p| p[0]).collect();
    assert_eq!(server_hs.first(), Some(&HandshakeType::ENCRYPTED_EXTENSIONS.0), "{server_hs:?}");
    assert_eq!(server_hs.last(), Some(&HandshakeType::FINISHED.0), "{server_hs:?}");
    let client_hs: Vec<u8> = types(true, 2, ContentType::HANDSHAKE).map(|p| p[0]).collect();
    assert_eq!(client_hs, [HandshakeType::FINISHED.0]);
    let finished = types(true, 2, ContentType::HANDSHAKE).next().expect("client Finished");
    assert_eq!(finished.len(), 12 + hash.output_len(), "a Finished carries one HMAC");
    // The application data, both ways, and the client's close_notify.
    assert_eq!(types(true, 3, ContentType::APPLICATION_DATA).collect::<Vec<_>>(), [MESSAGE]);
    assert_eq!(types(false, 3, ContentType::APPLICATION_DATA).collect::<Vec<_>>(), [MESSAGE]);
    assert_eq!(types(true, 3, ContentType::ALERT).collect::<Vec<_>>(), [&[1u8, 0][..]], "close_notify");
    // ACKs, wherever wolfSSL sent them, read with our codec: they name handshake records of
    // epoch 2 or 3, in increasing order.
    let acks: Vec<_> = read.opened.iter().filter(|(_, _, t, _)| *t == ContentType::ACK).collect();
    assert!(!acks.is_empty(), "the server acknowledges the client's Finished");
    for (_, _, _, content) in acks {
        let records = parse_ack(content).expect("wolfSSL's ACK parses");
        assert!(!records.is_empty() && records.windows(2).all(|w| w[0] < w[1]), "{records:?}");
        assert!(records.iter().all(|r| (2..=3).contains(&r.epoch)), "{records:?}");
    }
}

#[test]
fn aes_128_gcm_sha256() {
    check("TLS13-AES128-GCM-SHA256", AeadAlgorithm::Aes128Gcm, HashAlgorithm::Sha256);
}

#[test]
fn aes_256_gcm_sha384() {
    check("TLS13-AES256-GCM-SHA384", AeadAlgorithm::Aes256Gcm, HashAlgorithm::Sha384);
}

#[test]
fn chacha20_poly1305_sha256() {
    check("TLS13-CHACHA20-POLY1305-SHA256", AeadAlgorithm::ChaCha20Poly1305, HashAlgorithm::Sha256);
}

#[test]
fn aes_128_ccm_8_sha256() {
    check("TLS13-AES128-CCM-8-SHA256", AeadAlgorithm::Aes128Ccm8, HashAlgorithm::Sha256);
}
