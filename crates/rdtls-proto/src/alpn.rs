//! Application-Layer Protocol Negotiation (RFC 7301): which protocol runs over the connection
//! (`coap`, `webrtc`...), agreed in the handshake.
//!
//! A client offers the protocols of
//! [`ConfigBuilder::alpn_protocols`](crate::ConfigBuilder::alpn_protocols) in its order of
//! preference; a server configured with protocols picks the first of its own list that the
//! client offered, and refuses a client that offered only others with a fatal
//! `no_application_protocol` alert (RFC 7301 §3.2). A client that offers none, or a server
//! configured with none, goes on without ALPN. The answer is in DTLS 1.2's ServerHello and in
//! DTLS 1.3's EncryptedExtensions.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use rdtls_proto::{Config, Connection};
//!
//! let client = Config::builder().psk("dev", b"key".to_vec()).alpn_protocols(&["coap", "mqtt"]).build()?;
//! let server = Config::builder()
//!     .psk_server_key(b"key".to_vec())
//!     .alpn_protocols(&["mqtt", "coap"])
//!     .cookie_verification(false)
//!     .build()?;
//! let now = Instant::now();
//! let (mut client, mut server) =
//!     (Connection::client(Arc::new(client), now)?, Connection::server(Arc::new(server), now)?);
//! let mut buf = Vec::new();
//! while !client.is_established() || !server.is_established() {
//!     while client.poll_transmit(&mut buf).is_some() {
//!         server.handle_datagram(now, &mut buf)?;
//!     }
//!     while server.poll_transmit(&mut buf).is_some() {
//!         client.handle_datagram(now, &mut buf)?;
//!     }
//! }
//! // The server's order decides.
//! assert_eq!(client.alpn_protocol(), Some(&b"mqtt"[..]));
//! assert_eq!(server.alpn_protocol(), Some(&b"mqtt"[..]));
//! # Ok::<(), rdtls_proto::Error>(())
//! ```

use crate::codec::{Put, Reader};
use crate::enums::AlertDescription;
use crate::error::Error;
use crate::{Config, ConfigBuilder};

/// Longest protocol name (its length is one byte on the wire).
pub const MAX_PROTOCOL_LEN: usize = 255;

/// Parses the body of an `application_layer_protocol_negotiation` extension (RFC 7301 §3.1):
/// a non-empty list of non-empty names, and nothing after it.
pub fn parse_protocols(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader::new(body);
    let mut list = Reader::new(r.vec16()?);
    r.finish()?;
    let mut out = Vec::new();
    while !list.is_empty() {
        let name = list.vec8()?;
        if name.is_empty() {
            return None;
        }
        out.push(name.to_vec());
    }
    (!out.is_empty()).then_some(out)
}

/// Appends the body of an `application_layer_protocol_negotiation` extension. Each name must
/// be 1 to 255 bytes and the whole list at most 65,535 (what [`parse_protocols`] returns and
/// what a configuration accepts always are).
pub fn emit_protocols(protocols: &[Vec<u8>], out: &mut Vec<u8>) {
    out.put_len16(|b| protocols.iter().for_each(|p| b.put_vec8(p)));
}

/// A server's choice among the client's `offered` protocols: the first of `ours` offered.
/// `Ok(None)` when either side has none (no ALPN); a fatal `no_application_protocol` when
/// both have some and none is common (RFC 7301 §3.2).
pub(crate) fn choose(offered: Option<&[Vec<u8>]>, ours: &[Vec<u8>]) -> Result<Option<Vec<u8>>, Error> {
    let Some(offered) = offered.filter(|_| !ours.is_empty()) else { return Ok(None) };
    match ours.iter().find(|p| offered.contains(p)) {
        Some(p) => Ok(Some(p.clone())),
        None => Err(Error::PeerIncompatible {
            alert: AlertDescription::NO_APPLICATION_PROTOCOL,
            reason: "the client offered no application protocol (ALPN) we have",
        }),
    }
}

/// A client's check of the server's answer to its offer of `ours`: exactly one protocol, one
/// we offered; otherwise illegal_parameter.
pub(crate) fn check_answer(answer: &[Vec<u8>], ours: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    match answer {
        [one] if ours.contains(one) => Ok(one.clone()),
        _ => Err(Error::PeerMisbehaved {
            alert: AlertDescription::ILLEGAL_PARAMETER,
            reason: "server chose an application protocol (ALPN) we did not offer",
        }),
    }
}

/// Checks a configuration's list: names of 1 to 255 bytes, each once, 65,535 bytes in all.
pub(crate) fn check_protocols(protocols: &[Vec<u8>]) -> Result<(), Error> {
    if protocols.iter().any(|p| p.is_empty() || p.len() > MAX_PROTOCOL_LEN) {
        return Err(Error::Config("an ALPN protocol name is 1 to 255 bytes"));
    }
    if protocols.iter().enumerate().any(|(i, p)| protocols[..i].contains(p)) {
        return Err(Error::Config("an ALPN protocol is listed twice"));
    }
    if protocols.iter().map(|p| 1 + p.len()).sum::<usize>() > usize::from(u16::MAX) {
        return Err(Error::Config("the ALPN protocol list is over 65,535 bytes"));
    }
    Ok(())
}

impl ConfigBuilder {
    /// Application-layer protocols (RFC 7301), most preferred first: a client offers them in
    /// this order; a server picks the first of them the client offered, and refuses a client
    /// whose offer has none of them (`no_application_protocol`). Default: none (no ALPN). Each
    /// name 1 to 255 bytes, each once.
    pub fn alpn_protocols<P: AsRef<[u8]>>(mut self, protocols: &[P]) -> Self {
        self.config.alpn_protocols = protocols.iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }
}

impl Config {
    /// The application-layer protocols offered or accepted, most preferred first.
    pub fn alpn_protocols(&self) -> &[Vec<u8>] {
        &self.alpn_protocols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|n| n.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_extension_is_parsed_exactly() {
        let mut body = Vec::new();
        emit_protocols(&list(&["h2", "coap"]), &mut body);
        assert_eq!(body, b"\x00\x08\x02h2\x04coap");
        assert_eq!(parse_protocols(&body), Some(list(&["h2", "coap"])));
        // An empty list, an empty name, a name past the list, trailing bytes.
        for bad in [&b"\x00\x00"[..], b"\x00\x03\x02h2\x00", b"\x00\x03\x03h2", b"\x00\x03\x02h2x", b""] {
            assert_eq!(parse_protocols(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_server_prefers_its_own_order_and_refuses_an_offer_it_cannot_meet() {
        let offered = list(&["coap", "mqtt", "x"]);
        assert_eq!(choose(Some(&offered), &list(&["mqtt", "coap"])), Ok(Some(b"mqtt".to_vec())));
        assert_eq!(choose(None, &list(&["mqtt"])), Ok(None));
        assert_eq!(choose(Some(&offered), &[]), Ok(None));
        let refused = choose(Some(&offered), &list(&["h2"])).unwrap_err();
        assert_eq!(refused.alert_to_send(), Some(AlertDescription::NO_APPLICATION_PROTOCOL));
    }

    #[test]
    fn the_client_takes_one_protocol_it_offered() {
        let ours = list(&["coap", "mqtt"]);
        assert_eq!(check_answer(&list(&["mqtt"]), &ours), Ok(b"mqtt".to_vec()));
        for bad in [list(&["h2"]), list(&["coap", "mqtt"])] {
            let err = check_answer(&bad, &ours).unwrap_err();
            assert_eq!(err.alert_to_send(), Some(AlertDescription::ILLEGAL_PARAMETER), "{bad:?}");
        }
    }

    #[test]
    fn a_configuration_lists_valid_names_once() {
        assert!(check_protocols(&list(&["coap", "mqtt"])).is_ok());
        assert!(check_protocols(&list(&["coap", "coap"])).is_err());
        assert!(check_protocols(&[Vec::new()]).is_err());
        assert!(check_protocols(&[vec![b'a'; 256]]).is_err());
        let many: Vec<Vec<u8>> = (0..300u32).map(|i| format!("{i:0>250}").into_bytes()).collect();
        assert!(check_protocols(&many).is_err());
    }
}
