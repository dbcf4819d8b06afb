use super::*;

/// Our client's MTU. Our ClientHello is never fragmented (by design: servers that verify
/// cookies, and small stacks, drop fragmented ClientHellos), and with a certificate suite,
/// SNI and a cookie it is 154 bytes long: the MTU must hold it, and is still well below
/// the size of the client Certificate message (409 bytes).
const OUR_CLIENT_MTU: usize = 200;
/// Our server's MTU.
const OUR_SERVER_MTU: usize = 120;
/// OpenSSL 3.0 checks that a record fits the MTU before protecting it, without counting the
/// AEAD expansion (`dtls1_do_write` counts a MAC and CBC padding, zero for AEAD suites):
/// when it packs its encrypted Finished after the last handshake messages of a flight, the
/// datagram can exceed the MTU by up to the explicit nonce and tag of AES-GCM, 24 bytes.
/// Seen: s_client at 228 sent ClientKeyExchange, CertificateVerify, ChangeCipherSpec and
/// Finished in one 234-byte datagram.
const OPENSSL_AEAD_SLACK: usize = 8 + 16;

/// `(content type, epoch, length)` of each record of a datagram.
fn records(datagram: &[u8]) -> Vec<(u8, u16, usize)> {
    let (mut out, mut rest) = (Vec::new(), datagram);
    while rest.len() >= relay::RECORD_HEADER_LEN {
        let (epoch, len) =
            (u16::from_be_bytes([rest[3], rest[4]]), usize::from(u16::from_be_bytes([rest[11], rest[12]])));
        out.push((rest[0], epoch, len));
        rest = &rest[(relay::RECORD_HEADER_LEN + len).min(rest.len())..];
    }
    out
}

/// Checks one direction of a relayed handshake: every datagram is within `mtu` (but for a
/// datagram carrying an encrypted record, which may exceed it by `aead_slack`), and the
/// Certificate message traveled only in pieces, none of them whole, that reassemble to
/// `chain`.
fn assert_certificate_fragmented(
    who: &str,
    datagrams: &[Vec<u8>],
    mtu: usize,
    aead_slack: usize,
    chain: &[&CertificateDer<'_>],
) {
    assert!(!datagrams.is_empty(), "{who} sent nothing");
    for d in datagrams.iter().filter(|d| d.len() > mtu) {
        let recs = records(d);
        let encrypted = recs.iter().any(|&(_, epoch, _)| epoch > 0);
        assert!(
            encrypted && d.len() <= mtu + aead_slack,
            "{who} sent a {}-byte datagram over its MTU of {mtu}: records {recs:?}",
            d.len()
        );
        println!("{who} sent a {}-byte datagram over its MTU of {mtu} (records {recs:?})", d.len());
    }
    let m = relay::message(datagrams, CERTIFICATE);
    assert!(m.was_fragmented(), "{who} sent its Certificate whole: {:?}", m.pieces);
    assert_eq!(m.body, certificate_body(chain), "{who}'s Certificate reassembled to other bytes");
    let largest = datagrams.iter().map(Vec::len).max().unwrap_or(0);
    println!(
        "{who}: {} datagrams, largest {largest} (MTU {mtu}); Certificate ({} bytes) in {} fragments {:?}",
        datagrams.len(),
        m.body.len(),
        m.pieces.len(),
        m.pieces
    );
}

/// One side of a relayed handshake: who, its MTU, what it may exceed it by, its chain.
type Side<'a> = (&'a str, usize, usize, &'a [&'a CertificateDer<'a>]);

/// Checks both directions of a relayed mutual-authentication handshake: the cookie exchange
/// happened, and each side's Certificate traveled only in fragments within its MTU.
fn assert_certificates_fragmented(relay: &Relay, server: Side<'_>, client: Side<'_>) {
    let (to_server, to_client) = (relay.datagrams(Dir::ToServer), relay.datagrams(Dir::ToClient));
    relay::assert_cookie_exchange(&to_server, &to_client);
    assert_certificate_fragmented(server.0, &to_client, server.1, server.2, server.3);
    assert_certificate_fragmented(client.0, &to_server, client.1, client.2, client.3);
}

/// s_server (link MTU 256: 228-byte datagrams) sends its leaf and intermediate in fragments
/// and we reassemble them; our client (MTU 200) sends its certificate in fragments and
/// s_server reassembles and verifies it.
#[test]
fn openssl_our_client() {
    let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
    let f = PeerFiles::new("s-server-frag", leaf);
    let port = free_udp_port();
    let mtu = OPENSSL_LINK_MTU.to_string();
    #[rustfmt::skip]
    let mut server = s_server(port, ECDSA_GCM.suite, &f, &[
        "-mtu", &mtu, "-Verify", "1", "-verify_return_error", "-verifyCAfile", &f.root,
    ]);
    let relay = Relay::start(loopback(port));
    let config = client_config(ECDSA_GCM.suite, Some(client), Some(OUR_CLIENT_MTU));
    let mut conn = Client::connect_with_name(relay.addr(), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
    let intermediate = pki().intermediate.cert_der();
    assert_eq!(conn.connection().peer_certificates(), [leaf.der.clone(), intermediate.clone()]);
    talk_to_s_server(&mut conn, &mut server);
    assert_eq!(pem_after(&server.output(), "Client certificate"), Some(pem_body(&client.cert_pem)));
    assert_certificates_fragmented(
        &relay,
        ("s_server", OPENSSL_DATAGRAM_MTU, OPENSSL_AEAD_SLACK, &[&leaf.der, &intermediate]),
        ("our client", OUR_CLIENT_MTU, 0, &[&client.der]),
    );
}

/// Our server (MTU 120) sends its leaf and intermediate in fragments and s_client
/// reassembles and verifies them; s_client (228-byte datagrams) sends its certificate and
/// the root in fragments and our server reassembles and verifies them.
#[test]
fn openssl_our_server() {
    let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
    let f = PeerFiles::new("s-client-frag", client);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::Required, Some(OUR_SERVER_MTU)));
    let relay = Relay::start(server.addr);
    let mtu = OPENSSL_LINK_MTU.to_string();
    #[rustfmt::skip]
    let mut cli = s_client(relay.addr().port(), ECDSA_GCM.suite, &f, &[
        "-mtu", &mtu, "-cert", &f.cert, "-key", &f.key,
    ]);
    let root = pki().root.root_der();
    let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[&client.der, &root]);
    s_client_verified(&cli, ECDSA_GCM.suite);
    cli.send_line("fragmented hello from openssl");
    expect_line(&server, &cli, peer, "fragmented hello from openssl");
    cli.expect(&format!("to {peer}: ACK"), T);
    server.finish();
    let intermediate = pki().intermediate.cert_der();
    assert_certificates_fragmented(
        &relay,
        ("our server", OUR_SERVER_MTU, 0, &[&leaf.der, &intermediate]),
        ("s_client", OPENSSL_DATAGRAM_MTU, OPENSSL_AEAD_SLACK, &[&client.der, &root]),
    );
}

/// gnutls-serv (150-byte datagrams) and our client (MTU 200), both certificates fragmented.
#[test]
fn gnutls_our_client() {
    let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
    let f = PeerFiles::new("gnutls-serv-frag", leaf);
    let port = free_udp_port();
    let mtu = GNUTLS_MTU.to_string();
    #[rustfmt::skip]
    let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[
        "--mtu", &mtu, "--require-client-cert", "--verify-client-cert", "--x509cafile", &f.root,
    ]);
    let relay = Relay::start(loopback(port));
    let config = client_config(ECDSA_GCM.suite, Some(client), Some(OUR_CLIENT_MTU));
    let mut conn = Client::connect_with_name(relay.addr(), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
    let intermediate = pki().intermediate.cert_der();
    assert_eq!(conn.connection().peer_certificates(), [leaf.der.clone(), intermediate.clone()]);
    talk_to_gnutls_serv(&mut conn, &server);
    assert_certificates_fragmented(
        &relay,
        ("gnutls-serv", GNUTLS_MTU, 0, &[&leaf.der, &intermediate]),
        ("our client", OUR_CLIENT_MTU, 0, &[&client.der]),
    );
}

/// Our server (MTU 120) and gnutls-cli (150-byte datagrams), both certificates fragmented.
#[test]
fn gnutls_our_server() {
    let (leaf, client) = (&pki().server_via_intermediate, &pki().client_ecdsa);
    let f = PeerFiles::new("gnutls-cli-frag", client);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::Required, Some(OUR_SERVER_MTU)));
    let relay = Relay::start(server.addr);
    let mtu = GNUTLS_MTU.to_string();
    #[rustfmt::skip]
    let mut cli = gnutls_cli(relay.addr().port(), &ECDSA_GCM.priority(), &f, &[
        "--mtu", &mtu, "--x509certfile", &f.cert, "--x509keyfile", &f.key,
    ]);
    let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[&client.der]);
    gnutls_cli_verified(&cli, &ECDSA_GCM, 2);
    cli.send_line("fragmented hello from gnutls");
    expect_line(&server, &cli, peer, "fragmented hello from gnutls");
    cli.expect(&format!("to {peer}: ACK"), T);
    server.finish();
    let intermediate = pki().intermediate.cert_der();
    assert_certificates_fragmented(
        &relay,
        ("our server", OUR_SERVER_MTU, 0, &[&leaf.der, &intermediate]),
        ("gnutls-cli", GNUTLS_MTU, 0, &[&client.der]),
    );
}
