//! Server CPU per resumed DTLS 1.2 handshake (ECDHE-ECDSA sessions): ours by ticket and by
//! session ID, beside OpenSSL's by ticket and by session ID, all in memory.

use std::time::{Duration, Instant};

use openssl::ssl::{SslContext, SslContextBuilder, SslOptions, SslSessionCacheMode, SslStream};

use crate::pipe::End;
use rdtls_proto::crypto::{default_provider, KxGroup};
use rdtls_proto::enums::Protocol;
use rdtls_proto::pki::{CertificateDer, CertifiedKey, RootStore};
use rdtls_proto::resumption::Session;
use rdtls_proto::suites;
use rdtls_proto::Config;

use crate::drive::{ossl_handshake_resuming, OursServer};
use crate::report::Row;
use crate::setup::{self, Credentials, Kind};
use crate::{interleave, median, Effort};

/// How a session is named to the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Ticket,
    SessionId,
    /// DTLS 1.3: a ticket's PSK (OpenSSL's side: its DTLS 1.2 ticket resumption).
    Psk13,
}

pub(crate) fn run(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    for by in [By::Ticket, By::SessionId, By::Psk13] {
        let (ours, theirs) = server_cpu(effort, creds, by);
        let figure = match by {
            By::Ticket => "resumed handshake server CPU, DTLS 1.2 ECDSA, ticket",
            By::SessionId => "resumed handshake server CPU, DTLS 1.2 ECDSA, session ID",
            By::Psk13 => {
                "resumed handshake server CPU, DTLS 1.3 ECDSA session, PSK with X25519 (openssl column: its resumed \
                 DTLS 1.2, ticket)"
            }
        };
        rows.push(Row::new(figure, "us", ours, Some(theirs)));
    }
}

/// Our DTLS 1.3 server and client, with ECDSA credentials and X25519.
fn dtls13_configs(creds: &Credentials) -> (Config, Config) {
    let base = || {
        Config::builder()
            .protocol_versions(Protocol::Dtls1_3, Protocol::Dtls1_3)
            .cipher_suites(&[&suites::TLS13_AES_128_GCM_SHA256])
            .groups(&[KxGroup::X25519, KxGroup::Secp256r1])
            .mtu(1400)
    };
    let key = CertifiedKey::from_pem_or_der(&*default_provider(), &creds.cert, &creds.key_pkcs8, None)
        .expect("our server key");
    let mut roots = RootStore::new();
    roots.add(&CertificateDer::from(creds.ca.clone())).expect("CA");
    let server = base().certificate(key).cookie_verification(false).build().expect("server config");
    let client = base().root_store(roots).session_resumption(true).build().expect("client config");
    (server, client)
}

fn server_cpu(effort: &Effort, creds: &Credentials, by: By) -> (f64, f64) {
    let per_round = effort.scale(400);
    let kind = Kind::Ecdsa;
    let now = Instant::now();
    // Ours: the server resumes by ticket (no cache) or by session ID (no tickets).
    let (server_cfg, client_cfg) = match by {
        By::Psk13 => dtls13_configs(creds),
        _ => (
            setup::base_server(kind, creds)
                .cookie_verification(false)
                .session_tickets(by == By::Ticket)
                .session_cache_size(if by == By::SessionId { 1024 } else { 0 })
                .build()
                .expect("our resuming server"),
            setup::base_client(kind, creds).session_resumption(true).build().expect("our resuming client"),
        ),
    };
    let (server_cfg, client_cfg) = (std::sync::Arc::new(server_cfg), std::sync::Arc::new(client_cfg));
    let mut server = OursServer::new(server_cfg, now);
    let (h, mut s, mut first) =
        server.handshake(&client_cfg, true, crate::inmem::peer(0), now, &mut Duration::default());
    // A DTLS 1.3 ticket comes after the handshake.
    crate::drive::deliver(&mut s, &mut first, now);
    server.endpoint.remove(h);
    let session: Session = first.session().cloned().expect("a session to resume");

    // OpenSSL: a server that caches sessions and issues tickets (or not), and a client that
    // offers the session of a first full handshake.
    let ossl_by = if by == By::Psk13 { By::Ticket } else { by };
    let ossl_server = ossl_resuming_server(creds, ossl_by);
    let ossl_client = {
        let mut b = setup::ossl_client_builder(kind);
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
        if ossl_by == By::Ticket {
            b.clear_options(SslOptions::NO_TICKET);
        }
        b.build()
    };
    let (mut s, mut first) = ossl_handshake_resuming(&ossl_server, &ossl_client, None, &mut Duration::default());
    closed(&mut s, &mut first);
    // Each resumed handshake's session (with its renewed ticket) is offered next, as a client
    // keeps the latest.
    let mut ossl_session = first.ssl().session().expect("OpenSSL session").to_owned();
    let (mut ours, mut theirs) = interleave(
        effort.rounds,
        || {
            let mut spent = Duration::ZERO;
            for i in 0..per_round {
                let (h, s, c) = server.resume(&client_cfg, session.clone(), crate::inmem::peer(i + 1), now, &mut spent);
                assert!(s.resumed() && c.resumed());
                server.endpoint.remove(h);
                drop((s, c));
            }
            spent.as_secs_f64() * 1e6 / per_round as f64
        },
        || {
            let mut spent = Duration::ZERO;
            for _ in 0..per_round {
                let (mut s, mut c) =
                    ossl_handshake_resuming(&ossl_server, &ossl_client, Some(&ossl_session), &mut spent);
                assert!(s.ssl().session_reused());
                ossl_session = c.ssl().session().expect("OpenSSL session").to_owned();
                closed(&mut s, &mut c);
            }
            spent.as_secs_f64() * 1e6 / per_round as f64
        },
    );
    (median(&mut ours), median(&mut theirs))
}

/// Closes both ends with close_notify: OpenSSL forgets the session of a connection freed
/// without a clean shutdown.
fn closed(server: &mut SslStream<End>, client: &mut SslStream<End>) {
    for end in [server, client] {
        // close_notify into the in-memory pipe, outside the timed calls.
        let _ = end.shutdown();
    }
}

fn ossl_resuming_server(creds: &Credentials, by: By) -> SslContext {
    let mut b: SslContextBuilder = setup::ossl_server_base(Kind::Ecdsa, creds);
    b.set_session_cache_mode(SslSessionCacheMode::SERVER);
    b.set_session_id_context(b"rdtls-bench").expect("session ID context");
    let mut options = b.options();
    options.remove(SslOptions::NO_TICKET);
    b.clear_options(SslOptions::NO_TICKET);
    if by == By::SessionId {
        options |= SslOptions::NO_TICKET;
    }
    b.set_options(options);
    b.build()
}
