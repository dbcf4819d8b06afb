//! EdgerOS `flyAway` + `createByFd`: an accepted connection's socket descriptor and session
//! state are handed to another thread, and to another process, which carries on.
#![cfg(unix)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::{Config, Connection, Listener, ListenerOptions};

const KEY: &[u8] = b"hand-off key";
const T: Duration = Duration::from_secs(20);
const CHILD_ENV: &str = "DTLS_HANDOFF_CHILD";

fn server_config() -> Arc<Config> {
    Arc::new(Config::builder().psk_server_key(KEY.to_vec()).allow_session_export(true).build().unwrap())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A client and an accepted server connection with its own socket.
fn pair() -> (Listener, Connection, Connection) {
    let opts = ListenerOptions::default().connection_sockets(true);
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server_config(), opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let client =
        Connection::connect(addr, Arc::new(Config::builder().psk("flyer", KEY.to_vec()).build().unwrap()), Some(T))
            .unwrap();
    let server = listener.accept_timeout(T).unwrap();
    (listener, client, server)
}

#[test]
fn fly_away_to_another_thread() {
    let (_listener, mut client, mut server) = pair();
    client.send(b"one").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(server.recv(&mut buf, Some(T)).unwrap(), 3);
    let (fd, state) = server.fly_away().unwrap();
    let state = state.to_vec();
    let worker = thread::spawn(move || {
        let mut conn = Connection::from_fd(fd, &state, server_config()).unwrap();
        let mut buf = [0u8; 64];
        let n = conn.recv(&mut buf, Some(T)).unwrap();
        conn.send(&buf[..n]).unwrap();
        conn.psk_identity()
    });
    client.send(b"two").unwrap();
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"two");
    assert_eq!(worker.join().unwrap(), Some(b"flyer".to_vec()));
}

#[test]
fn fly_away_to_another_process() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        // The child: resume from the inherited descriptor, echo one message, exit.
        let (fd, state) = spec.split_once(':').unwrap();
        // SAFETY: the parent passed this descriptor to us, open and owned by nobody else here.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(fd.parse().unwrap()) };
        let mut conn = Connection::from_fd(fd, &unhex(state), server_config()).unwrap();
        let mut buf = [0u8; 64];
        let n = conn.recv(&mut buf, Some(T)).unwrap();
        let mut reply = b"child echoes ".to_vec();
        reply.extend_from_slice(&buf[..n]);
        conn.send(&reply).unwrap();
        conn.close().unwrap();
        return;
    }
    let (_listener, mut client, server) = pair();
    let (fd, state) = server.fly_away().unwrap();
    // Let the descriptor survive exec.
    socket2::SockRef::from(&fd).set_cloexec(false).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fly_away_to_another_process", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, format!("{}:{}", fd.as_raw_fd(), hex(&state)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(fd);
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 64];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"child echoes hello");
    // The child closed the association: the client sees the remote close.
    assert_eq!(client.recv(&mut buf, Some(T)).unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn only_connections_with_their_own_socket_can_fly() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), server_config()).unwrap();
    let addr = listener.local_addr().unwrap();
    let _client =
        Connection::connect(addr, Arc::new(Config::builder().psk("x", KEY.to_vec()).build().unwrap()), Some(T))
            .unwrap();
    let shared = listener.accept_timeout(T).unwrap();
    let err = shared.fly_away().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
