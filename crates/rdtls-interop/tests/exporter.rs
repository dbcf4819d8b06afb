//! The DTLS 1.2 keying-material exporter (RFC 5705) against OpenSSL's: `openssl s_client` and
//! `s_server` print the material for `-keymatexport LABEL -keymatexportlen N` once the
//! handshake is done, and ours must be the same bytes, with either of us as the server.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::{Client, Config, Server, ServerEvent};
use rdtls_interop::{free_udp_port, loopback, psk, Peer, PSK_HEX};
use rdtls_proto::suites::{self, CipherSuite};

const T: Duration = Duration::from_secs(20);
const LABEL: &str = "EXPERIMENTAL-rdtls-interop";
const LEN: usize = 48;

/// The material OpenSSL printed (`Keying material: <hex>`), lower-cased.
fn openssl_material(peer: &Peer) -> String {
    peer.expect("Keying material: ", T);
    let out = peer.output();
    let at = out.find("Keying material: ").expect("printed") + "Keying material: ".len();
    out[at..].split_whitespace().next().expect("hex").to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Both PRF hashes: SHA-256 and SHA-384 suites.
const SUITES: [&CipherSuite; 2] = [&suites::TLS_PSK_WITH_AES_128_GCM_SHA256, &suites::TLS_PSK_WITH_AES_256_GCM_SHA384];

#[test]
fn s_client_exports_what_our_server_does() {
    for suite in SUITES {
        let config = Arc::new(
            Config::builder()
                .cipher_suites(&[suite])
                .psk_server_key(psk())
                .keying_material_exporter(true)
                .build()
                .unwrap(),
        );
        let mut server = Server::bind(loopback(0), config).unwrap();
        let target = format!("127.0.0.1:{}", server.local_addr().unwrap().port());
        let ours = thread::spawn(move || loop {
            match server.poll(Some(T)).unwrap() {
                Some(ServerEvent::Connected(p)) => {
                    let mut out = vec![0; LEN];
                    server.connection(p).unwrap().export_keying_material(LABEL.as_bytes(), None, &mut out).unwrap();
                    return out;
                }
                Some(_) => {}
                None => panic!("no handshake from s_client"),
            }
        });
        let len = LEN.to_string();
        let client = Peer::spawn(
            "openssl",
            &[
                "s_client",
                "-dtls1_2",
                "-connect",
                &target,
                "-psk",
                PSK_HEX,
                "-psk_identity",
                "exporter",
                "-cipher",
                suite.openssl_name,
                "-keymatexport",
                LABEL,
                "-keymatexportlen",
                &len,
                "-ign_eof",
            ],
        );
        let theirs = openssl_material(&client);
        assert_eq!(hex(&ours.join().unwrap()), theirs, "{suite}: {}", client.output());
    }
}

#[test]
fn our_client_exports_what_s_server_does() {
    for suite in SUITES {
        let port = free_udp_port().to_string();
        let len = LEN.to_string();
        let mut server = Peer::spawn(
            "openssl",
            &[
                "s_server",
                "-dtls1_2",
                "-listen",
                "-accept",
                &port,
                "-naccept",
                "1",
                "-nocert",
                "-psk",
                PSK_HEX,
                "-cipher",
                suite.openssl_name,
                "-keymatexport",
                LABEL,
                "-keymatexportlen",
                &len,
            ],
        );
        server.wait_started("ACCEPT", T);
        let config = Arc::new(
            Config::builder()
                .cipher_suites(&[suite])
                .psk("rust-client", psk())
                .keying_material_exporter(true)
                .build()
                .unwrap(),
        );
        let mut client = Client::connect(loopback(port.parse().unwrap()), config, Some(T)).unwrap();
        let ours = client.export_keying_material(LABEL.as_bytes(), None, LEN).unwrap();
        assert_eq!(hex(&ours), openssl_material(&server), "{suite}: {}", server.output());
        client.close().unwrap();
        server.expect("DONE", T);
    }
}
