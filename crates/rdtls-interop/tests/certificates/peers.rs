//! The peer programs, both roles: OpenSSL's `s_server`/`s_client`, GnuTLS's
//! `gnutls-serv`/`gnutls-cli`, and how our side talks to them.

use super::*;

// ===== OpenSSL =====

/// OpenSSL's `-mtu` is the link MTU: over IPv4 its datagrams are 28 bytes (IP and UDP headers)
/// shorter. 256 is close to the smallest it accepts (228).
pub(crate) const OPENSSL_LINK_MTU: usize = 256;
pub(crate) const OPENSSL_DATAGRAM_MTU: usize = OPENSSL_LINK_MTU - 28;

/// Starts `s_server` for one association on `port` with the certificate files `f` and `extra`.
pub(crate) fn s_server(port: u16, suite: &rdtls::CipherSuite, f: &PeerFiles, extra: &[&str]) -> Peer {
    let port = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "s_server", "-dtls1_2", "-listen", "-accept", &port, "-naccept", "1",
        "-cert", &f.cert, "-key", &f.key, "-cipher", suite.openssl_name,
    ];
    if let Some(chain) = &f.intermediates {
        args.extend(["-cert_chain", chain.as_str()]);
    }
    args.extend_from_slice(extra);
    let mut server = Peer::spawn("openssl", &args);
    server.wait_started("ACCEPT", T);
    server
}

/// Exchanges a line each way with `s_server`, then closes.
pub(crate) fn talk_to_s_server(client: &mut Client, server: &mut Peer) {
    client.send(b"hello from rust").unwrap();
    server.expect("hello from rust", T);
    server.send_line("hello from openssl");
    // s_server sends what it reads from stdin, possibly split over several records.
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while !got.ends_with(b"\n") {
        let n = client.recv(&mut buf, Some(T)).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"hello from openssl\n");
    client.close().unwrap();
    server.expect("DONE", T);
}

/// Our client against `s_server` with the suite's certificate: the handshake (our client checks
/// the chain and the name `localhost`), the suite, the server certificate, data both ways.
pub(crate) fn our_client_against_s_server(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("s-server", leaf);
    let port = free_udp_port();
    let mut server = s_server(port, s.suite, &f, &[]);
    let config = client_config(s.suite, None, None);
    let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
    assert_eq!(client.connection().cipher_suite(), Some(s.suite));
    assert_eq!(client.connection().peer_certificates(), std::slice::from_ref(&leaf.der));
    assert!(client.connection().peer_verification_errors().is_empty());
    talk_to_s_server(&mut client, &mut server);
    server.expect(&format!("CIPHER is {}", s.suite.openssl_name), T);
}

/// Starts `s_client` towards `port`, trusting the test root and checking the name `localhost`
/// (also sent as SNI), with `extra`.
pub(crate) fn s_client(port: u16, suite: &rdtls::CipherSuite, f: &PeerFiles, extra: &[&str]) -> Peer {
    let target = format!("127.0.0.1:{port}");
    #[rustfmt::skip]
    let mut args = vec![
        "s_client", "-dtls1_2", "-connect", &target, "-servername", "localhost", "-CAfile", &f.root,
        "-verify_return_error", "-verify_hostname", "localhost", "-cipher", suite.openssl_name, "-ign_eof",
    ];
    args.extend_from_slice(extra);
    Peer::spawn("openssl", &args)
}

/// Checks what `s_client` printed about a successful handshake with our server.
pub(crate) fn s_client_verified(client: &Peer, suite: &rdtls::CipherSuite) {
    client.expect(&format!("Cipher is {}", suite.openssl_name), T);
    client.expect("Verify return code: 0 (ok)", T);
    assert!(client.printed("Verification: OK"), "{}", client.output());
    assert!(client.printed("Verified peername: localhost"), "{}", client.output());
}

/// `s_client` against our server with the suite's certificate: it verifies our chain and name.
pub(crate) fn s_client_against_our_server(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("s-client", &pki().client_ecdsa);
    let server = OurServer::start(server_config(s.suite, leaf, ClientAuth::None, None));
    let mut client = s_client(server.addr.port(), s.suite, &f, &[]);
    let peer = expect_connected(&server, &client, s.suite, Some("localhost"), &[]);
    s_client_verified(&client, s.suite);
    assert_eq!(pem_after(&client.output(), "Server certificate"), Some(pem_body(&leaf.cert_pem)));
    client.send_line("hello from openssl");
    expect_line(&server, &client, peer, "hello from openssl");
    client.expect(&format!("to {peer}: ACK"), T);
    server.finish();
}

// ===== GnuTLS =====

/// gnutls' `--mtu`: the largest datagram it sends (record headers included).
pub(crate) const GNUTLS_MTU: usize = 150;

/// Starts `gnutls-serv` as a DTLS echo server on `port` with the chain and key of `f`.
pub(crate) fn gnutls_serv(port: u16, priority: &str, f: &PeerFiles, extra: &[&str]) -> Peer {
    let port_s = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "--udp", "--echo", "-p", &port_s, "--x509certfile", &f.chain, "--x509keyfile", &f.key, "--priority", priority,
    ];
    args.extend_from_slice(extra);
    let mut server = Peer::spawn("gnutls-serv", &args);
    server.wait_started(&format!("listening on IPv4 0.0.0.0 port {port}...done"), T);
    server
}

/// Sends two messages to the echo server and checks they come back.
pub(crate) fn talk_to_gnutls_serv(client: &mut Client, server: &Peer) {
    let mut buf = [0u8; 1500];
    for msg in ["hello from rust", "second message from rust"] {
        client.send(msg.as_bytes()).unwrap();
        let n = client.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
        server.expect(&format!("*** Processing {} bytes command: {msg}", msg.len()), T);
    }
    client.close().unwrap();
}

/// Our client against `gnutls-serv` with the suite's certificate.
pub(crate) fn our_client_against_gnutls_serv(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("gnutls-serv", leaf);
    let port = free_udp_port();
    // Without --disable-client-cert gnutls-serv asks for a certificate: our client has none and
    // answers with an empty Certificate, which gnutls-serv accepts.
    let server = gnutls_serv(port, &s.priority(), &f, &[]);
    let config = client_config(s.suite, None, None);
    let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
    assert_eq!(client.connection().cipher_suite(), Some(s.suite));
    assert_eq!(client.connection().peer_certificates(), std::slice::from_ref(&leaf.der));
    talk_to_gnutls_serv(&mut client, &server);
}

/// Marker `gnutls_cli` makes the shell print when gnutls-cli exits, followed by its status.
pub(crate) const CLI_EXIT: &str = "gnutls-cli exit status: ";

/// Starts `gnutls-cli` unbuffered towards `port`, trusting the test root and checking the name
/// `localhost` (also sent as SNI), under a shell that prints [`CLI_EXIT`] and the exit status.
pub(crate) fn gnutls_cli(port: u16, priority: &str, f: &PeerFiles, extra: &[&str]) -> Peer {
    require("gnutls-cli");
    require("stdbuf");
    let port = port.to_string();
    #[rustfmt::skip]
    let mut args = vec![
        "-c", "stdbuf -o0 gnutls-cli \"$@\"; echo \"gnutls-cli exit status: $?\"", "sh",
        "--udp", "-p", &port, "127.0.0.1", "--x509cafile", &f.root, "--verify-hostname", "localhost",
        "--sni-hostname", "localhost", "--priority", priority,
    ];
    args.extend_from_slice(extra);
    Peer::spawn("sh", &args)
}

/// The session description gnutls-cli printed, e.g.
/// `(DTLS1.2-X.509)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(AES-128-GCM)`.
pub(crate) fn gnutls_description(cli: &Peer) -> String {
    cli.expect("- Description: ", T);
    let out = cli.output();
    let line = out.lines().find(|l| l.starts_with("- Description: ")).expect("description");
    line["- Description: ".len()..].to_owned()
}

/// Checks what gnutls-cli printed about a successful handshake with our server.
pub(crate) fn gnutls_cli_verified(cli: &Peer, s: &Suite, chain_len: usize) {
    cli.expect("- Handshake was completed", T);
    let out = cli.output();
    assert!(out.contains("- Status: The certificate is trusted."), "{out}");
    assert!(out.contains(&format!("- Got a certificate list of {chain_len} certificates.")), "{out}");
    let description = gnutls_description(cli);
    // e.g. (DTLS1.2-X.509)-(ECDHE-X25519)-(RSA-PSS-RSAE-SHA256)-(AES-128-GCM)
    let (kx, auth) = s.gnutls_kx.split_once('-').expect("ECDHE-<auth>");
    assert!(description.starts_with(&format!("(DTLS1.2-X.509)-({kx}-")), "{description}");
    assert!(description.contains(&format!(")-({auth}-")), "{description}");
    assert!(description.ends_with(&format!("-({})", s.gnutls_cipher)), "{description}");
}

/// `gnutls-cli` against our server with the suite's certificate: it verifies our chain and name.
pub(crate) fn gnutls_cli_against_our_server(s: &Suite) {
    let leaf = s.server_leaf();
    let f = PeerFiles::new("gnutls-cli", &pki().client_ecdsa);
    let server = OurServer::start(server_config(s.suite, leaf, ClientAuth::None, None));
    let mut cli = gnutls_cli(server.addr.port(), &s.priority(), &f, &[]);
    let peer = expect_connected(&server, &cli, s.suite, Some("localhost"), &[]);
    gnutls_cli_verified(&cli, s, 1);
    cli.send_line("hello from gnutls");
    expect_line(&server, &cli, peer, "hello from gnutls");
    cli.expect(&format!("to {peer}: ACK"), T);
    assert!(!cli.printed(CLI_EXIT), "{}", cli.output());
    server.finish();
}
