//! A client `Connection` fed arbitrary datagrams, timeouts and commands (send, shutdown, abort)
//! on virtual time. Input format: see `dtls_fuzz` (flags byte, then steps).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dtls_fuzz::fuzz_client(data));
