//! DTLS-SRTP (RFC 5764) against OpenSSL and GnuTLS, both roles, DTLS 1.2: the peers agree with
//! us on the SRTP protection profile, and their export of the SRTP keying material
//! (`EXTRACTOR-dtls_srtp`, `2 × (key + salt)` bytes) is ours byte for byte: both OpenSSL
//! roles and `gnutls-cli` print it. `gnutls-serv` prints neither, so against it the test checks
//! the profile our client got (GnuTLS's choice rule gives it) and that data flows.
//!
//! Peer behaviour relied on (OpenSSL 3.0, GnuTLS 3.7):
//! - `openssl s_client` and `s_server` print `SRTP Extension negotiated, profile=NAME` and, with
//!   `-keymatexport`, `Keying material: HEX`. OpenSSL knows the AEAD profiles of RFC 7714.
//! - `gnutls-cli` prints `- SRTP profile: NAME` and `- Key material: HEX`; `gnutls-serv` prints
//!   nothing of either. GnuTLS 3.7 knows only the AES-CM profiles (an AEAD one is a syntax
//!   error), and its server takes the client's first profile it shares, not its own first.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::{Client, Config, Server, ServerEvent, SrtpKeyingMaterial, SrtpProfile};
use rdtls_interop::{free_udp_port, loopback, psk, require, Peer, PSK_HEX};
use rdtls_proto::suites;

use SrtpProfile::{AeadAes128Gcm, AeadAes256Gcm, Aes128CmHmacSha1_32, Aes128CmHmacSha1_80};

const T: Duration = Duration::from_secs(20);
const LABEL: &str = "EXTRACTOR-dtls_srtp";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex a peer printed after `prefix`, lower-cased.
fn printed_hex(peer: &Peer, prefix: &str) -> String {
    peer.expect(prefix, T);
    let out = peer.output();
    let at = out.find(prefix).expect("printed") + prefix.len();
    out[at..].split_whitespace().next().expect("hex").to_ascii_lowercase()
}

/// The export length of `profile`'s keying material.
fn material_len(profile: SrtpProfile) -> String {
    (2 * (profile.master_key_len() + profile.master_salt_len())).to_string()
}

/// OpenSSL's name of a profile (`SRTP_AES128_CM_SHA1_80`).
fn openssl_name(profile: SrtpProfile) -> &'static str {
    match profile {
        Aes128CmHmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
        Aes128CmHmacSha1_32 => "SRTP_AES128_CM_SHA1_32",
        p => p.name(),
    }
}

fn openssl_list(profiles: &[SrtpProfile]) -> String {
    profiles.iter().map(|p| openssl_name(*p)).collect::<Vec<_>>().join(":")
}

/// Our server, with `profiles`: the profile and keying material of its first connection.
fn our_server(profiles: &[SrtpProfile]) -> (u16, thread::JoinHandle<SrtpKeyingMaterial>) {
    let config = Config::builder()
        .cipher_suites(&[&suites::TLS_PSK_WITH_AES_128_GCM_SHA256])
        .psk_server_key(psk())
        .srtp_profiles(profiles)
        .build()
        .unwrap();
    let mut server = Server::bind(loopback(0), Arc::new(config)).unwrap();
    let port = server.local_addr().unwrap().port();
    let ours = thread::spawn(move || loop {
        match server.poll(Some(T)).unwrap() {
            Some(ServerEvent::Connected(p)) => return server.connection(p).unwrap().srtp_keying_material().unwrap(),
            Some(_) => {}
            None => panic!("no handshake within {T:?}"),
        }
    });
    (port, ours)
}

/// Checks that our server chose `chosen`, that `client` says so (`said`), and that the keying
/// material it printed after `key_prefix` is ours.
fn client_agrees(
    client: &Peer,
    ours: thread::JoinHandle<SrtpKeyingMaterial>,
    chosen: SrtpProfile,
    said: &str,
    key_prefix: &str,
) {
    let keys = ours.join().unwrap();
    assert_eq!(keys.profile(), chosen);
    client.expect(said, T);
    assert_eq!(printed_hex(client, key_prefix), hex(keys.as_bytes()), "{}", client.output());
}

fn our_client(port: u16, profiles: &[SrtpProfile]) -> Client {
    let config = Config::builder()
        .cipher_suites(&[&suites::TLS_PSK_WITH_AES_128_GCM_SHA256])
        .psk("srtp-client", psk())
        .srtp_profiles(profiles)
        .build()
        .unwrap();
    Client::connect(loopback(port), Arc::new(config), Some(T)).unwrap()
}

#[test]
fn s_client_agrees_with_our_server_on_the_profile_and_the_keys() {
    // Our server's order decides: AEAD-128 is its first that the client offers.
    let (port, ours) = our_server(&[AeadAes256Gcm, AeadAes128Gcm, Aes128CmHmacSha1_80]);
    let target = format!("127.0.0.1:{port}");
    let offer = openssl_list(&[Aes128CmHmacSha1_80, AeadAes128Gcm]);
    let len = material_len(AeadAes128Gcm);
    let args = ["s_client", "-dtls1_2", "-connect", &target, "-psk", PSK_HEX, "-psk_identity", "srtp"];
    let mut args = args.to_vec();
    args.extend(["-use_srtp", &offer, "-keymatexport", LABEL, "-keymatexportlen", &len, "-ign_eof"]);
    let client = Peer::spawn("openssl", &args);
    let said = "SRTP Extension negotiated, profile=SRTP_AEAD_AES_128_GCM";
    client_agrees(&client, ours, AeadAes128Gcm, said, "Keying material: ");
}

#[test]
fn our_client_agrees_with_s_server_on_the_profile_and_the_keys() {
    for (theirs, chosen) in [
        (vec![AeadAes256Gcm, Aes128CmHmacSha1_32], AeadAes256Gcm),
        (vec![Aes128CmHmacSha1_32, Aes128CmHmacSha1_80], Aes128CmHmacSha1_32),
    ] {
        let port = free_udp_port().to_string();
        let (list, len) = (openssl_list(&theirs), material_len(chosen));
        let args = ["s_server", "-dtls1_2", "-listen", "-accept", &port, "-naccept", "1", "-nocert", "-psk", PSK_HEX];
        let mut args = args.to_vec();
        args.extend(["-use_srtp", &list, "-keymatexport", LABEL, "-keymatexportlen", &len]);
        let mut server = Peer::spawn("openssl", &args);
        server.wait_started("ACCEPT", T);
        let mut client = our_client(port.parse().unwrap(), &[Aes128CmHmacSha1_32, AeadAes256Gcm, Aes128CmHmacSha1_80]);
        assert_eq!(client.srtp_profile(), Some(chosen));
        let keys = client.srtp_keying_material().unwrap();
        server.expect(&format!("SRTP Extension negotiated, profile={}", openssl_name(chosen)), T);
        assert_eq!(printed_hex(&server, "Keying material: "), hex(keys.as_bytes()), "{}", server.output());
        client.close().unwrap();
        server.expect("DONE", T);
    }
}

#[test]
fn without_a_common_profile_s_server_and_our_client_go_on_without_srtp() {
    let port = free_udp_port().to_string();
    let args = ["s_server", "-dtls1_2", "-listen", "-accept", &port, "-naccept", "1", "-nocert", "-psk", PSK_HEX];
    let mut args = args.to_vec();
    args.extend(["-use_srtp", "SRTP_AES128_CM_SHA1_32"]);
    let mut server = Peer::spawn("openssl", &args);
    server.wait_started("ACCEPT", T);
    let mut client = our_client(port.parse().unwrap(), &[AeadAes128Gcm]);
    assert_eq!(client.srtp_profile(), None);
    assert!(client.srtp_keying_material().is_err());
    client.send(b"no srtp").unwrap();
    server.expect("no srtp", T);
    assert!(!server.printed("SRTP Extension negotiated"), "{}", server.output());
    client.close().unwrap();
    server.expect("DONE", T);
}

/// A GnuTLS PSK password file (`identity:hexkey`), removed when dropped.
struct PskFile(PathBuf);

impl PskFile {
    fn new(port: u16) -> Self {
        let path = std::env::temp_dir().join(format!("rdtls-interop-srtp-{}-{port}.psk", std::process::id()));
        fs::write(&path, format!("srtp-client:{PSK_HEX}\n")).expect("write PSK file");
        Self(path)
    }
}

impl Drop for PskFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

const GNUTLS_PRIORITY: &str = "NONE:+VERS-DTLS1.2:+PSK:+AES-128-GCM:+AEAD:+SIGN-ALL:+COMP-NULL:+GROUP-ALL";

#[test]
fn gnutls_cli_agrees_with_our_server_on_the_profile_and_the_keys() {
    require("stdbuf");
    let (port, ours) = our_server(&[Aes128CmHmacSha1_32, Aes128CmHmacSha1_80]);
    let port = port.to_string();
    let len = material_len(Aes128CmHmacSha1_32);
    let args = ["-o0", "gnutls-cli", "--udp", "-p", &port, "127.0.0.1", "--pskusername", "srtp-client"];
    let mut args = args.to_vec();
    args.extend(["--pskkey", PSK_HEX, "--priority", GNUTLS_PRIORITY]);
    args.extend(["--srtp-profiles", "SRTP_AES128_CM_HMAC_SHA1_80:SRTP_AES128_CM_HMAC_SHA1_32"]);
    args.extend(["--keymatexport", LABEL, "--keymatexportsize", &len]);
    let client = Peer::spawn("stdbuf", &args);
    client_agrees(
        &client,
        ours,
        Aes128CmHmacSha1_32,
        "- SRTP profile: SRTP_AES128_CM_HMAC_SHA1_32",
        "- Key material: ",
    );
}

#[test]
fn our_client_agrees_with_gnutls_serv_on_the_profile() {
    let port = free_udp_port();
    let passwd = PskFile::new(port);
    let port_s = port.to_string();
    let path = passwd.0.to_str().expect("UTF-8 temp path");
    let args = ["--udp", "--echo", "-p", &port_s, "--pskpasswd", path, "--priority", GNUTLS_PRIORITY];
    let mut args = args.to_vec();
    args.extend(["--srtp-profiles", "SRTP_AES128_CM_HMAC_SHA1_32:SRTP_AES128_CM_HMAC_SHA1_80"]);
    let mut server = Peer::spawn("gnutls-serv", &args);
    server.wait_started(&format!("listening on IPv4 0.0.0.0 port {port}...done"), T);
    // GnuTLS's server takes our first profile it shares.
    let mut client = our_client(port, &[AeadAes128Gcm, Aes128CmHmacSha1_80, Aes128CmHmacSha1_32]);
    assert_eq!(client.srtp_profile(), Some(Aes128CmHmacSha1_80));
    assert_eq!(client.srtp_keying_material().unwrap().as_bytes().len(), 60);
    client.send(b"srtp echo").unwrap();
    let mut buf = [0u8; 64];
    let n = client.recv(&mut buf, Some(T)).unwrap();
    assert_eq!(&buf[..n], b"srtp echo");
    client.close().unwrap();
}
