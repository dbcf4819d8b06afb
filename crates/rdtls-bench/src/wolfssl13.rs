//! wolfSSL 5.9's DTLS 1.3 in memory, through its API: the interop tests' wolfSSL harness with
//! its in-memory I/O callbacks, for the comparison column of the DTLS 1.3 figures. Server CPU
//! per handshake counts the server's wolfSSL calls only (and making its connection), the record
//! cost is one `wolfSSL_write` and one `wolfSSL_read`, and the memory is the heap of idle server
//! connections sharing one context, as a server's do.

use std::time::{Duration, Instant};

use crate::inmem::heap_in_use;
use crate::setup::{Credentials, Kind, PSK_IDENTITY, PSK_KEY, SERVER_NAME};

#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../../rdtls-interop/src/wolfssl/mod.rs"]
mod wolfssl;

use wolfssl::{Group, PskModes, WolfConfig, WolfPeer};

/// Most flights a handshake may take before the harness calls it stuck.
const MAX_ROUNDS: usize = 32;

/// A server and a client "prototype": never connected, they hold the contexts every measured
/// connection shares (a real server makes its context once).
pub(crate) struct Wolf {
    server_config: WolfConfig,
    client_config: WolfConfig,
    server: WolfPeer,
    client: WolfPeer,
}

impl Wolf {
    /// `kind`'s handshake with TLS13-AES128-GCM-SHA256 and X25519, as our DTLS 1.3 rows do:
    /// psk_dhe_ke for PSK; a P-256 certificate, checked against its CA and name, otherwise.
    pub(crate) fn new(kind: Kind, creds: &Credentials, cookie: bool) -> Self {
        let groups = [Group::X25519, Group::P256];
        let cipher = "TLS13-AES128-GCM-SHA256";
        let server = WolfConfig::server().ciphers(cipher).groups(&groups).mtu(1400).cookie(cookie);
        let client = WolfConfig::client().ciphers(cipher).groups(&groups).key_share(Group::X25519).mtu(1400);
        let identity = std::str::from_utf8(PSK_IDENTITY).expect("identity");
        let (server_config, client_config) = match kind {
            Kind::Psk => (
                server.psk(identity, PSK_KEY).psk_modes(PskModes::DheOnly),
                client.psk(identity, PSK_KEY).psk_modes(PskModes::DheOnly),
            ),
            Kind::Ecdsa => {
                (server.certificate(&creds.cert_pem, &creds.key_pem), client.ca(&creds.ca_pem).server_name(SERVER_NAME))
            }
        };
        let server = WolfPeer::in_memory(&server_config).expect("wolfSSL server context");
        let client = WolfPeer::in_memory(&client_config).expect("wolfSSL client context");
        Self { server_config, client_config, server, client }
    }

    /// One full handshake; adds the server's CPU time to `spent`. Returns (server, client).
    pub(crate) fn handshake(&self, spent: &mut Duration) -> (WolfPeer, WolfPeer) {
        let mut client = WolfPeer::in_memory_sharing(&self.client, &self.client_config).expect("wolfSSL client");
        let start = Instant::now();
        let mut server = WolfPeer::in_memory_sharing(&self.server, &self.server_config).expect("wolfSSL server");
        *spent += start.elapsed();
        let (mut client_done, mut server_done) = (false, false);
        for _ in 0..MAX_ROUNDS {
            if !client_done {
                client_done = client.try_handshake().expect("wolfSSL client handshake");
            }
            client.pass_to(&mut server);
            let start = Instant::now();
            if !server_done {
                server_done = server.try_handshake().expect("wolfSSL server handshake");
            }
            *spent += start.elapsed();
            server.pass_to(&mut client);
            if client_done && server_done {
                // The client takes the server's acknowledgement of its Finished.
                let mut scratch = [0u8; 64];
                assert_eq!(client.try_recv(&mut scratch).expect("wolfSSL client ACK"), None);
                return (server, client);
            }
        }
        panic!("wolfSSL handshake did not complete in {MAX_ROUNDS} rounds");
    }
}

/// Server CPU per handshake, µs.
pub(crate) fn handshake_cpu(kind: Kind, creds: &Credentials, cookie: bool, n: usize) -> impl FnMut() -> f64 {
    let wolf = Wolf::new(kind, creds, cookie);
    move || {
        let mut spent = Duration::ZERO;
        for _ in 0..n {
            drop(wolf.handshake(&mut spent));
        }
        spent.as_secs_f64() * 1e6 / n as f64
    }
}

/// An established PSK pair: (server, client), with the contexts they share.
pub(crate) fn pair(creds: &Credentials) -> (Wolf, WolfPeer, WolfPeer) {
    let wolf = Wolf::new(Kind::Psk, creds, false);
    let (s, c) = wolf.handshake(&mut Duration::default());
    (wolf, s, c)
}

/// `wolfSSL_write` of a `len`-byte record by the client, then `wolfSSL_read` by the server, ns.
pub(crate) fn record_cost(server: &mut WolfPeer, client: &mut WolfPeer, len: usize, n: usize) -> f64 {
    let payload = vec![0x5a; len];
    let mut buf = vec![0u8; 1 << 14];
    let start = Instant::now();
    for _ in 0..n {
        client.try_send(&payload).expect("wolfSSL_write");
        client.pass_to(server);
        let got = server.try_recv(&mut buf).expect("wolfSSL_read");
        assert_eq!(got, Some(len), "wolfSSL read another record than the one sent");
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / n as f64;
    assert_eq!(server.pass_to(client), 0, "the server sent something while only reading data");
    ns
}

/// Heap per idle established PSK server connection, bytes, at `count` connections (clients gone).
pub(crate) fn idle_memory(creds: &Credentials, count: usize) -> f64 {
    let wolf = Wolf::new(Kind::Psk, creds, true);
    let before = heap_in_use();
    let mut servers = Vec::with_capacity(count);
    for _ in 0..count {
        let (s, c) = wolf.handshake(&mut Duration::default());
        drop(c);
        servers.push(s);
    }
    let bytes = heap_in_use().saturating_sub(before);
    drop(servers);
    bytes as f64 / count as f64
}
