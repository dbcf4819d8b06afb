//! Unit tests of the fault proxy.
use std::time::Instant;

use super::*;

const WAIT: Duration = Duration::from_secs(5);

/// A client and a server socket around a proxy, for driving it datagram by datagram.
struct Rig {
    proxy: FaultProxy,
    client: UdpSocket,
    server: UdpSocket,
}

impl Rig {
    fn new(to_server: Faults, to_client: Faults) -> Self {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(WAIT)).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        let proxy = FaultProxy::start(server.local_addr().unwrap(), to_server, to_client, 1);
        client.connect(proxy.addr()).unwrap();
        Self { proxy, client, server }
    }

    /// Sends from the client, then waits until the proxy took it in.
    fn send(&self, data: &[u8]) {
        let before = self.proxy.stats().to_server.received;
        self.client.send(data).unwrap();
        self.wait(|s| s.to_server.received > before);
    }

    /// Waits until the counters satisfy `f`.
    fn wait(&self, f: impl Fn(&Stats) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f(&self.proxy.stats()) {
            assert!(Instant::now() < deadline, "counters stuck at {:?}", self.proxy.stats());
            thread::yield_now();
        }
    }

    /// The next datagram at the server, and where it came from.
    fn at_server(&self) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 70_000];
        let (n, from) = self.server.recv_from(&mut buf).expect("a datagram at the server");
        (buf[..n].to_vec(), from)
    }

    /// Sends everything so far through with a datagram that has no faults, and returns
    /// what the server received before it.
    fn drain_at_server(&self) -> Vec<Vec<u8>> {
        self.proxy.set_faults(Direction::ToServer, Faults::none());
        self.send(b"fence");
        let mut got = Vec::new();
        loop {
            let (d, _) = self.at_server();
            if d == b"fence" {
                return got;
            }
            got.push(d);
        }
    }
}

/// A plaintext record carrying one handshake fragment of `msg_type`.
fn handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u8;
    let mut hs = vec![msg_type, 0, 0, len, 0, 0, 0, 0, 0, 0, 0, len];
    hs.extend_from_slice(body);
    let mut rec = vec![CONTENT_HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn forwards_both_ways_to_the_first_client() {
    let rig = Rig::new(Faults::none(), Faults::none());
    rig.send(b"hello");
    let (d, back) = rig.at_server();
    assert_eq!(d, b"hello");
    rig.server.send_to(b"answer", back).unwrap();
    let mut buf = [0u8; 100];
    let n = rig.client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"answer");
    assert_eq!(rig.proxy.client(), Some(rig.client.local_addr().unwrap()));
    // Another client is ignored.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"intruder", rig.proxy.addr()).unwrap();
    rig.wait(|s| s.to_server.ignored == 1);
    let mut proxy = rig.proxy;
    let stats = proxy.stop();
    assert_eq!((stats.to_server.received, stats.to_server.forwarded), (1, 1));
    assert_eq!((stats.to_client.received, stats.to_client.forwarded), (1, 1));
    assert_eq!(stats.to_server.faults() + stats.to_client.faults(), 0);
    // Stopping twice is fine.
    assert_eq!(proxy.stop(), stats);
}

#[test]
fn loss_then_a_new_phase() {
    let rig = Rig::new(Faults::none().loss(1.0), Faults::none());
    for _ in 0..5 {
        rig.send(b"lost");
    }
    assert_eq!(rig.drain_at_server(), Vec::<Vec<u8>>::new());
    rig.wait(|s| s.to_server.dropped == 5);
    assert_eq!(rig.proxy.phase(Direction::ToServer), 1);
}

#[test]
fn duplicate_reorder_corrupt_truncate() {
    let rig = Rig::new(Faults::none().duplicate(1.0), Faults::none());
    rig.send(b"twice");
    assert_eq!(rig.at_server().0, b"twice");
    assert_eq!(rig.at_server().0, b"twice");

    // The first is held back behind the second.
    rig.proxy.set_faults(Direction::ToServer, Faults { reorder_hold: WAIT, ..Faults::none().reorder(1.0) });
    rig.send(b"first");
    rig.send(b"second");
    assert_eq!(rig.at_server().0, b"second");
    assert_eq!(rig.at_server().0, b"first");
    // With nothing behind it, a held datagram goes after `reorder_hold`.
    rig.proxy.set_faults(Direction::ToServer, Faults::none().reorder(1.0));
    rig.send(b"alone");
    assert_eq!(rig.at_server().0, b"alone");

    rig.proxy.set_faults(Direction::ToServer, Faults::none().corrupt(1.0));
    let original = [0x55u8; 64];
    rig.send(&original);
    let (got, _) = rig.at_server();
    let flipped: u32 = got.iter().zip(&original).map(|(a, b)| (a ^ b).count_ones()).sum();
    assert_eq!((got.len(), flipped), (64, 1));

    rig.proxy.set_faults(Direction::ToServer, Faults::none().truncate(1.0));
    rig.send(&original);
    let (got, _) = rig.at_server();
    assert!(!got.is_empty() && got.len() < 64 && original.starts_with(&got), "{got:?}");

    rig.wait(|s| s.to_server.forwarded == 7);
    let s = rig.proxy.stats().to_server;
    assert_eq!((s.duplicated, s.reordered, s.corrupted, s.truncated), (1, 2, 1, 1));
}

#[test]
fn pack_mtu_and_delay() {
    let pack = Faults { pack: 1.0, pack_window: WAIT, ..Faults::none() };
    let rig = Rig::new(pack.clone(), Faults::none());
    rig.send(b"one,");
    rig.send(b"two");
    assert_eq!(rig.at_server().0, b"one,two");
    rig.wait(|s| s.to_server.packed == 1);

    // Packed datagrams stay within the MTU; larger ones are dropped.
    rig.proxy.set_faults(Direction::ToServer, Faults { mtu: Some(100), ..pack });
    rig.send(&[1; 101]);
    rig.send(&[2; 60]);
    rig.send(&[3; 60]);
    assert_eq!(rig.at_server().0, [2; 60]);
    // [3; 60] still waits for a companion (its fate was decided) when the faults change.
    rig.proxy.set_faults(Direction::ToServer, Faults::none().delay(Duration::from_millis(300)));
    let sent = Instant::now();
    rig.send(b"late");
    assert_eq!(rig.at_server().0, [&[3; 60][..], b"late"].concat());
    assert!(sent.elapsed() >= Duration::from_millis(300));
    // The proxy counts a datagram forwarded after the server may have read it.
    rig.wait(|s| s.to_server.forwarded == 3);
    let s = rig.proxy.stats().to_server;
    assert_eq!((s.oversize, s.packed), (1, 2));
}

#[test]
fn targeted_datagrams_and_flights() {
    use handshake_type::*;
    let to_server = Faults::none().target(Target::datagram(Marker::Handshake(CLIENT_HELLO)).times(2));
    let to_client = Faults::none().target(Target::flight(Marker::Handshake(SERVER_HELLO)));
    let rig = Rig::new(to_server, to_client);
    let ch = handshake_record(CLIENT_HELLO, b"ch");
    rig.send(&ch);
    rig.send(&ch);
    rig.send(&ch);
    let (got, back) = rig.at_server();
    assert_eq!(got, ch);
    assert_eq!(rig.proxy.stats().to_server.targeted, 2);

    // The server's flight: ServerHello, Certificate, ServerHelloDone: all dropped.
    let flight = [
        handshake_record(SERVER_HELLO, b"sh"),
        handshake_record(CERTIFICATE, b"cert"),
        handshake_record(SERVER_HELLO_DONE, b""),
    ];
    let from_server = |d: &[u8]| {
        let before = rig.proxy.stats().to_client.received;
        rig.server.send_to(d, back).unwrap();
        rig.wait(|s| s.to_client.received > before);
    };
    for d in &flight {
        from_server(d);
    }
    // `received` is counted before the drop is: wait for the drop itself.
    rig.wait(|s| s.to_client.targeted == 3);
    // The client speaks: the flight's transmission is over; the retransmission goes through.
    rig.send(&ch);
    assert_eq!(rig.at_server().0, ch);
    for d in &flight {
        from_server(d);
    }
    let mut buf = [0u8; 100];
    for d in &flight {
        let n = rig.client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], d.as_slice());
    }
    assert_eq!(rig.proxy.stats().to_client.targeted, 3);
}

/// After every N datagrams to the server, the next leaves from a new port; the server's answer
/// to the old port is lost, its answer to the new one reaches the client.
#[test]
fn rebinding_goes_on_from_a_new_port_and_forgets_the_old_one() {
    let rig = Rig::new(Faults::none(), Faults::none());
    rig.proxy.rebind_every(2);
    let mut sources = Vec::new();
    for i in 0..5u8 {
        rig.send(&[i]);
        let (d, from) = rig.at_server();
        assert_eq!(d, [i]);
        sources.push(from);
    }
    assert_eq!(sources[0], sources[1]);
    assert_ne!(sources[1], sources[2], "a new port after two datagrams");
    assert_eq!(sources[2], sources[3]);
    assert_ne!(sources[3], sources[4]);
    assert_eq!(rig.proxy.stats().rebinds, 2);
    assert_eq!(rig.proxy.client_side().unwrap(), sources[4]);

    // The old port's mapping is gone; the current one answers.
    rig.server.send_to(b"to the old port", sources[0]).unwrap();
    rig.server.send_to(b"to the new port", sources[4]).unwrap();
    let mut buf = [0u8; 64];
    let n = rig.client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to the new port");

    // A rebinding on demand.
    rig.proxy.rebind_every(0);
    let at = rig.proxy.rebind().unwrap();
    rig.send(b"after");
    assert_eq!(rig.at_server(), (b"after".to_vec(), at));
    assert_eq!(rig.proxy.stats().rebinds, 3);
}
