//! The server's ALPN callback of BoringSSL's shim (`-select-alpn`, `-decline-alpn`,
//! `-reject-alpn`, `-select-empty-alpn`, `-expect-advertised-alpn`), as an [`AlpnSelector`].

use rdtls_proto::alpn::{AlpnChoice, AlpnSelector, ProtocolList};

use crate::flags::TestConfig;

/// Decides as BoringSSL's test callback does: decline, refuse, or check the offer and answer
/// the selected protocol (an empty one under `-select-empty-alpn`).
#[derive(Debug)]
pub(crate) struct Callback {
    choice: AlpnChoice,
    /// `-expect-advertised-alpn`: the client's offer, in the wire format (each name after its
    /// length byte).
    expected_offer: Option<Vec<u8>>,
}

impl Callback {
    /// The callback the flags ask for, if any (BoringSSL installs one only then).
    pub(crate) fn from_flags(test: &TestConfig) -> Option<Self> {
        let choice = if test.decline_alpn {
            AlpnChoice::Decline
        } else if test.reject_alpn {
            AlpnChoice::Refuse
        } else if test.select_empty_alpn {
            AlpnChoice::Protocol(Vec::new())
        } else {
            AlpnChoice::Protocol(test.select_alpn.clone()?)
        };
        Some(Self { choice, expected_offer: test.expect_advertised_alpn.clone() })
    }
}

impl AlpnSelector for Callback {
    fn select(&self, offered: &ProtocolList, _server_name: Option<&str>) -> AlpnChoice {
        if let (AlpnChoice::Protocol(_), Some(expected)) = (&self.choice, &self.expected_offer) {
            let mut wire = Vec::new();
            offered.emit(&mut wire);
            if wire.get(2..) != Some(&expected[..]) {
                // As BoringSSL's shim: the test fails whatever it expected.
                eprintln!("bad ALPN select callback inputs");
                std::process::exit(1);
            }
        }
        self.choice.clone()
    }
}
