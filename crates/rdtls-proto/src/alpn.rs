//! Application-Layer Protocol Negotiation (RFC 7301): which protocol runs over the connection
//! (`coap`, `webrtc`...), agreed in the handshake.
//!
//! A client offers the protocols of
//! [`ConfigBuilder::alpn_protocols`](crate::ConfigBuilder::alpn_protocols) in its order of
//! preference; a server configured with protocols picks the first of its own list that the
//! client offered, and refuses a client that offered only others with a fatal
//! `no_application_protocol` alert (RFC 7301 §3.2). A server with an [`AlpnSelector`] lets it
//! decide instead. A client that offers none, or a server configured with neither, goes on
//! without ALPN. The answer is in DTLS 1.2's ServerHello and in DTLS 1.3's
//! EncryptedExtensions.
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

use std::sync::Arc;

use crate::codec::{Put, Reader};
use crate::enums::AlertDescription;
use crate::error::Error;
use crate::{Config, ConfigBuilder};

/// Longest protocol name (its length is one byte on the wire).
pub const MAX_PROTOCOL_LEN: usize = 255;

/// Most bytes a configuration's protocol list may take on the wire (names and their length
/// bytes): far more than any real list, and small enough that matching a client's offer
/// against it stays cheap.
pub const MAX_CONFIGURED_LIST_LEN: usize = 1024;

/// Longest list the extension can carry: its body is the list and a 2-byte length.
const MAX_LIST_LEN: usize = u16::MAX as usize - 2;

/// A list of protocol names as the extension carries it (RFC 7301 §3.1): one buffer of names,
/// each after its length byte, checked when made (at least one name, each of 1 to 255 bytes,
/// 65,535 bytes in all) and read by iterating. A ClientHello of thousands of names costs one
/// allocation, not one per name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProtocolList {
    /// The names, each after its length byte (the list's own length left out).
    wire: Vec<u8>,
}

impl core::fmt::Debug for ProtocolList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

impl ProtocolList {
    /// The list of `names`, in order; `None` if there is none, one is empty or over 255
    /// bytes, or they come to over 65,533 bytes (what the extension can carry).
    pub fn new<P: AsRef<[u8]>>(names: &[P]) -> Option<Self> {
        let mut wire = Vec::with_capacity(names.iter().map(|n| 1 + n.as_ref().len()).sum());
        for name in names.iter().map(AsRef::as_ref) {
            if name.is_empty() || name.len() > MAX_PROTOCOL_LEN {
                return None;
            }
            wire.put_vec8(name);
        }
        (!wire.is_empty() && wire.len() <= MAX_LIST_LEN).then_some(Self { wire })
    }

    /// Parses the body of an `application_layer_protocol_negotiation` extension: a
    /// non-empty list of non-empty names, and nothing after it.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let wire = r.vec16()?;
        r.finish()?;
        let mut names = Reader::new(wire);
        while !names.is_empty() {
            if names.vec8()?.is_empty() {
                return None;
            }
        }
        (!wire.is_empty()).then(|| Self { wire: wire.to_vec() })
    }

    /// Appends the extension's body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_vec16(&self.wire);
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut r = Reader::new(&self.wire);
        core::iter::from_fn(move || r.vec8())
    }

    /// Whether `name` is in the list.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.iter().any(|n| n == name)
    }
}

/// What a server's [`AlpnSelector`] decides for one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlpnChoice {
    /// This protocol, which must be one the client offered: anything else (an empty name
    /// too) is the application's mistake, and fails the handshake with `internal_error`.
    Protocol(Vec<u8>),
    /// No protocol: the handshake goes on without ALPN (the answer has no extension).
    Decline,
    /// Refuse the client with a fatal `no_application_protocol` alert (RFC 7301 §3.2).
    Refuse,
}

/// A server's own choice of application protocol, in place of the first of
/// [`ConfigBuilder::alpn_protocols`] the client offered
/// ([`ConfigBuilder::alpn_selector`]): to pick by the client's server name, by load, or to go
/// on without ALPN.
///
/// Called once per handshake whose ClientHello offers protocols (a HelloRetryRequest does not
/// call it again), never for a client that offers none. It runs inside the handshake, so it
/// must not block.
///
/// ```
/// use std::sync::Arc;
/// use rdtls_proto::alpn::{AlpnChoice, AlpnSelector, ProtocolList};
/// use rdtls_proto::Config;
///
/// /// `coap` for the sensors' name, whatever they offer first; anyone else gets no ALPN.
/// #[derive(Debug)]
/// struct ByName;
///
/// impl AlpnSelector for ByName {
///     fn select(&self, offered: &ProtocolList, server_name: Option<&str>) -> AlpnChoice {
///         match server_name {
///             Some("sensors.example") if offered.contains(b"coap") => AlpnChoice::Protocol(b"coap".to_vec()),
///             Some("sensors.example") => AlpnChoice::Refuse,
///             _ => AlpnChoice::Decline,
///         }
///     }
/// }
///
/// let server = Config::builder().psk_server_key(b"key".to_vec()).alpn_selector(Arc::new(ByName)).build()?;
/// # let _ = server;
/// # Ok::<(), rdtls_proto::Error>(())
/// ```
pub trait AlpnSelector: Send + Sync + core::fmt::Debug {
    /// The choice for a client that `offered` these protocols (in its order of preference)
    /// and named `server_name` (SNI, if it sent one).
    fn select(&self, offered: &ProtocolList, server_name: Option<&str>) -> AlpnChoice;
}

/// A server's choice among the client's `offered` protocols: its selector's, or else the first
/// of its own protocols offered. `Ok(None)` when the client offers none, when the server has
/// neither a selector nor protocols, or when the selector declines; a fatal
/// `no_application_protocol` when the lists have none in common (RFC 7301 §3.2), or the
/// selector refuses. Costs one pass over the offer, with a binary search of ours for each
/// name (or the selector's own cost, and a pass to check its choice).
pub(crate) fn choose(
    config: &Config,
    offered: Option<&ProtocolList>,
    server_name: Option<&str>,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(offered) = offered else { return Ok(None) };
    let refused = |reason| Error::PeerIncompatible { alert: AlertDescription::NO_APPLICATION_PROTOCOL, reason };
    if let Some(selector) = &config.alpn_selector {
        return match selector.select(offered, server_name) {
            AlpnChoice::Protocol(p) if offered.contains(&p) => Ok(Some(p)),
            AlpnChoice::Protocol(_) => {
                Err(Error::Config("the ALPN selector chose a protocol the client did not offer"))
            }
            AlpnChoice::Decline => Ok(None),
            AlpnChoice::Refuse => Err(refused("the application refused the client's protocols (ALPN)")),
        };
    }
    if config.alpn_protocols.is_empty() {
        return Ok(None);
    }
    // One pass over the offer, each name looked up among ours by binary search: a ClientHello
    // of thousands of names against a long list of ours costs no more than the offer's length.
    let ours = &config.alpn_protocols;
    let rank = |name: &[u8]| {
        let at = config.alpn_by_name.binary_search_by(|&i| ours[usize::from(i)][..].cmp(name)).ok()?;
        Some(config.alpn_by_name[at])
    };
    match offered.iter().filter_map(rank).min() {
        Some(best) => Ok(Some(ours[usize::from(best)].clone())),
        None => Err(refused("the client offered no application protocol (ALPN) we have")),
    }
}

/// The positions of a configuration's protocols, ordered by name (for [`choose`]'s lookups).
pub(crate) fn by_name(protocols: &[Vec<u8>]) -> Vec<u16> {
    // At most 512 names fit the configured list's 1,024 bytes.
    let mut order: Vec<u16> = (0..protocols.len()).filter_map(|i| u16::try_from(i).ok()).collect();
    order.sort_by(|&a, &b| protocols[usize::from(a)].cmp(&protocols[usize::from(b)]));
    order
}

/// A server's check that the protocol it chose for a first ClientHello is still offered in the
/// second (after its HelloRetryRequest): RFC 8446 §4.1.2 allows no change there.
pub(crate) fn still_offered(chosen: Option<Vec<u8>>, offered: Option<&ProtocolList>) -> Result<Option<Vec<u8>>, Error> {
    match &chosen {
        Some(p) if !offered.is_some_and(|o| o.contains(p)) => {
            Err(Error::illegal("the second ClientHello does not offer the application protocol chosen"))
        }
        _ => Ok(chosen),
    }
}

/// A client's check of the server's answer to its offer of `ours`: exactly one protocol, one
/// we offered; otherwise illegal_parameter.
pub(crate) fn check_answer(answer: &ProtocolList, ours: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let mut names = answer.iter();
    let (Some(one), None) = (names.next(), names.next()) else {
        // RFC 7301 §3.1: the server's list has exactly one name.
        return Err(Error::decode("ALPN answer of more than one protocol"));
    };
    match ours.iter().any(|p| p == one) {
        true => Ok(one.to_vec()),
        false => Err(Error::PeerMisbehaved {
            alert: AlertDescription::ILLEGAL_PARAMETER,
            reason: "server chose an application protocol (ALPN) we did not offer",
        }),
    }
}

/// Checks a configuration's list: names of 1 to 255 bytes, [`MAX_CONFIGURED_LIST_LEN`] bytes
/// in all (the configuration's checks refuse a name listed twice).
pub(crate) fn check_protocols(protocols: &[Vec<u8>]) -> Result<(), Error> {
    if protocols.iter().any(|p| p.is_empty() || p.len() > MAX_PROTOCOL_LEN) {
        return Err(Error::Config("an ALPN protocol name is 1 to 255 bytes"));
    }
    if protocols.iter().map(|p| 1 + p.len()).sum::<usize>() > MAX_CONFIGURED_LIST_LEN {
        return Err(Error::Config("the ALPN protocol list is over 1,024 bytes"));
    }
    Ok(())
}

impl ConfigBuilder {
    /// Application-layer protocols (RFC 7301), most preferred first: a client offers them in
    /// this order; a server picks the first of them the client offered, and refuses a client
    /// whose offer has none of them (`no_application_protocol`), unless an
    /// [`alpn_selector`](Self::alpn_selector) decides. Default: none (no ALPN). Each name 1 to
    /// 255 bytes, each once, 1,024 bytes in all (with a length byte each).
    pub fn alpn_protocols<P: AsRef<[u8]>>(mut self, protocols: &[P]) -> Self {
        self.config.alpn_protocols = protocols.iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }
}

impl ConfigBuilder {
    /// A server's own choice of application protocol for each client that offers some, in
    /// place of the first of [`alpn_protocols`](Self::alpn_protocols) offered (which a client
    /// still offers). Default: none.
    pub fn alpn_selector(mut self, selector: Arc<dyn AlpnSelector>) -> Self {
        self.config.alpn_selector = Some(selector);
        self
    }
}

impl Config {
    /// The application-layer protocols offered or accepted, most preferred first.
    pub fn alpn_protocols(&self) -> &[Vec<u8>] {
        &self.alpn_protocols
    }

    /// The server's own ALPN choice, if set.
    pub fn alpn_selector(&self) -> Option<&Arc<dyn AlpnSelector>> {
        self.alpn_selector.as_ref()
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
        let protocols = ProtocolList::new(&["h2", "coap"]).unwrap();
        let mut body = Vec::new();
        protocols.emit(&mut body);
        assert_eq!(body, b"\x00\x08\x02h2\x04coap");
        assert_eq!(ProtocolList::parse(&body), Some(protocols.clone()));
        assert_eq!(protocols.iter().collect::<Vec<_>>(), [&b"h2"[..], b"coap"]);
        assert!(protocols.contains(b"coap") && !protocols.contains(b"coa"));
        // An empty list, an empty name, a name past the list, trailing bytes.
        for bad in [&b"\x00\x00"[..], b"\x00\x03\x02h2\x00", b"\x00\x03\x03h2", b"\x00\x03\x02h2x", b""] {
            assert_eq!(ProtocolList::parse(bad), None, "{bad:?}");
        }
        for bad in [&[][..], &[""], &["x"; 0]] {
            assert_eq!(ProtocolList::new(bad), None);
        }
        assert_eq!(ProtocolList::new(&[[b'a'; 256]]), None);
    }

    fn server(protocols: &[&str], selector: Option<Arc<dyn AlpnSelector>>) -> Config {
        let b = Config::builder().psk_server_key(b"key".to_vec()).alpn_protocols(protocols);
        match selector {
            Some(s) => b.alpn_selector(s),
            None => b,
        }
        .build()
        .unwrap()
    }

    #[test]
    fn the_server_prefers_its_own_order_and_refuses_an_offer_it_cannot_meet() {
        let offered = ProtocolList::new(&["coap", "mqtt", "x"]).unwrap();
        assert_eq!(choose(&server(&["mqtt", "coap"], None), Some(&offered), None), Ok(Some(b"mqtt".to_vec())));
        assert_eq!(choose(&server(&["mqtt"], None), None, None), Ok(None));
        assert_eq!(choose(&server(&[], None), Some(&offered), None), Ok(None));
        let refused = choose(&server(&["h2"], None), Some(&offered), None).unwrap_err();
        assert_eq!(refused.alert_to_send(), Some(AlertDescription::NO_APPLICATION_PROTOCOL));
    }

    /// Answers what it was made with, and counts its calls.
    #[derive(Debug)]
    struct Fixed(AlpnChoice, std::sync::atomic::AtomicUsize);

    impl AlpnSelector for Fixed {
        fn select(&self, offered: &ProtocolList, server_name: Option<&str>) -> AlpnChoice {
            assert_eq!(offered.iter().collect::<Vec<_>>(), [&b"coap"[..], b"mqtt"]);
            assert_eq!(server_name, Some("iot.example"));
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.clone()
        }
    }

    #[test]
    fn a_selector_chooses_declines_or_refuses_in_place_of_the_list() {
        let offered = ProtocolList::new(&["coap", "mqtt"]).unwrap();
        let decide = |choice: AlpnChoice| {
            let selector = Arc::new(Fixed(choice, Default::default()));
            // The list would pick "coap": the selector decides instead.
            let config = server(&["coap"], Some(selector.clone()));
            let got = choose(&config, Some(&offered), Some("iot.example"));
            assert_eq!(choose(&config, None, Some("iot.example")), Ok(None), "no offer, no call");
            assert_eq!(selector.1.load(std::sync::atomic::Ordering::Relaxed), 1);
            got
        };
        assert_eq!(decide(AlpnChoice::Protocol(b"mqtt".to_vec())), Ok(Some(b"mqtt".to_vec())));
        assert_eq!(decide(AlpnChoice::Decline), Ok(None));
        let refused = decide(AlpnChoice::Refuse).unwrap_err();
        assert_eq!(refused.alert_to_send(), Some(AlertDescription::NO_APPLICATION_PROTOCOL));
        // A protocol the client did not offer, or an empty one: our mistake, internal_error.
        for wrong in [&b"h2"[..], b"", b"coa"] {
            let failed = decide(AlpnChoice::Protocol(wrong.to_vec())).unwrap_err();
            assert_eq!(failed.alert_to_send(), Some(AlertDescription::INTERNAL_ERROR), "{wrong:?}");
        }
    }

    #[test]
    fn the_client_takes_one_protocol_it_offered() {
        let ours = list(&["coap", "mqtt"]);
        assert_eq!(check_answer(&ProtocolList::new(&["mqtt"]).unwrap(), &ours), Ok(b"mqtt".to_vec()));
        for (bad, alert) in
            [(&["h2"][..], AlertDescription::ILLEGAL_PARAMETER), (&["coap", "mqtt"], AlertDescription::DECODE_ERROR)]
        {
            let err = check_answer(&ProtocolList::new(bad).unwrap(), &ours).unwrap_err();
            assert_eq!(err.alert_to_send(), Some(alert), "{bad:?}");
        }
    }

    #[test]
    fn a_configuration_lists_valid_names_once() {
        assert!(check_protocols(&list(&["coap", "mqtt"])).is_ok());
        assert!(check_protocols(&[Vec::new()]).is_err());
        assert!(check_protocols(&[vec![b'a'; 256]]).is_err());
        // 1,024 bytes with their length bytes, and one more.
        let full: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 255]).collect();
        assert!(check_protocols(&full).is_ok());
        assert!(check_protocols(&[full.clone(), vec![vec![9]]].concat()).is_err());
        // What the extension can carry at most.
        let most: Vec<Vec<u8>> = (0..=255u8).map(|i| vec![i; 254]).chain([vec![0; 252]]).collect();
        assert_eq!(ProtocolList::new(&most).map(|l| l.iter().count()), Some(257));
        assert_eq!(ProtocolList::new(&[most, vec![vec![1]]].concat()), None);
    }
}
