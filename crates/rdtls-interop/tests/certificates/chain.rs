use super::*;

/// s_server sends its leaf and the intermediate (`-cert_chain`, no `-CAfile`).
#[test]
fn openssl_our_client() {
    let leaf = &pki().server_via_intermediate;
    let f = PeerFiles::new("s-server-chain", leaf);
    let port = free_udp_port();
    let mut server = s_server(port, ECDSA_GCM.suite, &f, &[]);
    let config = client_config(ECDSA_GCM.suite, None, None);
    let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()));
    let intermediate = pki().intermediate.cert_der();
    assert_eq!(client.connection().peer_certificates(), [leaf.der.clone(), intermediate]);
    talk_to_s_server(&mut client, &mut server);
}

/// Our server sends its leaf and the intermediate; s_client verifies the three-level chain.
#[test]
fn openssl_our_server() {
    let leaf = &pki().server_via_intermediate;
    let f = PeerFiles::new("s-client-chain", &pki().client_ecdsa);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::None, None));
    let mut cli = s_client(server.addr.port(), ECDSA_GCM.suite, &f, &[]);
    let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[]);
    s_client_verified(&cli, ECDSA_GCM.suite);
    let out = cli.output();
    for line in [
        "depth=2 CN = rdtls-interop root",
        "depth=1 CN = rdtls-interop intermediate",
        "depth=0 CN = localhost",
        " 0 s:CN = localhost\n   i:CN = rdtls-interop intermediate",
        " 1 s:CN = rdtls-interop intermediate\n   i:CN = rdtls-interop root",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains(" 2 s:"), "s_client got more than two certificates:\n{out}");
    cli.send_line("hello from openssl");
    expect_line(&server, &cli, peer, "hello from openssl");
    cli.expect(&format!("to {peer}: ACK"), T);
    server.finish();
}

/// gnutls-serv sends every certificate of its file: the leaf and the intermediate.
#[test]
fn gnutls_our_client() {
    let leaf = &pki().server_via_intermediate;
    let f = PeerFiles::new("gnutls-serv-chain", leaf);
    let port = free_udp_port();
    let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[]);
    let config = client_config(ECDSA_GCM.suite, None, None);
    let mut client = Client::connect_with_name(loopback(port), "localhost", config, Some(T))
        .unwrap_or_else(|e| panic!("{e}; gnutls-serv printed:\n{}", server.output()));
    let intermediate = pki().intermediate.cert_der();
    assert_eq!(client.connection().peer_certificates(), [leaf.der.clone(), intermediate]);
    talk_to_gnutls_serv(&mut client, &server);
}

/// Our server sends its leaf and the intermediate; gnutls-cli verifies them.
#[test]
fn gnutls_our_server() {
    let leaf = &pki().server_via_intermediate;
    let f = PeerFiles::new("gnutls-cli-chain", &pki().client_ecdsa);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, leaf, ClientAuth::None, None));
    let mut cli = gnutls_cli(server.addr.port(), &ECDSA_GCM.priority(), &f, &[]);
    let peer = expect_connected(&server, &cli, ECDSA_GCM.suite, Some("localhost"), &[]);
    gnutls_cli_verified(&cli, &ECDSA_GCM, 2);
    let out = cli.output();
    assert!(
        out.contains(
            "- Certificate[1] info:\n - subject `CN=rdtls-interop intermediate', issuer `CN=rdtls-interop root'"
        ),
        "{out}"
    );
    cli.send_line("hello from gnutls");
    expect_line(&server, &cli, peer, "hello from gnutls");
    cli.expect(&format!("to {peer}: ACK"), T);
    server.finish();
}
