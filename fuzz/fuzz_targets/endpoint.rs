//! A server `Endpoint` fed a sequence of datagrams from a few peers on virtual time; every
//! verified peer is accepted and its connection fed the datagrams that follow and its timers.
//! Checks: no response to a peer without a connection is larger than its request, datagrams
//! always reach the connection of the peer that sent them, timers never stay due, and nothing
//! panics. Input format: see `dtls_fuzz` (flags byte, then steps).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dtls_fuzz::fuzz_endpoint(data));
