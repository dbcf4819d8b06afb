//! Unit tests of the default provider.
use super::*;

const ALL_AEADS: [AeadAlgorithm; 5] = [
    AeadAlgorithm::Aes128Gcm,
    AeadAlgorithm::Aes256Gcm,
    AeadAlgorithm::ChaCha20Poly1305,
    AeadAlgorithm::Aes128Ccm,
    AeadAlgorithm::Aes128Ccm8,
];
const ALL_GROUPS: [KxGroup; 3] = [KxGroup::X25519, KxGroup::Secp256r1, KxGroup::Secp384r1];
const HYBRID_GROUPS: [KxGroup; 2] = [KxGroup::X25519MlKem768, KxGroup::Secp256r1MlKem768];

fn unhex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

fn test_key(alg: AeadAlgorithm) -> Vec<u8> {
    (0..alg.key_len()).map(|i| i as u8).collect()
}

const NONCE: [u8; 12] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab];
// A DTLS 1.2 AEAD additional_data (RFC 6347 §4.1.2.1, RFC 5246 §6.2.3.3): epoch 1, sequence
// number 0, application_data, DTLS 1.2, length 28 (that of `PLAINTEXT`).
const AAD: [u8; 13] = [0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x17, 0xfe, 0xfd, 0x00, 0x1c];
const PLAINTEXT: &[u8] = b"dtls-proto aead known answer";

/// Ciphertext || tag of `PLAINTEXT` under `test_key(alg)`, `NONCE` and `AAD`, computed
/// independently with Python's `cryptography` package (AESGCM, ChaCha20Poly1305, AESCCM).
fn known_answer(alg: AeadAlgorithm) -> Vec<u8> {
    unhex(match alg {
        AeadAlgorithm::Aes128Gcm => {
            "cef254c853f94165fe1795612373d44038804c7fed375cc1566714e90cc0f6af922e8ed6868751520a21f0a8"
        }
        AeadAlgorithm::Aes256Gcm => {
            "826c105e68bb70d0160aa7b2621ba4fe1bc23667fc972302ef7943f40148c120ef484d0aae9612256adb7cfb"
        }
        AeadAlgorithm::ChaCha20Poly1305 => {
            "68df142c6096b0c2d460d375999b99dbf630bcc82d4a01cdc7afbec34076fbe5dd4cc00adce69aff55f64b11"
        }
        AeadAlgorithm::Aes128Ccm => {
            "cac704a2884fb8eea6a9209cff51bdc3209940bedfabbb6efca0557e80d973503da60d59a412af1770605724"
        }
        AeadAlgorithm::Aes128Ccm8 => "cac704a2884fb8eea6a9209cff51bdc3209940bedfabbb6efca0557ea1afd81e03cdeaef",
    })
}

fn seal(key: &dyn AeadKey, nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let mut buf = pt.to_vec();
    buf.resize(pt.len() + key.tag_len(), 0);
    key.seal_in_place(nonce, aad, &mut buf).expect("seal");
    buf
}

#[test]
fn aead_known_answers() {
    let p = AwsLcProvider;
    for alg in ALL_AEADS {
        let key = p.aead_key(alg, &test_key(alg)).expect("key");
        assert_eq!(key.tag_len(), alg.tag_len(), "{alg:?}");
        let expected = known_answer(alg);
        let sealed = seal(&*key, &NONCE, &AAD, PLAINTEXT);
        assert_eq!(sealed, expected, "{alg:?} seal");
        let mut buf = expected.clone();
        key.open_in_place(&NONCE, &AAD, &mut buf).expect("open");
        assert_eq!(&buf[..PLAINTEXT.len()], PLAINTEXT, "{alg:?} open");
    }
}

#[test]
fn aead_round_trip_various_lengths() {
    let p = AwsLcProvider;
    for alg in ALL_AEADS {
        let key = p.aead_key(alg, &test_key(alg)).expect("key");
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1024, 16384] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let sealed = seal(&*key, &NONCE, &AAD, &pt);
            assert_eq!(sealed.len(), len + alg.tag_len());
            if len >= 16 {
                assert_ne!(&sealed[..len], &pt[..], "{alg:?} len {len}: not encrypted");
            }
            let mut buf = sealed.clone();
            key.open_in_place(&NONCE, &AAD, &mut buf).expect("open");
            assert_eq!(&buf[..len], &pt[..], "{alg:?} len {len}");
            // Empty AAD is a different message.
            let mut buf = sealed;
            assert_eq!(key.open_in_place(&NONCE, &[], &mut buf), Err(CryptoError), "{alg:?} len {len}");
        }
    }
}

#[test]
fn aead_detects_tampering() {
    let p = AwsLcProvider;
    for alg in ALL_AEADS {
        let key = p.aead_key(alg, &test_key(alg)).expect("key");
        let sealed = seal(&*key, &NONCE, &AAD, PLAINTEXT);
        // Every single-bit flip anywhere in ciphertext or tag is caught.
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut buf = sealed.clone();
                buf[i] ^= bit;
                assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} byte {i}");
            }
        }
        // Wrong AAD, wrong nonce, truncated, extended.
        for i in 0..AAD.len() {
            let mut aad = AAD;
            aad[i] ^= 0x01;
            let mut buf = sealed.clone();
            assert_eq!(key.open_in_place(&NONCE, &aad, &mut buf), Err(CryptoError), "{alg:?} aad {i}");
        }
        let mut nonce = NONCE;
        nonce[11] ^= 0x01;
        let mut buf = sealed.clone();
        assert_eq!(key.open_in_place(&nonce, &AAD, &mut buf), Err(CryptoError), "{alg:?} nonce");
        let mut buf = sealed[..sealed.len() - 1].to_vec();
        assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} truncated");
        let mut buf = sealed.clone();
        buf.push(0);
        assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} extended");
        // A different key of the same algorithm.
        let mut other = test_key(alg);
        other[0] ^= 0x01;
        let other = p.aead_key(alg, &other).expect("key");
        let mut buf = sealed.clone();
        assert_eq!(other.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} other key");
        // The untouched record still opens.
        let mut buf = sealed;
        key.open_in_place(&NONCE, &AAD, &mut buf).expect("open");
    }
}

#[test]
fn aead_rejects_buffers_shorter_than_the_tag() {
    let p = AwsLcProvider;
    for alg in ALL_AEADS {
        let key = p.aead_key(alg, &test_key(alg)).expect("key");
        for len in 0..alg.tag_len() {
            let mut buf = vec![0u8; len];
            assert_eq!(key.seal_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} seal {len}");
            assert_eq!(key.open_in_place(&NONCE, &AAD, &mut buf), Err(CryptoError), "{alg:?} open {len}");
        }
        // Exactly a tag: an empty record.
        let mut buf = vec![0u8; alg.tag_len()];
        key.seal_in_place(&NONCE, &AAD, &mut buf).expect("seal empty");
        key.open_in_place(&NONCE, &AAD, &mut buf).expect("open empty");
    }
}

#[test]
fn aead_rejects_wrong_key_lengths() {
    let p = AwsLcProvider;
    for alg in ALL_AEADS {
        for len in [0usize, 1, 15, 16, 17, 24, 31, 32, 33, 64] {
            if len == alg.key_len() {
                continue;
            }
            assert!(p.aead_key(alg, &vec![0x42; len]).is_err(), "{alg:?} key of {len} bytes accepted");
        }
    }
}

#[test]
fn aead_keys_do_not_leak_in_debug() {
    let key_bytes = [0xa5u8; 32];
    let aes_lc = AwsLcAeadKey {
        alg: AeadAlgorithm::Aes256Gcm,
        key: aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &key_bytes).expect("key")),
    };
    let ccm = CcmKey::<U8>::new(AeadAlgorithm::Aes128Ccm8, &key_bytes[..16]).expect("key");
    // Exactly the algorithm, nothing else (0xa5 would show as "a5" or "165").
    assert_eq!(format!("{ccm:?}"), "CcmKey { alg: Aes128Ccm8, .. }");
    assert_eq!(format!("{aes_lc:?}"), "AwsLcAeadKey { alg: Aes256Gcm, .. }");
}

#[test]
fn hash_and_hmac_split_input_like_one_part() {
    let p = AwsLcProvider;
    let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
        let whole = p.hash(alg, &[&data]);
        assert_eq!(whole.as_bytes().len(), alg.output_len());
        assert_eq!(p.hash(alg, &[&data[..1], &[], &data[1..200], &data[200..]]).as_bytes(), whole.as_bytes());
        assert_ne!(p.hash(alg, &[&data[1..]]).as_bytes(), whole.as_bytes());

        let mac = p.hmac(alg, b"key", &[&data]);
        assert_eq!(mac.as_bytes().len(), alg.output_len());
        assert_eq!(p.hmac(alg, b"key", &[&data[..150], &data[150..]]).as_bytes(), mac.as_bytes());
        assert_ne!(p.hmac(alg, b"kex", &[&data]).as_bytes(), mac.as_bytes());
    }
    // SHA-256("abc") and SHA-384("abc"), FIPS 180-2 appendix B.1 / D.1.
    assert_eq!(
        p.hash(HashAlgorithm::Sha256, &[b"a", b"bc"]).as_bytes(),
        unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        p.hash(HashAlgorithm::Sha384, &[b"ab", b"c"]).as_bytes(),
        unhex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
    );
}

#[test]
fn prf_fallback_matches_aws_lc() {
    let p = AwsLcProvider;
    let secret = unhex("9bbe436ba940f017b17652849a71db35");
    let seed = unhex("a0ba9f936cda311827a6f796ffd5198c");
    for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
        for len in [1usize, 12, 31, 32, 33, 47, 48, 49, 100, 200] {
            let mut from_lc = vec![0u8; len];
            p.prf(alg, &secret, b"test label", &seed, &mut from_lc).expect("prf");
            let mut from_hmac = vec![0u8; len];
            p_hash(alg, &secret, b"test label", &seed, &mut from_hmac);
            assert_eq!(from_lc, from_hmac, "{alg:?} len {len}");
        }
    }
}

#[test]
fn prf_with_empty_secret_or_output() {
    let p = AwsLcProvider;
    // Computed independently with Python's hmac/hashlib: P_hash(b"", b"test label" || seed).
    let seed = unhex("a0ba9f936cda311827a6f796ffd5198c");
    let mut out = [0u8; 80];
    p.prf(HashAlgorithm::Sha256, &[], b"test label", &seed, &mut out).expect("prf");
    assert_eq!(
        out[..],
        unhex(
            "e9b8fa4ec6df21cd1ab1a7ef45af568d83f4ba1ef4cd5ee56d3078995b0bd586e472fbba58ba7e3c5931ad84a2145c7c\
             2a0cf795cbe0384ea90fd22e938e765a4ef7bfe5386cb3a4cbfc684cccc62076"
        )[..]
    );
    let seed = unhex("cd665cf6a8447dd6ff8b27555edb7465");
    let mut out = [0u8; 100];
    p.prf(HashAlgorithm::Sha384, &[], b"test label", &seed, &mut out).expect("prf");
    assert_eq!(
        out[..],
        unhex(
            "f2abead7c06aec214888840ebfd16ab1805f47d54af089468b7924541333897efdd46001fe5723dba6551ced63b0a063\
             f9a8bd8cf5d6e4f2a95e6d64c2ba1747553521ecdc1fedfffb8b3b5645a575f21dcb2f206a354bb6e3a6d44bea626401\
             ab00d9d3"
        )[..]
    );
    // Zero bytes requested: nothing to do, and not an error.
    p.prf(HashAlgorithm::Sha256, b"secret", b"label", b"seed", &mut []).expect("empty output");
}

#[test]
fn random_is_filled() {
    let p = AwsLcProvider;
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    p.fill_random(&mut a).expect("random");
    p.fill_random(&mut b).expect("random");
    assert_ne!(a, [0u8; 32]);
    assert_ne!(a, b);
    p.fill_random(&mut []).expect("empty");
}

#[test]
fn key_exchange_agrees_for_every_group() {
    let p = AwsLcProvider;
    for group in ALL_GROUPS {
        assert!(p.supports_group(group));
        let a = p.start_key_exchange(group).expect("a");
        let b = p.start_key_exchange(group).expect("b");
        assert_eq!(a.group(), group);
        assert_eq!(a.public_key().len(), public_key_len(group), "{group:?}");
        if group != KxGroup::X25519 {
            assert_eq!(a.public_key()[0], 0x04, "{group:?} public key not uncompressed");
        }
        assert_ne!(a.public_key(), b.public_key());
        let a_pub = a.public_key().to_vec();
        let b_pub = b.public_key().to_vec();
        let s1 = a.complete(&b_pub).expect("a completes");
        let s2 = b.complete(&a_pub).expect("b completes");
        let expected_len = match group {
            KxGroup::Secp384r1 => 48,
            _ => 32,
        };
        assert_eq!(s1.as_bytes().len(), expected_len, "{group:?}");
        assert_eq!(s1.as_bytes(), s2.as_bytes(), "{group:?}");
    }
}

#[test]
fn x25519_rfc7748_vector() {
    let p = AwsLcProvider;
    let alice = p
        .key_exchange_from_private_key(
            KxGroup::X25519,
            &unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        )
        .expect("alice");
    assert_eq!(alice.public_key(), unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    let shared =
        alice.complete(&unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")).expect("complete");
    assert_eq!(shared.as_bytes(), unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
}

#[test]
fn x25519_rejects_low_order_points_and_bad_lengths() {
    let p = AwsLcProvider;
    // u = 0 and u = 1 are of small order: the shared secret would be all zeros.
    let mut one = [0u8; 32];
    one[0] = 1;
    for peer in [[0u8; 32], one] {
        let kx = p.start_key_exchange(KxGroup::X25519).expect("kx");
        assert!(kx.complete(&peer).is_err());
    }
    let good_peer = p.start_key_exchange(KxGroup::X25519).expect("peer").public_key().to_vec();
    for len in [0usize, 1, 31, 33, 44, 65] {
        let mut peer = good_peer.clone();
        peer.resize(len, 0x09);
        let kx = p.start_key_exchange(KxGroup::X25519).expect("kx");
        assert!(kx.complete(&peer).is_err(), "{len}-byte X25519 key accepted");
    }
}

#[test]
fn nist_curves_accept_only_valid_uncompressed_points() {
    let p = AwsLcProvider;
    // The P-256 base point (SEC 2 §2.4.2), uncompressed.
    let g = unhex(
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
         4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    );
    let kx = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
    assert!(kx.complete(&g).is_ok(), "the base point is a valid peer key");

    let mut off_curve = g.clone();
    off_curve[64] ^= 0x01;
    let mut compressed = vec![0x03]; // y of G is odd.
    compressed.extend_from_slice(&g[1..33]);
    let mut hybrid = g.clone();
    hybrid[0] = 0x07;
    let mut no_prefix = g[1..].to_vec();
    no_prefix.push(0);
    let identity = vec![0x00];
    let mut zeros = vec![0u8; 65];
    zeros[0] = 0x04;
    for (what, peer) in [
        ("off-curve", off_curve),
        ("compressed", compressed),
        ("hybrid", hybrid),
        ("no prefix", no_prefix),
        ("identity", identity),
        ("(0, 0)", zeros),
        ("truncated", g[..64].to_vec()),
        ("empty", Vec::new()),
    ] {
        let kx = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
        assert!(kx.complete(&peer).is_err(), "P-256 {what} point accepted");
    }

    // A P-384 key pair rejects a P-256 point and vice versa.
    let p384 = p.start_key_exchange(KxGroup::Secp384r1).expect("kx");
    assert!(p384.complete(&g).is_err());
    let p384_pub = p.start_key_exchange(KxGroup::Secp384r1).expect("kx").public_key().to_vec();
    let p256 = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
    assert!(p256.complete(&p384_pub).is_err());

    // A DER SubjectPublicKeyInfo, which aws-lc-rs would parse, is not a TLS encoding.
    let kx = p.start_key_exchange(KxGroup::Secp256r1).expect("kx");
    let mut spki = unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(&g);
    assert!(kx.complete(&spki).is_err(), "SPKI accepted");
}

#[test]
fn imported_private_keys_are_validated() {
    let p = AwsLcProvider;
    assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &[0u8; 32]).is_err(), "zero scalar");
    assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &[1u8; 31]).is_err(), "short");
    assert!(p.key_exchange_from_private_key(KxGroup::Secp384r1, &[1u8; 32]).is_err(), "short");
    assert!(p.key_exchange_from_private_key(KxGroup::X25519, &[1u8; 31]).is_err(), "short");
    // The group order n and anything above it are not private keys.
    let n = unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &n).is_err(), "scalar n");
    assert!(p.key_exchange_from_private_key(KxGroup::Secp256r1, &[0xff; 32]).is_err(), "scalar 2^256 - 1");
    // n - 1 is the largest valid scalar.
    let mut n_minus_1 = n.clone();
    n_minus_1[31] -= 1;
    p.key_exchange_from_private_key(KxGroup::Secp256r1, &n_minus_1).expect("scalar n - 1");
    // Scalar 1 gives the base point.
    let mut one = [0u8; 32];
    one[31] = 1;
    let kx = p.key_exchange_from_private_key(KxGroup::Secp256r1, &one).expect("scalar 1");
    assert_eq!(
        kx.public_key(),
        unhex(
            "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
             4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
        )
    );
}

#[test]
fn key_exchange_does_not_leak_private_key_in_debug() {
    let p = AwsLcProvider;
    let private = [0x5au8; 32];
    let kx = AwsLcKeyExchange::new(
        KxGroup::X25519,
        agreement::PrivateKey::from_private_key(&agreement::X25519, &private).expect("key"),
    )
    .expect("kx");
    let text = format!("{kx:?}");
    assert_eq!(text, "AwsLcKeyExchange { group: X25519, .. }");
    let boxed = p.key_exchange_from_private_key(KxGroup::X25519, &private).expect("kx");
    let secret = boxed.complete(kx.public_key()).expect("complete");
    assert_eq!(format!("{secret:?}"), "SharedSecret(..)");
}

/// A field of the ML-KEM-768 known answer in `testdata/mlkem768_acvp_tc26.txt`.
fn mlkem_vector(field: &str) -> Vec<u8> {
    let text = include_str!("testdata/mlkem768_acvp_tc26.txt");
    let line = text.lines().find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(" = "))).expect("field");
    unhex(line)
}

// RFC 7748 §6.1: Alice's private key and public key, Bob's public key, and their shared secret.
const ALICE_X25519: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_X25519_PUB: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_X25519_PUB: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const X25519_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
// The P-256 base point G (SEC 2 §2.4.2): the public key of scalar 1, and x(1·G) is G's x.
const P256_G: &str = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
                      4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

#[test]
fn x25519mlkem768_known_answer() {
    // The client's share and secret from published values: an ML-KEM-768 decapsulation key,
    // ciphertext and secret from NIST's ACVP vectors, and X25519 keys from RFC 7748.
    let p = AwsLcProvider;
    let kx = p
        .hybrid_key_exchange_from_private_keys(KxGroup::X25519MlKem768, &mlkem_vector("dk"), &unhex(ALICE_X25519))
        .expect("hybrid key");
    assert_eq!(kx.group(), KxGroup::X25519MlKem768);
    let mut share = mlkem_vector("ek");
    share.extend_from_slice(&unhex(ALICE_X25519_PUB));
    assert_eq!(kx.public_key(), share, "client share = ek || X25519 key");
    assert_eq!(kx.public_key().len(), 1216);
    let mut server_share = mlkem_vector("c");
    server_share.extend_from_slice(&unhex(BOB_X25519_PUB));
    let secret = kx.complete(&server_share).expect("complete");
    let mut expected = mlkem_vector("k");
    expected.extend_from_slice(&unhex(X25519_SHARED));
    assert_eq!(secret.as_bytes(), expected, "secret = ML-KEM secret || X25519 secret");
}

#[test]
fn secp256r1mlkem768_known_answer() {
    // The P-256 part comes first: scalar 1 makes the public key G, and with G as the peer's
    // key the ECDH secret is G's x coordinate.
    let p = AwsLcProvider;
    let mut one = [0u8; 32];
    one[31] = 1;
    let kx = p
        .hybrid_key_exchange_from_private_keys(KxGroup::Secp256r1MlKem768, &mlkem_vector("dk"), &one)
        .expect("hybrid key");
    let g = unhex(P256_G);
    let mut share = g.clone();
    share.extend_from_slice(&mlkem_vector("ek"));
    assert_eq!(kx.public_key(), share, "client share = P-256 point || ek");
    let mut server_share = g.clone();
    server_share.extend_from_slice(&mlkem_vector("c"));
    let secret = kx.complete(&server_share).expect("complete");
    let mut expected = g[1..33].to_vec();
    expected.extend_from_slice(&mlkem_vector("k"));
    assert_eq!(secret.as_bytes(), expected, "secret = ECDH secret || ML-KEM secret");
}

#[test]
fn hybrid_groups_agree_and_lay_out_their_shares() {
    let p = AwsLcProvider;
    for group in HYBRID_GROUPS {
        assert!(p.supports_group(group));
        let client = p.start_key_exchange(group).expect("client");
        let client_share = client.public_key().to_vec();
        let accepted = p.accept_key_exchange(group, &client_share).expect("server");
        let (client_len, server_len) = match group {
            KxGroup::X25519MlKem768 => (1184 + 32, 1088 + 32),
            _ => (65 + 1184, 65 + 1088),
        };
        assert_eq!(client_share.len(), client_len, "{group:?}");
        assert_eq!(accepted.public_key.len(), server_len, "{group:?}");
        assert_eq!(accepted.secret.as_bytes().len(), 64, "{group:?}");
        let secret = client.complete(&accepted.public_key).expect("client completes");
        assert_eq!(secret.as_bytes(), accepted.secret.as_bytes(), "{group:?}");
        assert_ne!(p.start_key_exchange(group).expect("again").public_key(), &client_share[..], "fresh keys");
    }
}

#[test]
fn hybrid_server_share_halves_are_the_ciphertext_and_a_curve_key() {
    // The server's secret splits into what each half gives on its own: decapsulating its
    // ciphertext with the client's ML-KEM key, and X25519 with the client's curve key.
    let p = AwsLcProvider;
    let kx = p
        .hybrid_key_exchange_from_private_keys(KxGroup::X25519MlKem768, &mlkem_vector("dk"), &unhex(ALICE_X25519))
        .expect("hybrid key");
    let accepted = p.accept_key_exchange(KxGroup::X25519MlKem768, kx.public_key()).expect("accept");
    let (ct, server_x25519) = accepted.public_key.split_at(1088);
    let dk = aws_lc_rs::kem::DecapsulationKey::new(&aws_lc_rs::kem::ML_KEM_768, &mlkem_vector("dk")).expect("dk");
    let kem = dk.decapsulate(aws_lc_rs::kem::Ciphertext::from(ct)).expect("decapsulate");
    let x = p.key_exchange_from_private_key(KxGroup::X25519, &unhex(ALICE_X25519)).expect("x25519");
    let curve = x.complete(server_x25519).expect("x25519 completes");
    assert_eq!(&accepted.secret.as_bytes()[..32], kem.as_ref());
    assert_eq!(&accepted.secret.as_bytes()[32..], curve.as_bytes());
}

#[test]
fn hybrid_shares_of_the_wrong_shape_are_refused() {
    let p = AwsLcProvider;
    for group in HYBRID_GROUPS {
        let client = p.start_key_exchange(group).expect("client");
        let share = client.public_key().to_vec();
        for len in [0, 32, 65, 1184, share.len() - 1, share.len() + 1] {
            let mut bad = share.clone();
            bad.resize(len, 0);
            assert!(p.accept_key_exchange(group, &bad).is_err(), "{group:?}: {len}-byte client share accepted");
        }
        let server = p.accept_key_exchange(group, &share).expect("accept").public_key;
        for len in [0, 1088, server.len() - 1, server.len() + 1] {
            let mut bad = server.clone();
            bad.resize(len, 0);
            let client = p.start_key_exchange(group).expect("client");
            assert!(client.complete(&bad).is_err(), "{group:?}: {len}-byte server share accepted");
        }
    }
    // The curve half is checked as for the curve alone: an all-zero X25519 key (low order).
    let client = p.start_key_exchange(KxGroup::X25519MlKem768).expect("client");
    let mut share = client.public_key().to_vec();
    share[1184..].fill(0);
    assert!(p.accept_key_exchange(KxGroup::X25519MlKem768, &share).is_err(), "low-order X25519 half accepted");
    // An encapsulation key whose first coefficient is not reduced modulo q = 3329 fails FIPS
    // 203's modulus check (12-bit coefficients, little-endian: 0xfff = 4095).
    let mut share = client.public_key().to_vec();
    share[0] = 0xff;
    share[1] |= 0x0f;
    assert!(p.accept_key_exchange(KxGroup::X25519MlKem768, &share).is_err(), "unreduced ML-KEM key accepted");
    // The curve groups have no hybrid constructor, and the hybrid groups no curve one.
    assert!(p.key_exchange_from_private_key(KxGroup::X25519MlKem768, &[1; 32]).is_err());
    assert!(p.hybrid_key_exchange_from_private_keys(KxGroup::X25519, &mlkem_vector("dk"), &[1; 32]).is_err());
    assert!(p.hybrid_key_exchange_from_private_keys(KxGroup::X25519MlKem768, &[0; 2399], &[1; 32]).is_err());
}

#[test]
fn group_names_and_code_points_round_trip() {
    for g in KxGroup::ALL {
        assert_eq!(KxGroup::from_code_point(g.code_point()), Some(g));
        assert_eq!(g.name().parse::<KxGroup>(), Ok(g));
        assert_eq!(g.name().to_ascii_lowercase().parse::<KxGroup>(), Ok(g));
        assert_eq!(g.to_string(), g.name());
    }
    assert_eq!(KxGroup::X25519MlKem768.code_point(), 4588);
    assert_eq!("P-256".parse::<KxGroup>(), Ok(KxGroup::Secp256r1));
    let err = "x448".parse::<KxGroup>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown group `x448` (known: X25519MLKEM768, x25519, secp256r1, secp384r1, SecP256r1MLKEM768)"
    );
}
