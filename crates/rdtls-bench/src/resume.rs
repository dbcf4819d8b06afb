//! Server CPU per resumed DTLS 1.2 handshake (ECDHE-ECDSA sessions): ours by ticket and by
//! session ID, beside OpenSSL's by ticket and by session ID, all in memory.

use std::time::{Duration, Instant};

use openssl::ssl::{SslContext, SslContextBuilder, SslOptions, SslSessionCacheMode, SslStream};

use crate::pipe::End;
use rdtls_proto::resumption::Session;

use crate::drive::{ossl_handshake_resuming, OursServer};
use crate::report::Row;
use crate::setup::{self, Credentials, Kind};
use crate::{interleave, median, Effort};

/// How a session is named to the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Ticket,
    SessionId,
}

pub(crate) fn run(effort: &Effort, creds: &Credentials, rows: &mut Vec<Row>) {
    for by in [By::Ticket, By::SessionId] {
        let (ours, theirs) = server_cpu(effort, creds, by);
        let label = match by {
            By::Ticket => "ticket",
            By::SessionId => "session ID",
        };
        rows.push(Row::new(format!("resumed handshake server CPU, DTLS 1.2 ECDSA, {label}"), "us", ours, Some(theirs)));
    }
}

fn server_cpu(effort: &Effort, creds: &Credentials, by: By) -> (f64, f64) {
    let per_round = effort.scale(400);
    let kind = Kind::Ecdsa;
    let now = Instant::now();
    // Ours: the server resumes by ticket (no cache) or by session ID (no tickets).
    let server_cfg = setup::base_server(kind, creds)
        .cookie_verification(false)
        .session_tickets(by == By::Ticket)
        .session_cache_size(if by == By::SessionId { 1024 } else { 0 })
        .build()
        .expect("our resuming server");
    let client_cfg = setup::base_client(kind, creds).session_resumption(true).build().expect("our resuming client");
    let (server_cfg, client_cfg) = (std::sync::Arc::new(server_cfg), std::sync::Arc::new(client_cfg));
    let mut server = OursServer::new(server_cfg, now);
    let (h, _, first) = server.handshake(&client_cfg, true, crate::inmem::peer(0), now, &mut Duration::default());
    server.endpoint.remove(h);
    let session: Session = first.session().cloned().expect("a session to resume");

    // OpenSSL: a server that caches sessions and issues tickets (or not), and a client that
    // offers the session of a first full handshake.
    let ossl_server = ossl_resuming_server(creds, by);
    let ossl_client = {
        let mut b = setup::ossl_client_builder(kind);
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
        if by == By::Ticket {
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
