//! DTLS 1.3: the client sends as soon as its Finished is out, so its first message can reach a
//! listener before that Finished does (lost, or overtaken). The message waits for the Finished
//! and reaches the application, through `accept` and `recv`, and through a hand-off, which
//! carries every message decrypted and not yet read.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdtls::{Config, Listener, ListenerOptions};
use rdtls_proto::Protocol;

const KEY: &[u8] = b"0123456789abcdef";
const T: Duration = Duration::from_secs(5);

fn server_config() -> Arc<Config> {
    Arc::new(
        Config::builder()
            .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
            .psk_server_key(KEY.to_vec())
            .allow_session_export(true)
            .build()
            .unwrap(),
    )
}

/// A DTLS 1.3 client on a raw socket whose Finished is lost once, and whose first message
/// goes out right after it; returns once the listener has acknowledged the resent Finished.
fn client_that_loses_its_finished(listener: &Listener, message: &[u8]) {
    let cfg = Config::builder()
        .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
        .psk("overtaken", KEY.to_vec())
        .retransmit_timeouts(Duration::from_millis(100), Duration::from_millis(400))
        .build()
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(listener.local_addr().unwrap()).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut client = rdtls_proto::Connection::client(Arc::new(cfg), Instant::now()).unwrap();
    let (mut tx, mut rx) = (Vec::new(), vec![0u8; 2048]);
    let deadline = Instant::now() + T;
    let mut lost = false;
    loop {
        assert!(Instant::now() < deadline, "the handshake did not complete");
        while client.poll_transmit(&mut tx).is_some() {
            if client.is_established() && !lost {
                // The Finished goes nowhere; the first message goes out after it.
                lost = true;
                let mut record = Vec::new();
                client.send(message, &mut record).unwrap();
                socket.send(&record).unwrap();
                continue;
            }
            socket.send(&tx).unwrap();
        }
        match socket.recv(&mut rx) {
            Ok(n) => {
                client.handle_datagram(Instant::now(), &mut rx[..n]).unwrap();
            }
            Err(_) => {
                if client.poll_timeout().is_some_and(|t| t <= Instant::now()) {
                    client.handle_timeout(Instant::now()).unwrap();
                }
            }
        }
        // Done once the resent Finished was acknowledged: nothing more to resend.
        if lost && client.is_established() && client.poll_timeout().is_none_or(|t| t > Instant::now() + T) {
            return;
        }
    }
}

#[test]
fn a_message_that_overtakes_the_finished_reaches_the_application() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    client_that_loses_its_finished(&listener, b"first, before the Finished");
    let mut server = listener.accept_timeout(T).unwrap();
    let mut buf = [0u8; 64];
    let n = server.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"first, before the Finished");
}

#[cfg(unix)]
#[test]
fn it_goes_along_with_a_hand_off() {
    let opts = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(), opts).unwrap();
    client_that_loses_its_finished(&listener, b"handed over");
    let conn = listener.accept_timeout(T).unwrap();
    let (fd, state) = conn.fly_away().unwrap();
    let mut moved = rdtls::Connection::from_fd(fd, &state, server_config()).unwrap();
    let mut buf = [0u8; 64];
    let n = moved.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"handed over");
}
