//! Records seeds of `corpus/endpoint` and `corpus/client`: the harness's client against its
//! server, each side's input saved. DTLS 1.3 ones, and a DTLS 1.2 one with connection IDs. Run
//! with `DTLS_FUZZ_WRITE_SEEDS=1 cargo test --lib seeds` in `fuzz/` to (re)write them; without
//! it, the tests only check that the inputs replay to what they are meant to reach.

use super::*;

/// The DTLS 1.3 scenario's client actions: a message, a key update, a message, a shutdown.
fn with_key_update() -> Vec<(ClientAction, Vec<u8>)> {
    vec![
        (ClientAction::Send, b"first message".to_vec()),
        (ClientAction::Send, Vec::new()),
        (ClientAction::Send, b"after the key update".to_vec()),
        (ClientAction::Shutdown, Vec::new()),
    ]
}

/// Runs a scenario: client flags, server flags, the client's actions once established;
/// returns (client input, server input).
fn record(client_flags: u8, server_flags: u8, actions: Vec<(ClientAction, Vec<u8>)>) -> (Vec<u8>, Vec<u8>) {
    let start = Instant::now();
    let mut to_server: Vec<Vec<u8>> = Vec::new();
    let mut client = ClientHarness::new(client_flags, start, |d| to_server.push(d.to_vec()));
    let mut server = ServerHarness::new(server_flags, start);
    let (mut client_input, mut server_input) = (vec![client_flags], vec![server_flags]);
    let mut to_client: Vec<Vec<u8>> = Vec::new();
    let mut actions = actions.into_iter();
    for _ in 0..64 {
        for d in to_server.drain(..) {
            encode_step(&mut server_input, 0, 0, &d);
            server.step(Step { selector: 0, advance: Duration::ZERO, datagram: &d }, |_, out| {
                to_client.push(out.to_vec())
            });
        }
        let delivered = !to_client.is_empty();
        for d in to_client.drain(..) {
            encode_step(&mut client_input, ClientAction::Datagram.selector(), 0, &d);
            client
                .step(Step { selector: 0, advance: Duration::ZERO, datagram: &d }, |out| to_server.push(out.to_vec()));
        }
        if !delivered && to_server.is_empty() && client.connection().is_established() {
            let Some((action, data)) = actions.next() else { break };
            encode_step(&mut client_input, action.selector(), 0, &data);
            client.step(Step { selector: action.selector(), advance: Duration::ZERO, datagram: &data }, |out| {
                to_server.push(out.to_vec())
            });
        }
    }
    (client_input, server_input)
}

#[test]
fn dtls13_scenarios_replay() {
    // Cookies (stateless HelloRetryRequest), X25519, AES-128-GCM; and without cookies, P-256
    // first on the client (a HelloRetryRequest for the group), MTU 64 (fragmented flights).
    for (name, client_flags, server_flags) in [("dtls13-cookie", 0x20, 0x81), ("dtls13-retry-mtu64", 0x38, 0xc8)] {
        let (client_input, server_input) = record(client_flags, server_flags, with_key_update());
        // Replaying the client's input alone reaches DTLS 1.3 with key updates both ways.
        let (flags, steps) = parse_input(&client_input).unwrap();
        let mut replay = ClientHarness::new(flags, Instant::now(), |_| {});
        let (mut updates, mut protocol) = (0, None);
        for step in steps {
            replay.step(step, |_| {});
            updates = updates.max(replay.connection().stats().key_updates_received);
            protocol = protocol.or(replay.connection().protocol());
        }
        assert_eq!(protocol, Some(Protocol::Dtls1_3), "{name}");
        assert!(updates >= 1, "{name}: the server answered the key update request");
        assert!(replay.connection().is_closed(), "{name}: shut down at the end");
        if std::env::var_os("DTLS_FUZZ_WRITE_SEEDS").is_some() {
            std::fs::write(format!("corpus/client/{name}"), &client_input).unwrap();
            std::fs::write(format!("corpus/endpoint/{name}"), &server_input).unwrap();
        }
    }
}

#[test]
fn dtls12_connection_id_scenario_replays() {
    // Both ask for 4-byte connection IDs: tls12_cid records both ways, from the Finished on.
    let actions = vec![
        (ClientAction::Send, b"first message".to_vec()),
        (ClientAction::Send, b"second message".to_vec()),
        (ClientAction::Shutdown, Vec::new()),
    ];
    let (client_input, server_input) = record(0x40, 0x04, actions);
    let (flags, steps) = parse_input(&client_input).unwrap();
    let mut replay = ClientHarness::new(flags, Instant::now(), |_| {});
    let (mut ids, mut protocol) = (None, None);
    for step in steps {
        replay.step(step, |_| {});
        let c = replay.connection();
        ids = ids.or(c.connection_id().zip(c.peer_connection_id()).map(|(a, b)| (a.len(), b.len())));
        protocol = protocol.or(c.protocol());
    }
    assert_eq!(protocol, Some(Protocol::Dtls1_2));
    assert_eq!(ids, Some((4, 4)), "connection IDs negotiated both ways");
    assert!(replay.connection().is_closed(), "shut down at the end");
    if std::env::var_os("DTLS_FUZZ_WRITE_SEEDS").is_some() {
        std::fs::write("corpus/client/dtls12-cid", &client_input).unwrap();
        std::fs::write("corpus/endpoint/dtls12-cid", &server_input).unwrap();
    }
}
