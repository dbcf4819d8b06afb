//! Our key log, checked by someone else's code: a real loopback exchange is recorded, datagram
//! by datagram as each side received it (our observers), and written as a pcap capture;
//! Wireshark's DTLS dissector (`tshark`) decrypts every application record of the capture with
//! the server's key log alone, PSK and ECDHE-ECDSA, both directions. (A `dumpcap` capture of
//! loopback misses datagrams at its start and end unless the test waits for it: recording the
//! datagrams ourselves needs no waiting.)

#[allow(dead_code)]
#[path = "certs/mod.rs"]
mod certs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdtls::{Config, Connection, KeyLogFile, Listener, ListenerOptions, Observed, Observer, SocketOptions};
use rdtls_interop::{free_udp_port, require};

const T: Duration = Duration::from_secs(20);

/// A fresh directory for one capture and its key log.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rdtls-wireshark-{}-{}", std::process::id(), free_udp_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The payloads Wireshark decrypts from `capture` with `key_log`, as text, in capture order.
fn decrypted(capture: &Path, key_log: &Path, port: u16) -> Vec<String> {
    require("tshark");
    let out = Command::new("tshark")
        .args(["-r", &capture.to_string_lossy(), "-o", &format!("tls.keylog_file:{}", key_log.display())])
        .args(["-d", &format!("udp.port=={port},dtls"), "-Y", "data", "-T", "fields", "-e", "data.data"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split(','))
        .filter(|h| !h.is_empty())
        .map(|h| {
            let bytes: Vec<u8> =
                (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

/// Datagrams as they arrived, with their ports: what each side's observer saw.
type Seen = Arc<Mutex<Vec<(Instant, u16, u16, Vec<u8>)>>>;

/// An observer that records every datagram `local`'s side receives.
fn recorder(seen: &Seen, local: Arc<Mutex<u16>>) -> Observer {
    let seen = seen.clone();
    Observer::new(move |o| {
        if let Observed::Received { peer, datagram } = o {
            let to = *local.lock().unwrap();
            seen.lock().unwrap().push((Instant::now(), peer.port(), to, datagram.to_vec()));
        }
    })
}

/// Writes `packets` as a pcap file of raw IPv4 (link type 101) UDP datagrams between 127.0.0.1
/// ports, in arrival order.
fn write_pcap(path: &Path, packets: &[(Instant, u16, u16, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes());
    let start = packets.first().map(|p| p.0);
    for (at, from, to, payload) in packets {
        let t = at.duration_since(start.unwrap_or(*at));
        let len = 20 + 8 + payload.len();
        out.extend_from_slice(&(t.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&t.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        let mut ip = [0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        ip[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(&from.to_be_bytes());
        out.extend_from_slice(&to.to_be_bytes());
        out.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(payload);
    }
    std::fs::write(path, out).unwrap();
}

/// Runs an exchange of `messages` (each echoed back) between our client and our listener,
/// configured by `server` and `client`, the server logging its keys; records every datagram as
/// it arrived, writes them as a capture, and returns what Wireshark decrypted from it.
fn capture_and_decrypt(
    server: rdtls::proto::ConfigBuilder,
    client: rdtls::proto::ConfigBuilder,
    name: Option<&str>,
    messages: &[&str],
) -> Vec<String> {
    let dir = scratch();
    let (capture, key_log) = (dir.join("capture.pcap"), dir.join("keys.log"));
    let seen: Seen = Arc::default();
    let server = Arc::new(server.key_log(KeyLogFile::create(&key_log).unwrap()).build().unwrap());
    let server_port = Arc::new(Mutex::new(0));
    let options =
        ListenerOptions::default().socket(SocketOptions::default().observer(recorder(&seen, server_port.clone())));
    let listener = Listener::bind_with("127.0.0.1:0".parse().unwrap(), server, options).unwrap();
    let addr = listener.local_addr().unwrap();
    *server_port.lock().unwrap() = addr.port();
    let echo = std::thread::spawn(move || {
        let mut c = listener.accept_timeout(T).unwrap();
        let mut buf = [0u8; 256];
        while let Ok(n) = c.recv(&mut buf, Some(T)) {
            let reply = format!("echo {}", String::from_utf8_lossy(&buf[..n]));
            c.send(reply.as_bytes()).unwrap();
        }
    });
    let client_port = Arc::new(Mutex::new(0));
    let options = SocketOptions::default().observer(recorder(&seen, client_port.clone()));
    let client = Arc::new(client.build().unwrap());
    let mut c = Connection::connect_with(addr, name, client, &options, Some(T)).unwrap();
    // The client's port is known once connected; its observer has seen the server's datagrams
    // under port 0 until now: fix them up.
    let port = c.local_addr().unwrap().port();
    *client_port.lock().unwrap() = port;
    for p in seen.lock().unwrap().iter_mut().filter(|p| p.2 == 0) {
        p.2 = port;
    }
    let mut buf = [0u8; 256];
    for m in messages {
        c.send(m.as_bytes()).unwrap();
        let n = c.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf[..n]), format!("echo {m}"));
    }
    c.close().unwrap();
    echo.join().unwrap();
    let mut packets = seen.lock().unwrap().clone();
    packets.sort_by_key(|p| p.0);
    write_pcap(&capture, &packets);
    let got = decrypted(&capture, &key_log, addr.port());
    if !got.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    got
}

fn expected(messages: &[&str]) -> Vec<String> {
    messages.iter().flat_map(|m| [m.to_string(), format!("echo {m}")]).collect()
}

#[test]
fn wireshark_decrypts_a_psk_exchange_with_our_key_log() {
    let messages = ["first psk record", "second psk record", "third"];
    let server = Config::builder().psk_server_key(b"wireshark key".to_vec());
    let client = Config::builder()
        .cipher_suites(&[&rdtls::proto::suites::TLS_PSK_WITH_AES_128_GCM_SHA256])
        .psk("wireshark", b"wireshark key".to_vec());
    assert_eq!(capture_and_decrypt(server, client, None, &messages), expected(&messages));
}

#[test]
fn wireshark_decrypts_an_ecdhe_ecdsa_exchange_with_our_key_log() {
    use certs::{Alg, Ca, Usage};
    let ca = Ca::root("Wireshark test root");
    let leaf = ca.leaf(Alg::EcdsaP256, &["localhost"], Usage::Server);
    let messages = ["a certificate suite", "and its echo"];
    let server = Config::builder().certificate(leaf.certified_key());
    let client = Config::builder()
        .cipher_suites(&[&rdtls::proto::suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256])
        .root_store(ca.roots());
    assert_eq!(capture_and_decrypt(server, client, Some("localhost"), &messages), expected(&messages));
}
