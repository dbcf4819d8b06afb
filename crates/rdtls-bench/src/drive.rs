//! Drives a client and a server through a handshake in memory, for both stacks, timing only
//! the server's calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{ErrorCode, Ssl, SslContext, SslSessionRef, SslStream};
use rdtls_proto::pki::ServerName;
use rdtls_proto::resumption::Session;
use rdtls_proto::{Config, Connection, ConnectionHandle, DatagramEvent, Endpoint};

use crate::pipe::{self, End};
use crate::setup::SERVER_NAME;

/// Most flights a handshake may take before the harness calls it stuck.
const MAX_ROUNDS: usize = 32;

/// Recycled datagram buffers, so the harness does not allocate per datagram.
#[derive(Debug, Default)]
pub(crate) struct Pool(Vec<Vec<u8>>);

impl Pool {
    fn get(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(1500))
    }

    fn put(&mut self, v: Vec<u8>) {
        self.0.push(v);
    }
}

/// Our server: an endpoint (cookie check, demultiplexing) that accepts connections.
pub(crate) struct OursServer {
    pub(crate) endpoint: Endpoint,
    pool: Pool,
    to_server: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
}

impl OursServer {
    pub(crate) fn new(config: Arc<Config>, now: Instant) -> Self {
        let mut endpoint = Endpoint::new(config, now).expect("endpoint");
        endpoint.set_max_connections(usize::MAX);
        Self { endpoint, pool: Pool::default(), to_server: Vec::new(), to_client: Vec::new() }
    }

    /// One full handshake with a new client from `peer` (which sends SNI if `sni`, as
    /// certificate clients do); adds the server's CPU time to `spent`.
    pub(crate) fn handshake(
        &mut self,
        client_config: &Arc<Config>,
        sni: bool,
        peer: SocketAddr,
        now: Instant,
        spent: &mut Duration,
    ) -> (ConnectionHandle, Connection, Connection) {
        let name = sni.then(|| ServerName::try_from(SERVER_NAME).expect("name").to_owned());
        let client = Connection::client_with_server_name(client_config.clone(), name, now).expect("client");
        self.run(client, peer, now, spent)
    }

    /// A handshake with a new client from `peer` that offers `session` (with SNI).
    pub(crate) fn resume(
        &mut self,
        client_config: &Arc<Config>,
        session: Session,
        peer: SocketAddr,
        now: Instant,
        spent: &mut Duration,
    ) -> (ConnectionHandle, Connection, Connection) {
        let name = ServerName::try_from(SERVER_NAME).expect("name").to_owned();
        let client =
            Connection::resuming_client(client_config.clone(), Some(name), Some(session), now).expect("client");
        self.run(client, peer, now, spent)
    }

    fn run(
        &mut self,
        mut client: Connection,
        peer: SocketAddr,
        now: Instant,
        spent: &mut Duration,
    ) -> (ConnectionHandle, Connection, Connection) {
        let mut server: Option<(ConnectionHandle, Connection)> = None;
        for _ in 0..MAX_ROUNDS {
            drain(&mut client, &mut self.pool, &mut self.to_server);
            let start = Instant::now();
            for mut d in self.to_server.drain(..) {
                match &mut server {
                    Some((_, s)) => {
                        s.handle_datagram(now, &mut d).expect("server handshake");
                    }
                    None => {
                        let mut response = self.pool.get();
                        match self.endpoint.handle(now, peer, &d, &mut response) {
                            DatagramEvent::Respond => self.to_client.push(std::mem::take(&mut response)),
                            // A piece of a fragmented ClientHello, held until the rest comes.
                            DatagramEvent::Held => {}
                            DatagramEvent::Incoming(incoming) => {
                                server = Some(self.endpoint.accept(incoming, now).expect("accept"));
                            }
                            other => panic!("unexpected endpoint decision {other:?}"),
                        }
                        if !response.is_empty() || response.capacity() > 0 {
                            self.pool.put(response);
                        }
                    }
                }
                self.pool.put(d);
            }
            if let Some((_, s)) = &mut server {
                drain(s, &mut self.pool, &mut self.to_client);
            }
            *spent += start.elapsed();
            for mut d in self.to_client.drain(..) {
                client.handle_datagram(now, &mut d).expect("client handshake");
                self.pool.put(d);
            }
            if let Some((h, mut s)) = server.take() {
                if s.is_established() && client.is_established() {
                    // A server takes the Connected event, as applications do.
                    while s.poll_event().is_some() {}
                    return (h, s, client);
                }
                server = Some((h, s));
            }
        }
        panic!("our handshake did not complete in {MAX_ROUNDS} rounds");
    }
}

/// Hands `to` every datagram `from` has to send (what follows a handshake: a DTLS 1.3 ticket,
/// ACKs).
pub(crate) fn deliver(from: &mut Connection, to: &mut Connection, now: Instant) {
    let mut buf = Vec::with_capacity(1500);
    while from.poll_transmit(&mut buf).is_some() {
        let _ = to.handle_datagram(now, &mut buf);
    }
}

/// Moves every datagram `conn` has to send into `queue`.
fn drain(conn: &mut Connection, pool: &mut Pool, queue: &mut Vec<Vec<u8>>) {
    loop {
        let mut b = pool.get();
        if conn.poll_transmit(&mut b).is_none() {
            pool.put(b);
            return;
        }
        queue.push(b);
    }
}

fn would_block(e: &openssl::ssl::Error) -> bool {
    e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE
}

fn pending(end: &End) -> bool {
    !end.rx.borrow().datagrams.is_empty()
}

/// One full OpenSSL handshake in memory; adds the server's CPU time to `spent`.
pub(crate) fn ossl_handshake(
    server_ctx: &SslContext,
    client_ctx: &SslContext,
    spent: &mut Duration,
) -> (SslStream<End>, SslStream<End>) {
    ossl_handshake_resuming(server_ctx, client_ctx, None, spent)
}

/// One OpenSSL handshake in memory whose client offers `session` (from a handshake with the
/// same client context); adds the server's CPU time to `spent`.
pub(crate) fn ossl_handshake_resuming(
    server_ctx: &SslContext,
    client_ctx: &SslContext,
    session: Option<&SslSessionRef>,
    spent: &mut Duration,
) -> (SslStream<End>, SslStream<End>) {
    let (a, b) = pipe::pair();
    let mut ssl = Ssl::new(client_ctx).expect("client SSL");
    ssl.set_mtu(1400).expect("mtu");
    if let Some(session) = session {
        // SAFETY: the session comes from a connection of the same client context.
        #[allow(unsafe_code)]
        unsafe {
            ssl.set_session(session).expect("set session");
        }
    }
    let mut client = SslStream::new(ssl, a).expect("client stream");
    let start = Instant::now();
    let mut ssl = Ssl::new(server_ctx).expect("server SSL");
    ssl.set_mtu(1400).expect("mtu");
    let mut server = SslStream::new(ssl, b).expect("server stream");
    *spent += start.elapsed();
    let (mut client_done, mut server_done) = (false, false);
    let mut first = true;
    for _ in 0..MAX_ROUNDS {
        if !client_done && (first || pending(client.get_ref())) {
            first = false;
            match client.connect() {
                Ok(()) => client_done = true,
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("OpenSSL client handshake: {e}"),
            }
        }
        if !server_done && pending(server.get_ref()) {
            let start = Instant::now();
            let r = server.accept();
            *spent += start.elapsed();
            match r {
                Ok(()) => server_done = true,
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("OpenSSL server handshake: {e}"),
            }
        }
        if client_done && server_done {
            return (server, client);
        }
    }
    panic!("OpenSSL handshake did not complete in {MAX_ROUNDS} rounds");
}
