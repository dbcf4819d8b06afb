use super::*;

/// Our client against s_server presenting `leaf`: the handshake fails with
/// `PeerVerification(errors)` and s_server reports our alert, `alert`.
fn our_client_refuses_s_server(leaf: &Leaf, errors: Vec<CertificateError>, alert: &str) {
    let f = PeerFiles::new("s-server-refused", leaf);
    let port = free_udp_port();
    let server = s_server(port, ECDSA_GCM.suite, &f, &[]);
    let config = client_config(ECDSA_GCM.suite, None, None);
    let e = Client::connect_with_name(loopback(port), "localhost", config, Some(T)).unwrap_err();
    assert_eq!(*inner_error(&e), rdtls::Error::PeerVerification(errors), "{e}");
    server.expect(alert, T);
}

/// A certificate for another name: bad_certificate.
#[test]
fn openssl_other_name() {
    let errors = vec![CertificateError::HostNameMismatch];
    our_client_refuses_s_server(&pki().server_other_name, errors, "sslv3 alert bad certificate");
}

/// A certificate from an unknown CA: unknown_ca.
#[test]
fn openssl_unknown_ca() {
    let errors = vec![CertificateError::UnknownIssuer];
    our_client_refuses_s_server(&pki().server_unknown_ca, errors, "tlsv1 alert unknown ca");
}

/// Our server with `ClientAuth::Required` against s_client with `extra`: our server fails the
/// handshake with `PeerVerification(errors)`, and s_client reports our alert, `alert`.
fn our_server_refuses_s_client(client: &Leaf, extra: &[&str], errors: Vec<CertificateError>, alert: &str) {
    let f = PeerFiles::new("s-client-refused", client);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, &pki().server_ecdsa, ClientAuth::Required, None));
    let cli = s_client(server.addr.port(), ECDSA_GCM.suite, &f, extra);
    expect_refused(&server, &cli, rdtls::Error::PeerVerification(errors));
    cli.expect(alert, T);
    server.finish();
}

/// No client certificate: handshake_failure.
#[test]
fn openssl_no_client_certificate() {
    let errors = vec![CertificateError::NoPeerCertificate];
    our_server_refuses_s_client(&pki().client_ecdsa, &[], errors, "sslv3 alert handshake failure");
}

/// A client certificate from an unknown CA: unknown_ca.
#[test]
fn openssl_client_certificate_unknown_ca() {
    let client = &pki().client_unknown_ca;
    let f = PeerFiles::new("s-client-key", client);
    let errors = vec![CertificateError::UnknownIssuer];
    our_server_refuses_s_client(client, &["-cert", &f.cert, "-key", &f.key], errors, "tlsv1 alert unknown ca");
}

/// Our client against gnutls-serv presenting `leaf`. gnutls-serv names the alert it received
/// only in its record-layer debug output (`-d 5`).
fn our_client_refuses_gnutls_serv(leaf: &Leaf, errors: Vec<CertificateError>, alert: &str) {
    let f = PeerFiles::new("gnutls-serv-refused", leaf);
    let port = free_udp_port();
    let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &["-d", "5"]);
    let config = client_config(ECDSA_GCM.suite, None, None);
    let e = Client::connect_with_name(loopback(port), "localhost", config, Some(T)).unwrap_err();
    assert_eq!(*inner_error(&e), rdtls::Error::PeerVerification(errors), "{e}");
    server.expect(alert, T);
}

#[test]
fn gnutls_other_name() {
    let errors = vec![CertificateError::HostNameMismatch];
    our_client_refuses_gnutls_serv(&pki().server_other_name, errors, "Alert[2|42] - Certificate is bad - was received");
}

#[test]
fn gnutls_unknown_ca() {
    let errors = vec![CertificateError::UnknownIssuer];
    our_client_refuses_gnutls_serv(&pki().server_unknown_ca, errors, "Alert[2|48] - CA is unknown - was received");
}

/// Our server with `ClientAuth::Required` against gnutls-cli with `extra`.
fn our_server_refuses_gnutls_cli(client: &Leaf, extra: &[&str], errors: Vec<CertificateError>, alert: &str) {
    let f = PeerFiles::new("gnutls-cli-refused", client);
    let server = OurServer::start(server_config(ECDSA_GCM.suite, &pki().server_ecdsa, ClientAuth::Required, None));
    let cli = gnutls_cli(server.addr.port(), &ECDSA_GCM.priority(), &f, extra);
    expect_refused(&server, &cli, rdtls::Error::PeerVerification(errors));
    cli.expect(alert, T);
    cli.expect(CLI_EXIT, T);
    server.finish();
}

#[test]
fn gnutls_no_client_certificate() {
    let errors = vec![CertificateError::NoPeerCertificate];
    our_server_refuses_gnutls_cli(&pki().client_ecdsa, &[], errors, "*** Received alert [40]: Handshake failed");
}

#[test]
fn gnutls_client_certificate_unknown_ca() {
    let client = &pki().client_unknown_ca;
    let f = PeerFiles::new("gnutls-cli-key", client);
    let errors = vec![CertificateError::UnknownIssuer];
    #[rustfmt::skip]
    our_server_refuses_gnutls_cli(client, &["--x509certfile", &f.cert, "--x509keyfile", &f.key], errors, "*** Received alert [48]: CA is unknown");
}

/// The control of `mutual::gnutls_our_client_*`: with `--verify-client-cert`, gnutls-serv
/// does verify our certificate and refuses one from an unknown CA (access_denied).
#[test]
fn gnutls_serv_refuses_our_unknown_ca() {
    let f = PeerFiles::new("gnutls-serv-verifies", &pki().server_ecdsa);
    let port = free_udp_port();
    #[rustfmt::skip]
    let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &[
        "--require-client-cert", "--verify-client-cert", "--x509cafile", &f.root,
    ]);
    let config = client_config(ECDSA_GCM.suite, Some(&pki().client_unknown_ca), None);
    let e = Client::connect_with_name(loopback(port), "localhost", config, Some(T)).unwrap_err();
    assert_eq!(
        *inner_error(&e),
        rdtls::Error::AlertReceived(rdtls::proto::enums::AlertDescription::ACCESS_DENIED),
        "{e}; gnutls-serv printed:\n{}",
        server.output()
    );
}
