//! Watching a connection at work, for logs and tools: every datagram from the peer as it
//! arrived (before decryption), the protocol's events (a flight retransmitted: Qt's
//! `handshakeTimeout` signal; warning alerts; the end), and the progress of a handshake. Qt's DTLS
//! examples print all three; an [`Observer`] lets a program do the same without driving the
//! protocol core itself. Give it to [`SocketOptions::observer`](crate::SocketOptions::observer)
//! (clients, and a listener's connections) or [`Server::set_observer`](crate::Server::set_observer).
//!
//! ```
//! use rdtls::{Observed, Observer, SocketOptions};
//!
//! let options = SocketOptions::default().observer(Observer::new(|seen| match seen {
//!     Observed::Received { peer, datagram } => eprintln!("{peer}: {} bytes", datagram.len()),
//!     Observed::Event { peer, event } => eprintln!("{peer}: {event:?}"),
//!     _ => {}
//! }));
//! # let _ = options;
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use rdtls_proto::Event;

/// What an [`Observer`] sees.
#[derive(Debug)]
#[non_exhaustive]
pub enum Observed<'a> {
    /// A datagram from `peer`, as it arrived: records still encrypted.
    Received {
        /// Who sent it.
        peer: SocketAddr,
        /// The datagram.
        datagram: &'a [u8],
    },
    /// A handshake datagram from `peer` was handled and the handshake goes on.
    Handshaking {
        /// The peer.
        peer: SocketAddr,
    },
    /// A connection follows its peer to a new address (a NAT rebinding, a move between
    /// networks; Connection ID tells which connection it is): a listener's, on its newest
    /// authenticated record from there, or once the peer answered a return routability check.
    Moved {
        /// Where the peer was.
        from: SocketAddr,
        /// Where it is now.
        to: SocketAddr,
    },
    /// An event of the protocol core: `Retransmitted` (Qt's `handshakeTimeout`), `Connected`,
    /// a warning alert, `Closed`…
    Event {
        /// The peer.
        peer: SocketAddr,
        /// The event.
        event: &'a Event,
    },
}

/// A callback that watches connections: datagrams as they arrive, protocol events, handshake
/// progress. It runs on whichever thread
/// serves the connection, with the connection's state locked: keep it short, and do not call
/// the connection from it.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&Observed<'_>) + Send + Sync>);

impl Observer {
    /// An observer calling `f`.
    pub fn new(f: impl Fn(&Observed<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn see(&self, seen: &Observed<'_>) {
        (self.0)(seen);
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

/// Two observers are equal when they are the same callback.
impl PartialEq for Observer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Observer {}
