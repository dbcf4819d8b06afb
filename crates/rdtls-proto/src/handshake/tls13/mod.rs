//! DTLS 1.3 (RFC 9147 on RFC 8446), built room by room beside [`super::tls12`]. The key
//! schedule comes first; the handshake objects that drive it follow.

// The handshake objects that call the key schedule are the next piece of this room; until
// they land, only the known-answer tests use it.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod key_schedule;
