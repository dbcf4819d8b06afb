//! Our client against our server over real loopback sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rdtls::{Client, Config, Server, ServerEvent};

#[test]
fn psk_client_and_server_over_loopback() {
    let server_cfg = Arc::new(Config::builder().psk_server_key(b"0123456789abcdef".to_vec()).build().unwrap());
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let addr: SocketAddr = server.local_addr().unwrap();
    let t = thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < 3 {
            match server.poll(Some(Duration::from_secs(10))).unwrap() {
                Some(ServerEvent::Message(peer, data)) => {
                    let mut reply = b"to ".to_vec();
                    reply.extend_from_slice(peer.to_string().as_bytes());
                    reply.extend_from_slice(b": ACK");
                    server.send_to(peer, &reply).unwrap();
                    got.push(data);
                }
                Some(_) => {}
                None => panic!("server timed out"),
            }
        }
        server.shutdown().unwrap();
        got
    });
    let client_cfg = Arc::new(Config::builder().psk("alice", b"0123456789abcdef".to_vec()).build().unwrap());
    let mut client = Client::connect(addr, client_cfg, Some(Duration::from_secs(10))).unwrap();
    let local = client.local_addr().unwrap();
    let mut buf = [0u8; 1500];
    for i in 0..3 {
        let msg = format!("ping {i}");
        client.send(msg.as_bytes()).unwrap();
        let n = client.recv(&mut buf, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(&buf[..n], format!("to {local}: ACK").as_bytes());
    }
    let got = t.join().unwrap();
    assert_eq!(got, [b"ping 0".to_vec(), b"ping 1".to_vec(), b"ping 2".to_vec()]);
    // The server's shutdown sent close_notify.
    let err = client.recv(&mut buf, Some(Duration::from_secs(10))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn certificate_client_and_server_over_loopback() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    let provider = rdtls::proto::crypto::default_provider();
    let certified =
        rdtls::CertifiedKey::from_pem_or_der(&*provider, cert.pem().as_bytes(), key.serialize_pem().as_bytes(), None)
            .unwrap();
    let mut roots = rdtls::RootStore::new();
    roots.add_pem_or_der(ca.pem().as_bytes()).unwrap();

    let server_cfg = Arc::new(Config::builder().certificate(certified).build().unwrap());
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), server_cfg).unwrap();
    let addr = server.local_addr().unwrap();
    let t = thread::spawn(move || loop {
        match server.poll(Some(Duration::from_secs(10))).unwrap() {
            Some(ServerEvent::Message(peer, data)) => {
                server.send_to(peer, &data).unwrap();
                return;
            }
            Some(_) => {}
            None => panic!("server timed out"),
        }
    });
    let client_cfg = Arc::new(Config::builder().root_store(roots.clone()).build().unwrap());
    let mut client =
        Client::connect_with_name(addr, "localhost", client_cfg.clone(), Some(Duration::from_secs(10))).unwrap();
    // DTLS 1.3 by default, authenticated by the server's certificate.
    assert_eq!(client.connection().protocol(), Some(rdtls_proto::Protocol::Dtls1_3));
    assert_eq!(client.connection().peer_certificates().len(), 1);
    client.send(b"echo me").unwrap();
    let mut buf = [0u8; 64];
    let n = client.recv(&mut buf, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(&buf[..n], b"echo me");
    t.join().unwrap();
}

#[test]
fn system_roots_load() {
    let roots = rdtls::system_roots().expect("the machine has a system trust store (ca-certificates)");
    assert!(roots.len() > 10, "only {} system roots", roots.len());
}
