//! The getters the blocking and the tokio `Connection` share, written once: both hold the
//! connection's shared state in `shared` and the last error of an operation in `last_error`.

/// Expands, inside an `impl` of a connection type, to its getters. The names they use
/// (`lock`, `Proto`, `MutexGuard`, `SocketInfo`…) come from the calling module.
macro_rules! connection_getters {
    () => {
        /// The protocol state (cipher suite, identity, counters, verification errors…), locked
        /// while the guard lives.
        pub fn connection(&self) -> MutexGuard<'_, Proto> {
            lock(&self.shared.proto)
        }

        /// The negotiated cipher suite.
        pub fn cipher_suite(&self) -> Option<&'static CipherSuite> {
            lock(&self.shared.proto).cipher_suite()
        }

        /// The negotiated protocol version.
        pub fn protocol(&self) -> Option<Protocol> {
            lock(&self.shared.proto).protocol()
        }

        /// The PSK identity the client used.
        pub fn psk_identity(&self) -> Option<Vec<u8>> {
            lock(&self.shared.proto).psk_identity().map(<[u8]>::to_vec)
        }

        /// The peer's certificate chain (empty for PSK).
        pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
            lock(&self.shared.proto).peer_certificates().to_vec()
        }

        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.shared.socket.local_addr()
        }

        /// The peer's address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            Ok(self.shared.peer)
        }

        /// The socket's options as the system reports them.
        pub fn socket_info(&self) -> io::Result<SocketInfo> {
            socket_info(&self.shared.socket)
        }

        /// Changes socket options (TTL, buffer sizes, device). On a connection that shares its
        /// listener's socket this changes the listener's socket.
        pub fn set_socket_options(&self, options: &SocketOptions) -> io::Result<()> {
            options.apply(&self.shared.socket)
        }

        /// Whether the connection is closed (by us, by the peer, or by an error).
        pub fn is_closed(&self) -> bool {
            self.shared.closed.load(Ordering::Relaxed) || lock(&self.shared.proto).is_closed()
        }

        /// The last error of an operation on this connection, or the socket's pending error, and
        /// clears it (EdgerOS `error()`).
        pub fn take_error(&mut self) -> Option<io::Error> {
            self.last_error.take().or_else(|| self.shared.socket.take_error().ok().flatten())
        }
    };
}

pub(crate) use connection_getters;
