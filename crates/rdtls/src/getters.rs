//! The getters (and the hand-off) the blocking and the tokio `Connection` share, written once: both hold their
//! [`Driver`](crate::driver::Driver) in `d`.

/// Expands, inside an `impl` of a connection type, to its getters. The names they use
/// (`lock`, `Proto`, `MutexGuard`, `SocketInfo`…) come from the calling module.
macro_rules! connection_getters {
    () => {
        /// Hands this connection over to another thread, task or process (EdgerOS `flyAway`):
        /// returns its socket's descriptor and the session state, which
        /// [`from_fd`](Self::from_fd) resumes. Only connections with their own socket can fly
        /// (clients, and listeners with
        /// [`connection_sockets`](crate::ListenerOptions::connection_sockets)); the
        /// configuration must allow session export. The state holds the session's secrets: pass
        /// it privately. Messages received and not yet read, and datagrams the peer sent that
        /// are queued for the connection, travel with the state, so nothing sent right after
        /// the handshake is lost: [`from_fd`](Self::from_fd) delivers them first. A DTLS 1.3
        /// connection cannot fly while its last handshake flight or a KeyUpdate awaits the
        /// peer's acknowledgement.
        #[cfg(unix)]
        pub fn fly_away(mut self) -> io::Result<(std::os::fd::OwnedFd, zeroize::Zeroizing<Vec<u8>>)> {
            self.d.fly_away()
        }

        /// Resumes a connection handed over with [`fly_away`](Self::fly_away) (EdgerOS
        /// `createByFd`). The socket must be connected to the peer.
        #[cfg(unix)]
        pub fn from_fd(fd: std::os::fd::OwnedFd, state: &[u8], config: Arc<Config>) -> io::Result<Self> {
            Self::from_driver(crate::driver::Driver::from_fd(fd, state, config)?)
        }

        /// DTLS 1.3: updates the keys we send with, and with `request_peer` asks the peer to
        /// update its own (RFC 9147 §8). The KeyUpdate goes out now and is resent until the
        /// peer acknowledges it, while this connection is used; messages sent meanwhile use
        /// the current keys, then the new ones. Fails on a DTLS 1.2 connection.
        pub fn update_keys(&mut self, request_peer: bool) -> std::io::Result<()> {
            self.d.update_keys(request_peer)
        }

        /// The protocol state (cipher suite, identity, counters, verification errors…), locked
        /// while the guard lives.
        pub fn connection(&self) -> MutexGuard<'_, Proto> {
            lock(&self.d.shared.proto)
        }

        /// The negotiated cipher suite.
        pub fn cipher_suite(&self) -> Option<&'static CipherSuite> {
            lock(&self.d.shared.proto).cipher_suite()
        }

        /// The negotiated protocol version.
        pub fn protocol(&self) -> Option<Protocol> {
            lock(&self.d.shared.proto).protocol()
        }

        /// Keying material for another protocol (DTLS-SRTP, for one): `len` bytes under
        /// `label` and an optional `context` (RFC 5705, RFC 8446 §7.5). The configuration must
        /// keep the secret ([`ConfigBuilder::keying_material_exporter`]); see
        /// [`Connection::export_keying_material`](rdtls_proto::Connection::export_keying_material).
        ///
        /// [`ConfigBuilder::keying_material_exporter`]: rdtls_proto::ConfigBuilder::keying_material_exporter
        pub fn export_keying_material(&self, label: &[u8], context: Option<&[u8]>, len: usize) -> io::Result<Vec<u8>> {
            let mut out = vec![0; len];
            lock(&self.d.shared.proto).export_keying_material(label, context, &mut out)?;
            Ok(out)
        }

        /// The application-layer protocol the handshake agreed on (ALPN, RFC 7301; see
        /// [`ConfigBuilder::alpn_protocols`](rdtls_proto::ConfigBuilder::alpn_protocols)).
        pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
            lock(&self.d.shared.proto).alpn_protocol().map(<[u8]>::to_vec)
        }

        /// The SRTP protection profile the handshake agreed on (DTLS-SRTP, RFC 5764; see
        /// [`ConfigBuilder::srtp_profiles`](rdtls_proto::ConfigBuilder::srtp_profiles)), or the
        /// one an imported session had.
        pub fn srtp_profile(&self) -> Option<rdtls_proto::srtp::SrtpProfile> {
            lock(&self.d.shared.proto).srtp_profile()
        }

        /// The SRTP master keys and salts of both sides for that profile (RFC 5764 §4.2); see
        /// [`Connection::srtp_keying_material`](rdtls_proto::Connection::srtp_keying_material).
        pub fn srtp_keying_material(&self) -> io::Result<rdtls_proto::srtp::SrtpKeyingMaterial> {
            Ok(lock(&self.d.shared.proto).srtp_keying_material()?)
        }

        /// Whether the handshake resumed a session (an abbreviated handshake, no certificates).
        pub fn resumed(&self) -> bool {
            lock(&self.d.shared.proto).resumed()
        }

        /// Client: the session to resume a later connection with, if the configuration keeps
        /// sessions and the server gave one (see
        /// [`ConfigBuilder::session_store`](rdtls_proto::ConfigBuilder::session_store), which
        /// clients use by themselves).
        pub fn session(&self) -> Option<rdtls_proto::resumption::Session> {
            lock(&self.d.shared.proto).session().cloned()
        }

        /// The group of the handshake's key exchange (X25519MLKEM768, x25519, ...), if it had
        /// one.
        pub fn key_exchange_group(&self) -> Option<rdtls_proto::crypto::KxGroup> {
            lock(&self.d.shared.proto).key_exchange_group()
        }

        /// The PSK identity the client used.
        pub fn psk_identity(&self) -> Option<Vec<u8>> {
            lock(&self.d.shared.proto).psk_identity().map(<[u8]>::to_vec)
        }

        /// The peer's certificate chain (empty for PSK).
        pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
            lock(&self.d.shared.proto).peer_certificates().to_vec()
        }

        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.d.shared.socket.local_addr()
        }

        /// The peer's address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            Ok(self.d.shared.peer())
        }

        /// The socket's options as the system reports them.
        pub fn socket_info(&self) -> io::Result<SocketInfo> {
            socket_info(&self.d.shared.socket)
        }

        /// Changes socket options (TTL, buffer sizes, device). On a connection that shares its
        /// listener's socket this changes the listener's socket.
        pub fn set_socket_options(&self, options: &SocketOptions) -> io::Result<()> {
            options.apply(&self.d.shared.socket)
        }

        /// Whether the connection is closed (by us, by the peer, or by an error).
        pub fn is_closed(&self) -> bool {
            self.d.is_closed()
        }

        /// The last error of an operation on this connection, or the socket's pending error, and
        /// clears it (EdgerOS `error()`).
        pub fn take_error(&mut self) -> Option<io::Error> {
            self.d.take_error()
        }
    };
}

pub(crate) use connection_getters;
