//! The TLS 1.3 key schedule (RFC 8446 §7.1), with the label prefix its protocol uses: `"dtls13"`
//! for DTLS 1.3 (RFC 9147 §5.9), `"tls13 "` for TLS 1.3 (the RFC 8448 traces test it that way).
//!
//! ```text
//! PSK or 0 → Extract(0) = Early Secret ─ "ext binder" / "res binder"
//!                │ Derive-Secret("derived", "")
//! (EC)DHE → Extract = Handshake Secret ─ "c hs traffic", "s hs traffic" (ClientHello…ServerHello)
//!                │ Derive-Secret("derived", "")
//!       0 → Extract = Master Secret ─ "c ap traffic", "s ap traffic", "exp master"
//!                                     (ClientHello…server Finished)
//!                                   ─ "res master" (ClientHello…client Finished)
//! ```
//!
//! The stages are types: an [`EarlySecret`] becomes a [`HandshakeSecret`], which becomes a
//! [`MasterSecret`]; each is consumed by the step that derives the next, so no secret is used
//! at the wrong stage. Every secret is wiped when dropped.

use crate::crypto::{expand_traffic_secret, hkdf_expand_label, CryptoError, CryptoProvider, HashAlgorithm};

/// Longest secret: the output of SHA-384.
const MAX: usize = 48;

/// SHA-256 of the empty string.
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];
/// SHA-384 of the empty string.
const EMPTY_SHA384: [u8; 48] = [
    0x38, 0xb0, 0x60, 0xa7, 0x51, 0xac, 0x96, 0x38, 0x4c, 0xd9, 0x32, 0x7e, 0xb1, 0xb1, 0xe3, 0x6a, 0x21, 0xfd, 0xb7,
    0x11, 0x14, 0xbe, 0x07, 0x43, 0x4c, 0x0c, 0xc7, 0xbf, 0x63, 0xf6, 0xe1, 0xda, 0x27, 0x4e, 0xde, 0xbf, 0xe7, 0x6f,
    0x65, 0xfb, 0xd5, 0x1a, 0xd2, 0xf1, 0x48, 0x98, 0xb9, 0x5b,
];

/// A secret of the schedule (as long as the hash), wiped when dropped.
#[derive(Clone)]
pub(crate) struct Secret {
    buf: [u8; MAX],
    len: usize,
}

impl Secret {
    fn new(bytes: &[u8]) -> Self {
        let mut buf = [0u8; MAX];
        let len = bytes.len().min(MAX);
        buf[..len].copy_from_slice(&bytes[..len]);
        Self { buf, len }
    }

    /// A secret from its bytes (an imported session's traffic secret).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What the schedule is parameterised by: the crypto provider, the suite's hash and the label
/// prefix.
#[derive(Clone, Copy)]
pub(crate) struct Schedule<'a> {
    pub(crate) provider: &'a dyn CryptoProvider,
    pub(crate) hash: HashAlgorithm,
    pub(crate) prefix: &'static [u8],
}

impl Schedule<'_> {
    /// `HKDF-Expand-Label(secret, label, context, len)` into a new secret of `len` bytes.
    fn expand(&self, secret: &[u8], label: &[u8], context: &[u8], len: usize) -> Result<Secret, CryptoError> {
        let mut out = [0u8; MAX];
        let out = &mut out[..len.min(MAX)];
        hkdf_expand_label(self.provider, self.hash, secret, self.prefix, label, context, out)?;
        let s = Secret::new(out);
        zeroize::Zeroize::zeroize(out);
        Ok(s)
    }

    /// `Derive-Secret(secret, label, transcript_hash)`: an expansion as long as the hash.
    fn derive(&self, secret: &Secret, label: &[u8], transcript_hash: &[u8]) -> Result<Secret, CryptoError> {
        self.expand(secret.as_bytes(), label, transcript_hash, self.hash.output_len())
    }

    /// The hash of the empty string, the context of the "derived" steps and the binder keys: a
    /// constant of each hash function (FIPS 180-4's test vectors), checked against the provider
    /// in the tests.
    fn empty_hash(&self) -> crate::crypto::Digest {
        crate::crypto::Digest::new(match self.hash {
            HashAlgorithm::Sha256 => &EMPTY_SHA256,
            HashAlgorithm::Sha384 => &EMPTY_SHA384,
        })
    }

    /// `HKDF-Extract(salt, ikm)` as a secret.
    fn extract(&self, salt: &[u8], ikm: &[u8]) -> Secret {
        Secret::new(self.provider.hkdf_extract(self.hash, salt, ikm).as_bytes())
    }

    /// The next stage's salt: `Derive-Secret(secret, "derived", "")`.
    fn derived(&self, secret: &Secret) -> Result<Secret, CryptoError> {
        self.derive(secret, b"derived", self.empty_hash().as_bytes())
    }

    /// The early secret: `HKDF-Extract(0, psk)`, with a string of zeros for no PSK.
    pub(crate) fn early(&self, psk: Option<&[u8]>) -> EarlySecret {
        let zeros = [0u8; MAX];
        let zeros = &zeros[..self.hash.output_len()];
        EarlySecret(self.extract(zeros, psk.unwrap_or(zeros)))
    }

    /// `finished_key = HKDF-Expand-Label(base_key, "finished", "", Hash.length)` and the
    /// Finished message's `verify_data = HMAC(finished_key, transcript_hash)`, also the PSK
    /// binder's computation with a binder key.
    pub(crate) fn verify_data(&self, base_key: &Secret, transcript_hash: &[u8]) -> Result<Secret, CryptoError> {
        let key = self.expand(base_key.as_bytes(), b"finished", &[], self.hash.output_len())?;
        Ok(Secret::new(self.provider.hmac(self.hash, key.as_bytes(), &[transcript_hash]).as_bytes()))
    }

    /// The record protection keys of a traffic secret: the AEAD key (`key_len` bytes), the
    /// IV (`iv_len`) and the record-number key (RFC 9147 §4.2.3: label "sn", as long as the
    /// AEAD key).
    pub(crate) fn traffic_keys(
        &self,
        secret: &Secret,
        key_len: usize,
        iv_len: usize,
    ) -> Result<TrafficKeys, CryptoError> {
        let (mut key, mut iv, mut sn) = ([0u8; MAX], [0u8; MAX], [0u8; MAX]);
        let (k, i, n) = (&mut key[..key_len.min(MAX)], &mut iv[..iv_len.min(MAX)], &mut sn[..key_len.min(MAX)]);
        let done = expand_traffic_secret(self.provider, self.hash, secret.as_bytes(), self.prefix, k, i, n);
        let keys = TrafficKeys { key: Secret::new(k), iv: Secret::new(i), sn: Secret::new(n) };
        for b in [&mut key, &mut iv, &mut sn] {
            zeroize::Zeroize::zeroize(b);
        }
        done.map(|()| keys)
    }

    /// The traffic secret after a KeyUpdate (RFC 8446 §7.2): label "traffic upd".
    pub(crate) fn next_traffic_secret(&self, secret: &Secret) -> Result<Secret, CryptoError> {
        self.derive(secret, b"traffic upd", &[])
    }

    /// The PSK a NewSessionTicket with `nonce` stands for (RFC 8446 §4.6.1).
    pub(crate) fn resumption_psk(&self, resumption_master: &Secret, nonce: &[u8]) -> Result<Secret, CryptoError> {
        self.expand(resumption_master.as_bytes(), b"resumption", nonce, self.hash.output_len())
    }
}

/// The keys of one traffic secret.
#[derive(Debug)]
pub(crate) struct TrafficKeys {
    pub(crate) key: Secret,
    pub(crate) iv: Secret,
    pub(crate) sn: Secret,
}

/// A traffic secret for each direction.
#[derive(Debug)]
pub(crate) struct TrafficSecrets {
    pub(crate) client: Secret,
    pub(crate) server: Secret,
}

/// The first stage.
#[derive(Debug)]
pub(crate) struct EarlySecret(Secret);

impl EarlySecret {
    /// The binder key of the PSK it was made from: "ext binder" for an external PSK, "res
    /// binder" for a resumption PSK.
    pub(crate) fn binder_key(&self, s: &Schedule<'_>, external: bool) -> Result<Secret, CryptoError> {
        let label: &[u8] = if external { b"ext binder" } else { b"res binder" };
        s.derive(&self.0, label, s.empty_hash().as_bytes())
    }

    /// Mixes in the (EC)DHE shared secret (`None` for a psk_ke handshake: a string of zeros).
    pub(crate) fn into_handshake(
        self,
        s: &Schedule<'_>,
        shared: Option<&[u8]>,
    ) -> Result<HandshakeSecret, CryptoError> {
        let salt = s.derived(&self.0)?;
        let zeros = [0u8; MAX];
        let ikm = shared.unwrap_or(&zeros[..s.hash.output_len()]);
        Ok(HandshakeSecret(s.extract(salt.as_bytes(), ikm)))
    }
}

/// The second stage.
#[derive(Debug)]
pub(crate) struct HandshakeSecret(Secret);

impl HandshakeSecret {
    /// The handshake traffic secrets, over the transcript through ServerHello.
    pub(crate) fn traffic(&self, s: &Schedule<'_>, transcript_hash: &[u8]) -> Result<TrafficSecrets, CryptoError> {
        Ok(TrafficSecrets {
            client: s.derive(&self.0, b"c hs traffic", transcript_hash)?,
            server: s.derive(&self.0, b"s hs traffic", transcript_hash)?,
        })
    }

    /// The master secret.
    pub(crate) fn into_master(self, s: &Schedule<'_>) -> Result<MasterSecret, CryptoError> {
        let salt = s.derived(&self.0)?;
        let zeros = [0u8; MAX];
        Ok(MasterSecret(s.extract(salt.as_bytes(), &zeros[..s.hash.output_len()])))
    }
}

/// The last stage.
#[derive(Debug)]
pub(crate) struct MasterSecret(Secret);

impl MasterSecret {
    /// The first application traffic secrets, over the transcript through the server's
    /// Finished.
    pub(crate) fn traffic(&self, s: &Schedule<'_>, transcript_hash: &[u8]) -> Result<TrafficSecrets, CryptoError> {
        Ok(TrafficSecrets {
            client: s.derive(&self.0, b"c ap traffic", transcript_hash)?,
            server: s.derive(&self.0, b"s ap traffic", transcript_hash)?,
        })
    }

    /// The exporter master secret (over the same transcript as [`traffic`](Self::traffic)).
    pub(crate) fn exporter(&self, s: &Schedule<'_>, transcript_hash: &[u8]) -> Result<Secret, CryptoError> {
        s.derive(&self.0, b"exp master", transcript_hash)
    }

    /// The resumption master secret, over the transcript through the client's Finished.
    pub(crate) fn resumption(&self, s: &Schedule<'_>, transcript_hash: &[u8]) -> Result<Secret, CryptoError> {
        s.derive(&self.0, b"res master", transcript_hash)
    }
}

#[cfg(test)]
mod tests {
    //! Known answers: the "Simple 1-RTT Handshake" trace of RFC 8448 §3 (SHA-256,
    //! TLS_AES_128_GCM_SHA256, X25519), which uses the "tls13 " prefix. Passing it with the
    //! prefix as a parameter shows the schedule is the RFC's; the DTLS prefix then changes
    //! every output.

    use super::*;
    use crate::crypto::{default_provider, DTLS13_LABEL_PREFIX};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// The transcript hashes the trace gives: through ServerHello, through the server's
    /// CertificateVerify, through the server's Finished, through the client's Finished.
    const HASH_SH: &str = "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8";
    const HASH_CV: &str = "edb7725fa7a3473b031ec8ef65a2485493900138a2b91291407d7951a06110ed";
    const HASH_SF: &str = "9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13";
    const HASH_CF: &str = "209145a96ee8e2a122ff810047cc952684658d6049e86429426db87c54ad143d";
    const SHARED: &str = "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d";

    #[test]
    fn the_empty_hashes_are_the_providers() {
        use crate::crypto::CryptoProvider;
        let p = crate::crypto::aws_lc::AwsLcProvider;
        for hash in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
            let s = Schedule { provider: &p, hash, prefix: b"dtls13" };
            assert_eq!(s.empty_hash().as_bytes(), p.hash(hash, &[]).as_bytes(), "{hash:?}");
        }
    }

    #[test]
    fn rfc_8448_simple_1rtt_trace() {
        let provider = default_provider();
        let s = Schedule { provider: &*provider, hash: HashAlgorithm::Sha256, prefix: b"tls13 " };

        let early = s.early(None);
        assert_eq!(early.0.as_bytes(), h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"));
        assert_eq!(
            s.derived(&early.0).unwrap().as_bytes(),
            h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
        );

        let hs = early.into_handshake(&s, Some(&h(SHARED))).unwrap();
        assert_eq!(hs.0.as_bytes(), h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"));
        let hs_traffic = hs.traffic(&s, &h(HASH_SH)).unwrap();
        assert_eq!(hs_traffic.client.as_bytes(), h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"));
        assert_eq!(hs_traffic.server.as_bytes(), h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"));
        let server_hs = s.traffic_keys(&hs_traffic.server, 16, 12).unwrap();
        assert_eq!(server_hs.key.as_bytes(), h("3fce516009c21727d0f2e4e86ee403bc"));
        assert_eq!(server_hs.iv.as_bytes(), h("5d313eb2671276ee13000b30"));
        let client_hs = s.traffic_keys(&hs_traffic.client, 16, 12).unwrap();
        assert_eq!(client_hs.key.as_bytes(), h("dbfaa693d1762c5b666af5d950258d01"));
        assert_eq!(client_hs.iv.as_bytes(), h("5bd3c71b836e0b76bb73265f"));

        assert_eq!(
            s.derived(&hs.0).unwrap().as_bytes(),
            h("43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4")
        );
        let server_finished = s.verify_data(&hs_traffic.server, &h(HASH_CV)).unwrap();
        assert_eq!(server_finished.as_bytes(), h("9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"));
        let client_finished = s.verify_data(&hs_traffic.client, &h(HASH_SF)).unwrap();
        assert_eq!(client_finished.as_bytes(), h("a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61"));

        let master = hs.into_master(&s).unwrap();
        assert_eq!(master.0.as_bytes(), h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"));
        let ap = master.traffic(&s, &h(HASH_SF)).unwrap();
        assert_eq!(ap.client.as_bytes(), h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"));
        assert_eq!(ap.server.as_bytes(), h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"));
        let server_ap = s.traffic_keys(&ap.server, 16, 12).unwrap();
        assert_eq!(server_ap.key.as_bytes(), h("9f02283b6c9c07efc26bb9f2ac92e356"));
        assert_eq!(server_ap.iv.as_bytes(), h("cf782b88dd83549aadf1e984"));
        let client_ap = s.traffic_keys(&ap.client, 16, 12).unwrap();
        assert_eq!(client_ap.key.as_bytes(), h("17422dda596ed5d9acd890e3c63f5051"));
        assert_eq!(client_ap.iv.as_bytes(), h("5b78923dee08579033e523d9"));
        let exporter = master.exporter(&s, &h(HASH_SF)).unwrap();
        assert_eq!(exporter.as_bytes(), h("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50"));

        let resumption = master.resumption(&s, &h(HASH_CF)).unwrap();
        assert_eq!(resumption.as_bytes(), h("7df235f2031d2a051287d02b0241b0bfdaf86cc856231f2d5aba46c434ec196c"));
        // The ticket of the trace has the nonce 00 00; the resumed handshake starts from it.
        let psk = s.resumption_psk(&resumption, &[0, 0]).unwrap();
        assert_eq!(psk.as_bytes(), h("4ecd0eb6ec3b4d87f5d6028f922ca4c5851a277fd41311c9e62d2c9492e1c4f3"));
        let resumed = s.early(Some(psk.as_bytes()));
        assert_eq!(resumed.0.as_bytes(), h("9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c"));
        let binder_key = resumed.binder_key(&s, false).unwrap();
        assert_eq!(binder_key.as_bytes(), h("69fe131a3bbad5d63c64eebcc30e395b9d8107726a13d074e389dbc8a4e47256"));
        // The binder over the truncated ClientHello of the resumed handshake.
        let binder =
            s.verify_data(&binder_key, &h("63224b2e4573f2d3454ca84b9d009a04f6be9e05711a8396473aefa01e924a14")).unwrap();
        assert_eq!(binder.as_bytes(), h("3add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d"));
    }

    #[test]
    fn the_dtls_prefix_gives_other_secrets_from_the_same_inputs() {
        let provider = default_provider();
        let tls = Schedule { provider: &*provider, hash: HashAlgorithm::Sha256, prefix: b"tls13 " };
        let dtls = Schedule { prefix: DTLS13_LABEL_PREFIX, ..tls };
        // Extract does not use labels: the early secrets agree.
        assert_eq!(tls.early(None).0.as_bytes(), dtls.early(None).0.as_bytes());
        let run = |s: &Schedule<'_>| {
            let hs = s.early(None).into_handshake(s, Some(&h(SHARED))).unwrap();
            let t = hs.traffic(s, &h(HASH_SH)).unwrap();
            let keys = s.traffic_keys(&t.client, 16, 12).unwrap();
            (
                hs.0.as_bytes().to_vec(),
                t.client.as_bytes().to_vec(),
                keys.key.as_bytes().to_vec(),
                keys.sn.as_bytes().to_vec(),
            )
        };
        let (a, b) = (run(&tls), run(&dtls));
        assert_ne!(a.0, b.0, "the handshake secret depends on the \"derived\" label");
        assert_ne!(a.1, b.1);
        assert_ne!(a.2, b.2);
        assert_eq!(b.3.len(), 16, "the record-number key is as long as the AEAD key");
        assert_ne!(b.2, b.3, "the record-number key differs from the AEAD key");
    }

    #[test]
    fn sha384_secrets_are_48_bytes_and_key_update_moves_on() {
        let provider = default_provider();
        let s = Schedule { provider: &*provider, hash: HashAlgorithm::Sha384, prefix: DTLS13_LABEL_PREFIX };
        let hs = s.early(Some(b"external psk")).into_handshake(&s, None).unwrap();
        let t = hs.traffic(&s, &[7; 48]).unwrap();
        assert_eq!(t.client.as_bytes().len(), 48);
        let next = s.next_traffic_secret(&t.client).unwrap();
        assert_eq!(next.as_bytes().len(), 48);
        assert_ne!(next.as_bytes(), t.client.as_bytes());
        assert_ne!(s.next_traffic_secret(&next).unwrap().as_bytes(), next.as_bytes());
        let keys = s.traffic_keys(&next, 32, 12).unwrap();
        assert_eq!((keys.key.as_bytes().len(), keys.iv.as_bytes().len(), keys.sn.as_bytes().len()), (32, 12, 32));
        assert_eq!(format!("{next:?}"), "Secret(<redacted>)", "secrets never print");
    }
}
