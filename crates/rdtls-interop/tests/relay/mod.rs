//! A recording UDP relay for the fragmentation interop tests, and an independent parser of the
//! plaintext DTLS 1.2 handshake records it saw.
//!
//! The relay sits between a client and a server on loopback: the client sends to
//! [`Relay::addr`], the relay forwards to the server from its own socket, and every datagram is
//! recorded with its direction. The parser here deliberately does not use the crate under test:
//! it reads the wire format (RFC 6347 §4.1 and §4.2.2) byte by byte.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Record header: type(1) version(2) epoch(2) sequence_number(6) length(2).
pub(crate) const RECORD_HEADER_LEN: usize = 13;
/// Handshake header: msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
pub(crate) const HANDSHAKE_HEADER_LEN: usize = 12;
/// Record content type `handshake`.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake type `client_hello`.
pub(crate) const CLIENT_HELLO: u8 = 1;
/// Handshake type `hello_verify_request`.
pub(crate) const HELLO_VERIFY_REQUEST: u8 = 3;
/// Handshake type `server_key_exchange`.
pub(crate) const SERVER_KEY_EXCHANGE: u8 = 12;
/// Handshake type `client_key_exchange`.
pub(crate) const CLIENT_KEY_EXCHANGE: u8 = 16;

/// Which way a datagram went through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// Every datagram relayed, in order, with its direction.
type Log = Arc<Mutex<Vec<(Dir, Vec<u8>)>>>;

/// A relay between one client and `server`, recording every datagram both ways.
pub(crate) struct Relay {
    addr: SocketAddr,
    log: Log,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying to `server`; clients send to [`Relay::addr`].
    pub(crate) fn start(server: SocketAddr) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind relay front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind relay back");
        back.connect(server).expect("connect relay back");
        let tick = Some(Duration::from_millis(50));
        front.set_read_timeout(tick).expect("timeout");
        back.set_read_timeout(tick).expect("timeout");
        let addr = front.local_addr().expect("relay addr");
        let log = Log::default();
        let stop = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Mutex::new(None::<SocketAddr>));
        let front2 = front.try_clone().expect("clone");
        let back2 = back.try_clone().expect("clone");

        let up = {
            let (log, stop, client) = (log.clone(), stop.clone(), client.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Some((n, from)) = received(front.recv_from(&mut buf)) else { continue };
                    *client.lock().expect("lock") = Some(from);
                    log.lock().expect("lock").push((Dir::ToServer, buf[..n].to_vec()));
                    // The server may not listen yet or may have gone: the sender retransmits.
                    let _ = back.send(&buf[..n]);
                }
            })
        };
        let down = {
            let (log, stop) = (log.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Some(n) = received(back2.recv(&mut buf)) else { continue };
                    log.lock().expect("lock").push((Dir::ToClient, buf[..n].to_vec()));
                    if let Some(to) = *client.lock().expect("lock") {
                        let _ = front2.send_to(&buf[..n], to);
                    }
                }
            })
        };
        Self { addr, log, stop, threads: vec![up, down] }
    }

    /// Where clients send.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The datagrams that went `dir`, in order.
    pub(crate) fn datagrams(&self, dir: Dir) -> Vec<Vec<u8>> {
        self.log.lock().expect("lock").iter().filter(|(d, _)| *d == dir).map(|(_, b)| b.clone()).collect()
    }
}

/// The datagram of a receive, `None` for a timeout or an ICMP error (port not listening yet).
fn received<T>(r: io::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
            ) =>
        {
            None
        }
        Err(e) => panic!("relay socket failed: {e}"),
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One plaintext (epoch 0) handshake fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fragment {
    /// Handshake type.
    pub(crate) msg_type: u8,
    /// Length of the whole message body.
    pub(crate) length: u32,
    /// Message sequence number.
    pub(crate) message_seq: u16,
    /// Where this fragment starts in the body.
    pub(crate) offset: u32,
    /// The fragment's bytes.
    pub(crate) body: Vec<u8>,
}

fn be(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |n, b| n << 8 | u32::from(*b))
}

/// The epoch-0 handshake fragments of a datagram, in order. Panics on a datagram that does not
/// frame into whole records, or a handshake record that does not frame into whole fragments:
/// a well-behaved peer never sends one.
pub(crate) fn fragments(datagram: &[u8]) -> Vec<Fragment> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        assert!(rest.len() >= RECORD_HEADER_LEN, "truncated record header in {datagram:02x?}");
        let (content_type, epoch, len) = (rest[0], be(&rest[3..5]), be(&rest[11..13]) as usize);
        assert!(rest.len() >= RECORD_HEADER_LEN + len, "truncated record in {datagram:02x?}");
        let (record, tail) = rest[RECORD_HEADER_LEN..].split_at(len);
        rest = tail;
        if content_type != CONTENT_HANDSHAKE || epoch != 0 {
            continue;
        }
        let mut r = record;
        while !r.is_empty() {
            assert!(r.len() >= HANDSHAKE_HEADER_LEN, "truncated handshake header in {datagram:02x?}");
            let h = &r[..HANDSHAKE_HEADER_LEN];
            let frag_len = be(&h[9..12]) as usize;
            assert!(r.len() >= HANDSHAKE_HEADER_LEN + frag_len, "truncated fragment in {datagram:02x?}");
            let f = Fragment {
                msg_type: h[0],
                length: be(&h[1..4]),
                message_seq: be(&h[4..6]) as u16,
                offset: be(&h[6..9]),
                body: r[HANDSHAKE_HEADER_LEN..HANDSHAKE_HEADER_LEN + frag_len].to_vec(),
            };
            assert!(f.offset as usize + frag_len <= f.length as usize, "fragment beyond its message: {f:?}");
            r = &r[HANDSHAKE_HEADER_LEN + frag_len..];
            out.push(f);
        }
    }
    out
}

/// A handshake message as it traveled: the distinct fragments (retransmissions removed) and
/// the body they reassemble to.
#[derive(Debug)]
pub(crate) struct Message {
    /// Handshake type.
    pub(crate) msg_type: u8,
    /// Message sequence number.
    pub(crate) message_seq: u16,
    /// `(offset, length)` of each distinct fragment, sorted.
    pub(crate) pieces: Vec<(u32, u32)>,
    /// The reassembled body.
    pub(crate) body: Vec<u8>,
}

impl Message {
    /// Whether the message only ever traveled in pieces, never whole.
    pub(crate) fn was_fragmented(&self) -> bool {
        self.pieces.len() > 1 && self.pieces.iter().all(|&(_, len)| (len as usize) < self.body.len())
    }
}

/// Reassembles every plaintext handshake message in `datagrams`, in order of message_seq. Panics
/// if fragments of one message disagree (length or overlapping bytes) or leave a gap.
pub(crate) fn messages(datagrams: &[Vec<u8>]) -> Vec<Message> {
    type Pieces = BTreeMap<(u32, u32), Vec<u8>>;
    let mut by_seq: BTreeMap<(u16, u8), (u32, Pieces)> = BTreeMap::new();
    for f in datagrams.iter().flat_map(|d| fragments(d)) {
        let entry = by_seq.entry((f.message_seq, f.msg_type)).or_insert_with(|| (f.length, BTreeMap::new()));
        assert_eq!(entry.0, f.length, "fragments of message {} disagree on its length", f.message_seq);
        entry.1.insert((f.offset, f.body.len() as u32), f.body);
    }
    by_seq
        .into_iter()
        .map(|((message_seq, msg_type), (length, pieces))| {
            let mut body = vec![None; length as usize];
            for (&(offset, _), bytes) in &pieces {
                for (i, b) in bytes.iter().enumerate() {
                    let slot = &mut body[offset as usize + i];
                    assert!(slot.is_none_or(|old| old == *b), "fragments of message {message_seq} overlap differently");
                    *slot = Some(*b);
                }
            }
            let body: Option<Vec<u8>> = body.into_iter().collect();
            let body = body.unwrap_or_else(|| panic!("message {message_seq} (type {msg_type}) has a gap"));
            Message { msg_type, message_seq, pieces: pieces.into_keys().collect(), body }
        })
        .collect()
}

/// The one message of type `msg_type` (panics if absent or repeated under another sequence).
pub(crate) fn message(datagrams: &[Vec<u8>], msg_type: u8) -> Message {
    let mut found: Vec<Message> = messages(datagrams).into_iter().filter(|m| m.msg_type == msg_type).collect();
    assert_eq!(found.len(), 1, "expected one handshake message of type {msg_type}, found {found:?}");
    found.remove(0)
}

/// `body` prefixed by its 16-bit length, as PSK identities and hints are sent (RFC 4279).
pub(crate) fn vec16(body: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(body.len()).expect("short").to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// Checks what a fragmentation test must show for one direction, and returns a summary:
/// every datagram is at most `mtu` bytes, and the message of type `msg_type` traveled only in
/// pieces (at least two, none of them whole) that reassemble to `expected_body`.
pub(crate) fn assert_fragmented(
    who: &str,
    datagrams: &[Vec<u8>],
    mtu: usize,
    msg_type: u8,
    expected_body: &[u8],
) -> String {
    assert!(!datagrams.is_empty(), "{who} sent nothing");
    let largest = datagrams.iter().map(Vec::len).max().unwrap_or(0);
    assert!(largest <= mtu, "{who} sent a {largest}-byte datagram over its MTU of {mtu}");
    let m = message(datagrams, msg_type);
    assert!(m.was_fragmented(), "{who} sent handshake message type {msg_type} whole: {:?}", m.pieces);
    assert_eq!(m.body, expected_body, "{who}'s handshake message type {msg_type} reassembled to other bytes");
    let all: Vec<String> = messages(datagrams)
        .iter()
        .map(|m| format!("type {} seq {} ({} bytes) in {}", m.msg_type, m.message_seq, m.body.len(), m.pieces.len()))
        .collect();
    let summary = format!(
        "{who}: {} datagrams, largest {largest} <= {mtu}; handshake type {msg_type} ({} bytes) in {} fragments \
         {:?}; all plaintext messages: {}",
        datagrams.len(),
        m.body.len(),
        m.pieces.len(),
        m.pieces,
        all.join(", ")
    );
    println!("{summary}");
    summary
}

/// Checks the cookie exchange (RFC 6347 §4.2.1) happened: the server answered a cookie-less
/// ClientHello with one HelloVerifyRequest, and the client sent its ClientHello again with that
/// cookie. Returns the cookie.
pub(crate) fn assert_cookie_exchange(to_server: &[Vec<u8>], to_client: &[Vec<u8>]) -> Vec<u8> {
    let hvr = message(to_client, HELLO_VERIFY_REQUEST);
    // server_version(2) cookie<0..2^8-1>
    let cookie = hvr.body[3..].to_vec();
    assert_eq!(usize::from(hvr.body[2]), cookie.len(), "HelloVerifyRequest framing");
    assert!(!cookie.is_empty(), "empty cookie");
    let hellos: Vec<Vec<u8>> = messages(to_server)
        .into_iter()
        .filter(|m| m.msg_type == CLIENT_HELLO)
        .map(|m| {
            // client_version(2) random(32) session_id<0..32> cookie<0..2^8-1> ...
            let sid = usize::from(m.body[34]);
            let at = 35 + sid;
            m.body[at + 1..at + 1 + usize::from(m.body[at])].to_vec()
        })
        .collect();
    assert_eq!(hellos, [Vec::new(), cookie.clone()], "ClientHello cookies");
    cookie
}
