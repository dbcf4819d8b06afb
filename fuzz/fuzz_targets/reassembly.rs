//! Handshake reassembly under fragment storms, looking for expensive inputs as much as for
//! crashes: a server connection that took a ClientHello is fed datagrams of epoch-0 handshake
//! fragments built from the input. Run it with a per-input time limit (`-timeout`) and a large
//! `-max_len`: an input whose bookkeeping grows faster than its bytes shows up as a timeout.
//! Input format: see `dtls_fuzz::fuzz_reassembly`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dtls_fuzz::fuzz_reassembly(data));
