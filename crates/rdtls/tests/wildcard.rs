//! A listener bound to a wildcard address (`0.0.0.0`, `::`) learns, for each datagram, the local
//! address it arrived on (`IP_PKTINFO`): it picks the certificate valid for that address when
//! the client sends no SNI (EdgerOS `ipcert`), and answers from that address, which a client's
//! connected socket requires. Both loopback addresses 127.0.0.1 and 127.0.0.2 reach the same
//! socket here; each must see its own certificate and its own replies.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rdtls::{CertResolver, Config, Connection, Listener, ListenerOptions, SocketOptions};

const T: Duration = Duration::from_secs(20);

struct Pki {
    roots: rdtls::RootStore,
    resolver: Arc<CertResolver>,
    /// The end-entity certificate valid for each address, by address.
    by_ip: Vec<(IpAddr, Vec<u8>)>,
}

/// A CA, a default certificate for a DNS name, and one certificate per address of `ips`, all in
/// one resolver that picks by local address when there is no SNI.
fn pki(ips: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let provider = rdtls::proto::crypto::default_provider();
    let leaf = |san: SanType| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![san];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let der = cert.der().to_vec();
        let certified = rdtls::CertifiedKey::from_pem_or_der(
            &*provider,
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            None,
        )
        .unwrap();
        (certified, der)
    };
    let resolver = Arc::new(CertResolver::new());
    resolver.set_default(leaf(SanType::DnsName("default.example".try_into().unwrap())).0);
    let mut by_ip = Vec::new();
    for ip in ips {
        let ip: IpAddr = ip.parse().unwrap();
        let (certified, der) = leaf(SanType::IpAddress(ip));
        resolver.add(&format!("ip-{ip}"), certified);
        by_ip.push((ip, der));
    }
    resolver.set_ip_certificates(true);
    let mut roots = rdtls::RootStore::new();
    roots.add_pem_or_der(ca.pem().as_bytes()).unwrap();
    Pki { roots, resolver, by_ip }
}

/// Echoes every message of every accepted connection.
fn echo(listener: Listener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Ok(mut c) = listener.accept_timeout(T) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n) = c.recv(&mut buf, Some(T)) {
                    if c.send(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// Connects to `ip` on `port` without a name (the address is checked), checks the certificate
/// is the one for `ip`, and exchanges a message both ways.
fn connect_and_echo(p: &Pki, ip: IpAddr, port: u16) {
    let cfg = Arc::new(Config::builder().root_store(p.roots.clone()).build().unwrap());
    let mut c = Connection::connect(SocketAddr::new(ip, port), cfg, Some(T)).unwrap_or_else(|e| panic!("{ip}: {e}"));
    let expected = &p.by_ip.iter().find(|(a, _)| *a == ip).unwrap().1;
    assert_eq!(c.peer_certificates()[0].as_ref(), &expected[..], "{ip}: the certificate for the address reached");
    let msg = format!("hello via {ip}");
    c.send(msg.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = c.recv(&mut buf, Some(T)).unwrap_or_else(|e| panic!("{ip}: no answer from the address reached: {e}"));
    assert_eq!(&buf[..n], msg.as_bytes());
}

#[test]
fn a_wildcard_listener_picks_the_certificate_of_the_address_reached_and_answers_from_it() {
    let p = pki(&["127.0.0.1", "127.0.0.2"]);
    let server = Arc::new(Config::builder().cert_resolver(p.resolver.clone()).build().unwrap());
    for own_sockets in [false, true] {
        let options = ListenerOptions::default().connection_sockets(own_sockets);
        let listener = Listener::bind_with("0.0.0.0:0".parse().unwrap(), server.clone(), options).unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = echo(listener);
        for ip in ["127.0.0.2", "127.0.0.1", "127.0.0.2"] {
            connect_and_echo(&p, ip.parse().unwrap(), port);
        }
        drop(t);
    }
}

#[test]
fn a_dual_stack_wildcard_listener_does_the_same_for_ipv4_clients() {
    let p = pki(&["127.0.0.1", "127.0.0.2", "::1"]);
    let server = Arc::new(Config::builder().cert_resolver(p.resolver.clone()).build().unwrap());
    let options = ListenerOptions::default().socket(SocketOptions::default().ipv6_only(false));
    let listener = Listener::bind_with("[::]:0".parse().unwrap(), server, options).unwrap();
    let port = listener.local_addr().unwrap().port();
    let _t = echo(listener);
    for ip in ["127.0.0.2", "::1", "127.0.0.1"] {
        connect_and_echo(&p, ip.parse().unwrap(), port);
    }
}
