//! The key log: each side of a DTLS 1.2 handshake logs one `CLIENT_RANDOM` line (the client's
//! random and the master secret) in the NSS format Wireshark reads; nothing is logged unless a
//! key log is configured.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdtls_proto::{key_log_line, Config, ConfigBuilder, Connection, KeyLog, Protocol};
use support::pump;

/// Collects the lines a connection logs.
#[derive(Debug, Default)]
struct Lines(Mutex<Vec<String>>);

impl KeyLog for Lines {
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]) {
        self.0.lock().unwrap().push(key_log_line(label, client_random, secret));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn both_sides_log_the_client_random_and_the_master_secret() {
    let (client_log, server_log) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
    let logged = |b: ConfigBuilder, log: &Arc<Lines>| {
        Arc::new(b.key_log(log.clone()).allow_session_export(true).build().unwrap())
    };
    let dtls12 = || Config::builder().protocol_versions(Protocol::Dtls1_2, Protocol::Dtls1_2);
    let client_cfg = logged(dtls12().psk("id", b"key".to_vec()), &client_log);
    let server_cfg = logged(dtls12().psk_server_key(b"key".to_vec()).cookie_verification(false), &server_log);
    let now = Instant::now();
    let mut client = Connection::client(client_cfg, now).unwrap();
    let mut first = Vec::new();
    assert!(client.poll_transmit(&mut first).is_some());
    // The ClientHello's random: after the record header (13), the handshake header (12) and
    // the version (2).
    let random = first[27..59].to_vec();
    let mut server = Connection::server(server_cfg, now).unwrap();
    server.handle_datagram(now, &mut first).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());

    let lines = client_log.0.lock().unwrap().clone();
    assert_eq!(lines, server_log.0.lock().unwrap().clone(), "both sides log the same line");
    assert_eq!(lines.len(), 1);
    let fields: Vec<&str> = lines[0].trim_end().split(' ').collect();
    assert_eq!(fields[..2], ["CLIENT_RANDOM", &hex(&random)[..]]);
    assert!(lines[0].ends_with('\n'));
    // The secret is the master secret: the exported session holds it too (after the magic,
    // the side, the suite and the extended-master-secret flag).
    let exported = client.export_session().unwrap();
    assert_eq!(fields[2], hex(&exported[12..60]));
    assert_eq!(&exported[60..92], &random[..]);
}

#[test]
fn both_sides_log_the_dtls13_traffic_secrets_under_the_client_random() {
    let (client_log, server_log) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
    let client_cfg =
        Arc::new(Config::builder().psk("id", b"key".to_vec()).key_log(client_log.clone()).build().unwrap());
    let server_cfg = Arc::new(
        Config::builder()
            .psk_server_key(b"key".to_vec())
            .cookie_verification(false)
            .key_log(server_log.clone())
            .build()
            .unwrap(),
    );
    let now = Instant::now();
    let mut client = Connection::client(client_cfg, now).unwrap();
    let mut first = Vec::new();
    assert!(client.poll_transmit(&mut first).is_some());
    let random = hex(&first[27..59]);
    let mut server = Connection::server(server_cfg, now).unwrap();
    server.handle_datagram(now, &mut first).unwrap();
    pump(now, &mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.protocol(), Some(Protocol::Dtls1_3), "the default offers DTLS 1.3");

    let lines = client_log.0.lock().unwrap().clone();
    assert_eq!(lines, server_log.0.lock().unwrap().clone(), "both sides log the same lines");
    let labels: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
            "EXPORTER_SECRET"
        ]
    );
    for line in &lines {
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert_eq!(fields[1], random, "{line}");
        assert_eq!(fields[2].len(), 64, "a SHA-256 suite's secrets are 32 bytes: {line}");
    }
}

#[test]
fn nothing_is_logged_without_a_key_log() {
    let cfg = Config::builder().psk("id", b"key".to_vec()).build().unwrap();
    assert!(format!("{cfg:?}").contains("key_log: false"));
}
