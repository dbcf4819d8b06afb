//! DTLS 1.2 session resumption with OpenSSL and GnuTLS, both roles, by ticket and by session
//! ID alone. Each resumed handshake is checked on the wire: the server's flight carries no
//! Certificate (nor any key exchange), only ServerHello, a ticket when one was asked for,
//! ChangeCipherSpec and Finished.
//!
//! Peer behaviour relied on: `s_client -sess_out` writes the session once the handshake is
//! done, `-sess_in` offers it and prints `Reused` when the server resumed it, `-no_ticket`
//! asks for no ticket (session ID only); `s_server -no_ticket` issues none; `gnutls-cli
//! --resume` connects, then resumes at once and prints `This is a resumed session`;
//! `gnutls-serv` resumes by ticket, and by session ID with `--noticket`.

use super::*;
use rdtls::{Observed, Observer, SocketOptions};
use rdtls_proto::resumption::SessionStore;
use std::sync::Mutex;

use peers::{gnutls_cli, gnutls_serv, s_client, s_server, CLI_EXIT};

const ECDSA: &rdtls::CipherSuite = &suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;

/// The types of the plaintext (epoch 0) handshake messages in a DTLS 1.2 datagram.
fn handshake_types(datagram: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = datagram;
    while rest.len() >= 13 {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        if rest[0] == 22 && rest[3..5] == [0, 0] && rest.len() > 13 {
            types.push(rest[13]);
        }
        rest = rest.get(13 + len..).unwrap_or_default();
    }
    types
}

const SERVER_HELLO: u8 = 2;
const NEW_SESSION_TICKET: u8 = 4;
const CERTIFICATE: u8 = 11;
const SERVER_KEY_EXCHANGE: u8 = 12;
const FINISHED: u8 = 20;

/// The next handshake our server completes: the peer's address and whether it resumed.
/// (The end of an earlier connection may come first.)
fn connected(server: &OurServer, peer: &Peer) -> (SocketAddr, bool) {
    loop {
        match server.next("a handshake", peer) {
            Seen::Connected { peer: addr, resumed, suite, .. } => {
                assert_eq!(suite, Some(ECDSA));
                return (addr, resumed);
            }
            Seen::Closed { error: None | Some(rdtls::Error::RemoteClosed) } => {}
            other => panic!("expected a handshake, got {other:?}; the peer printed:\n{}", peer.output()),
        }
    }
}

/// The types of the handshake messages OpenSSL's `-msg` printed as received (`<<< `) or sent
/// (`>>> `). This OpenSSL names no DTLS message: each record is a line naming its content
/// type, then its bytes in hex, a handshake record's starting with the message type.
fn printed_by_openssl(out: &str, direction: &str) -> Vec<u8> {
    let lines: Vec<&str> = out.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with(direction) && w[0].contains("content_type=22)"))
        .filter_map(|w| u8::from_str_radix(w[1].split_whitespace().next()?, 16).ok())
        // The HelloVerifyRequest of the cookie exchange comes before either handshake.
        .filter(|t| *t != 3)
        .collect()
}

#[test]
fn s_client_resumes_with_our_server_by_ticket_and_by_session_id() {
    let f = PeerFiles::new("s-client-resume", &pki().client_ecdsa);
    for ticket in [true, false] {
        let server = OurServer::start(server_config(ECDSA, &pki().server_ecdsa, ClientAuth::None, None));
        let session = std::path::Path::new(&f.root).with_file_name(if ticket { "ticket.pem" } else { "id.pem" });
        let session = session.to_str().expect("utf-8 path").to_owned();
        let no_ticket: &[&str] = if ticket { &[] } else { &["-no_ticket"] };
        let mut args = vec!["-msg", "-sess_out", session.as_str()];
        args.extend_from_slice(no_ticket);
        let cli = s_client(server.addr.port(), ECDSA, &f, &args);
        let (_, resumed) = connected(&server, &cli);
        assert!(!resumed);
        cli.expect("Verify return code: 0 (ok)", T);
        assert!(cli.wait_for("New, TLSv1.2", T), "{}", cli.output());
        drop(cli);

        let mut args = vec!["-msg", "-sess_in", session.as_str()];
        args.extend_from_slice(no_ticket);
        let mut cli = s_client(server.addr.port(), ECDSA, &f, &args);
        let (peer, resumed) = connected(&server, &cli);
        assert!(resumed, "{}", cli.output());
        assert!(cli.wait_for("Reused, TLSv1.2", T), "{}", cli.output());
        // ServerHello, the ticket if one was asked for, and Finished (20), which s_client
        // shows decrypted.
        let got = printed_by_openssl(&cli.output(), "<<< ");
        let expected: &[u8] =
            if ticket { &[SERVER_HELLO, NEW_SESSION_TICKET, FINISHED] } else { &[SERVER_HELLO, FINISHED] };
        assert_eq!(got, expected, "{}", cli.output());
        cli.send_line("hello after resumption");
        expect_line(&server, &cli, peer, "hello after resumption");
        cli.expect(&format!("to {peer}: ACK"), T);
        server.finish();
    }
}

/// Connects our client (with `store`) to a server on `port`; returns the client and the
/// handshake message types it received in plaintext.
fn our_client(port: u16, store: &Arc<SessionStore>, peer: &Peer) -> (Client, Vec<u8>) {
    let config = Arc::new(
        Config::builder()
            .cipher_suites(&[ECDSA])
            .root_store(pki().root.roots())
            .session_store(store.clone())
            .build()
            .unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let observer = Observer::new(move |o| {
        if let Observed::Received { datagram, .. } = o {
            log.lock().unwrap().extend(handshake_types(datagram));
        }
    });
    let options = SocketOptions::default().observer(observer);
    let client = Client::connect_with(loopback(port), Some("localhost"), config, &options, Some(T))
        .unwrap_or_else(|e| panic!("{e}; the server printed:\n{}", peer.output()));
    let types = seen.lock().unwrap().clone();
    (client, types)
}

/// Resumed: the server's plaintext messages were its ServerHello and, only where tickets are
/// on, perhaps a new ticket (OpenSSL renews it, GnuTLS does not).
fn assert_resumed_on_the_wire(client: &Client, types: &[u8], ticket: bool) {
    assert!(client.resumed());
    // The HelloVerifyRequest (3) of a cookie exchange may come first.
    let types: Vec<u8> = types.iter().copied().filter(|t| *t != 3).collect();
    assert_eq!(types.first(), Some(&SERVER_HELLO), "{types:?}");
    let allowed: &[u8] = if ticket { &[SERVER_HELLO, NEW_SESSION_TICKET] } else { &[SERVER_HELLO] };
    assert!(types.iter().all(|t| allowed.contains(t)), "{types:?}");
    assert!(!types.contains(&CERTIFICATE) && !types.contains(&SERVER_KEY_EXCHANGE));
    assert_eq!(client.peer_certificates(), [pki().server_ecdsa.der.clone()]);
}

/// `s_server` keeps its socket connected to its first client after that client leaves: the
/// second connection comes from the same port, over a socket of ours, and what `s_server`
/// sent is read from its `-msg` output.
#[test]
fn our_client_resumes_with_s_server_with_and_without_tickets() {
    for ticket in [true, false] {
        let f = PeerFiles::new("s-server-resume", &pki().server_ecdsa);
        let port = free_udp_port();
        let extra: &[&str] = if ticket { &["-naccept", "2", "-msg"] } else { &["-naccept", "2", "-msg", "-no_ticket"] };
        let mut server = s_server(port, ECDSA, &f, extra);
        let store = Arc::new(SessionStore::new(8));
        let config = Arc::new(
            Config::builder()
                .cipher_suites(&[ECDSA])
                .root_store(pki().root.roots())
                .session_store(store.clone())
                .build()
                .unwrap(),
        );
        let connect = |local: SocketAddr| {
            let socket = std::net::UdpSocket::bind(local).unwrap();
            socket.connect(loopback(port)).unwrap();
            let name = rdtls::proto::pki::ServerName::try_from("localhost").unwrap();
            Client::handshake_with_name(socket, Some(name), config.clone(), Some(T))
                .unwrap_or_else(|e| panic!("{e}; s_server printed:\n{}", server.output()))
        };
        let mut client = connect(loopback(0));
        let local = client.local_addr().unwrap();
        assert!(!client.resumed());
        let session = client.session().expect("a session");
        assert_eq!(session.ticket().is_empty(), !ticket);
        assert_eq!(store.len(), 1);
        // The socket stays open until s_server is done: its close_notify must not meet a
        // closed port, whose ICMP error would fail its next accept.
        client.close().unwrap();
        server.expect("DONE", T);
        drop(client);
        let first = printed_by_openssl(&server.output(), ">>> ");
        assert!(first.contains(&CERTIFICATE), "{first:?}");

        let mut client = connect(local);
        assert!(client.resumed());
        assert_eq!(client.peer_certificates(), [pki().server_ecdsa.der.clone()]);
        client.send(b"hello after resumption\n").unwrap();
        server.expect("hello after resumption", T);
        client.close().unwrap();
        server.wait_exit(T);
        let all = printed_by_openssl(&server.output(), ">>> ");
        // ServerHello and Finished; with tickets, s_server renews one only when it wants to.
        let second: Vec<u8> =
            all[first.len()..].iter().copied().filter(|t| !(ticket && *t == NEW_SESSION_TICKET)).collect();
        assert_eq!(second, [SERVER_HELLO, FINISHED], "{}", server.output());
    }
}

#[test]
fn gnutls_cli_resumes_with_our_server() {
    let f = PeerFiles::new("gnutls-cli-resume", &pki().client_ecdsa);
    for ticket in [true, false] {
        let server = OurServer::start(server_config(ECDSA, &pki().server_ecdsa, ClientAuth::None, None));
        let extra: &[&str] = if ticket { &["--resume"] } else { &["--resume", "--noticket"] };
        let cli = gnutls_cli(server.addr.port(), &ECDSA_GCM.priority(), &f, extra);
        assert!(!connected(&server, &cli).1);
        let (_, resumed) = connected(&server, &cli);
        assert!(resumed, "{}", cli.output());
        cli.expect("*** This is a resumed session", T);
        assert!(!cli.printed(CLI_EXIT), "{}", cli.output());
        drop(cli);
        drop(server);
    }
}

#[test]
fn our_client_resumes_with_gnutls_serv_with_and_without_tickets() {
    for ticket in [true, false] {
        let f = PeerFiles::new("gnutls-serv-resume", &pki().server_ecdsa);
        let port = free_udp_port();
        // No client certificate asked for: its empty Certificate would be the only one seen.
        let mut extra = vec!["--disable-client-cert"];
        if !ticket {
            extra.push("--noticket");
        }
        let server = gnutls_serv(port, &ECDSA_GCM.priority(), &f, &extra);
        let store = Arc::new(SessionStore::new(8));
        let (mut client, types) = our_client(port, &store, &server);
        assert!(!client.resumed() && types.contains(&CERTIFICATE));
        client.close().unwrap();
        let (mut client, types) = our_client(port, &store, &server);
        assert_resumed_on_the_wire(&client, &types, ticket);
        client.send(b"hello after resumption").unwrap();
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf, Some(T)).unwrap();
        assert_eq!(&buf[..n], b"hello after resumption");
        client.close().unwrap();
    }
}
