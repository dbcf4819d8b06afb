//! Known-answer tests for the primitives DTLS 1.3 adds to the provider, through the public API:
//! HKDF (RFC 5869 Appendix A), HKDF-Expand-Label (RFC 9001 Appendix A.1, whose labels use the
//! TLS 1.3 prefix), the record-number masks (RFC 9001 Appendix A.2 for AES, A.5 for ChaCha20:
//! QUIC header protection is the same computation as RFC 9147 §4.2.3), and the running hash.

#![cfg(feature = "aws-lc-rs")]

use rdtls_proto::crypto::aws_lc::AwsLcProvider;
use rdtls_proto::crypto::{hkdf_expand_label, CryptoProvider, HashAlgorithm, MaskAlgorithm, DTLS13_LABEL_PREFIX};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("valid hex in test vector")
}

// ===== HKDF, RFC 5869 Appendix A =====

struct HkdfCase {
    ikm: Vec<u8>,
    salt: Vec<u8>,
    info: Vec<u8>,
    prk: &'static str,
    okm: &'static str,
}

fn rfc5869_cases() -> [HkdfCase; 3] {
    [
        // A.1: basic.
        HkdfCase {
            ikm: vec![0x0b; 22],
            salt: unhex("000102030405060708090a0b0c"),
            info: unhex("f0f1f2f3f4f5f6f7f8f9"),
            prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        },
        // A.2: longer inputs and output.
        HkdfCase {
            ikm: (0x00..=0x4f).collect(),
            salt: (0x60..=0xaf).collect(),
            info: (0xb0..=0xff).collect(),
            prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            okm: concat!(
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c",
                "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71",
                "cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
        },
        // A.3: no salt, no info.
        HkdfCase {
            ikm: vec![0x0b; 22],
            salt: Vec::new(),
            info: Vec::new(),
            prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        },
    ]
}

#[test]
fn hkdf_rfc_5869_vectors() {
    let p = AwsLcProvider;
    for (i, case) in rfc5869_cases().iter().enumerate() {
        // An empty salt is a string of hash-length zeros (RFC 5869 §2.2): the same PRK.
        let prk = p.hkdf_extract(HashAlgorithm::Sha256, &case.salt, &case.ikm);
        assert_eq!(prk.as_bytes(), unhex(case.prk), "case {}: PRK", i + 1);
        let expected = unhex(case.okm);
        let mut okm = vec![0u8; expected.len()];
        p.hkdf_expand(HashAlgorithm::Sha256, prk.as_bytes(), &case.info, &mut okm).unwrap();
        assert_eq!(okm, expected, "case {}: OKM", i + 1);
        // A shorter output is a prefix.
        let mut short = [0u8; 7];
        p.hkdf_expand(HashAlgorithm::Sha256, prk.as_bytes(), &case.info, &mut short).unwrap();
        assert_eq!(short, expected[..7]);
    }
    let zeros = p.hkdf_extract(HashAlgorithm::Sha256, &[0; 32], &[0x0b; 22]);
    assert_eq!(zeros.as_bytes(), unhex(rfc5869_cases()[2].prk));
}

#[test]
fn hkdf_sha384_matches_its_definition_and_refuses_bad_lengths() {
    // T(1) = HMAC(PRK, info || 0x01), T(2) = HMAC(PRK, T(1) || info || 0x02), ... (RFC 5869
    // §2.3), computed with the provider's HMAC, which its own KATs check.
    let p = AwsLcProvider;
    let alg = HashAlgorithm::Sha384;
    let prk = p.hkdf_extract(alg, b"salt", b"input keying material");
    assert_eq!(prk.as_bytes(), p.hmac(alg, b"salt", &[b"input keying material"]).as_bytes());
    let info = b"context";
    let t1 = p.hmac(alg, prk.as_bytes(), &[info, &[1]]);
    let t2 = p.hmac(alg, prk.as_bytes(), &[t1.as_bytes(), info, &[2]]);
    let mut okm = [0u8; 80];
    p.hkdf_expand(alg, prk.as_bytes(), info, &mut okm).unwrap();
    assert_eq!(&okm[..48], t1.as_bytes());
    assert_eq!(&okm[48..], &t2.as_bytes()[..32]);
    // At most 255 blocks; a PRK shorter than the hash is not one.
    let mut too_long = vec![0u8; 255 * 48 + 1];
    assert!(p.hkdf_expand(alg, prk.as_bytes(), info, &mut too_long).is_err());
    let mut max = vec![0u8; 255 * 48];
    assert!(p.hkdf_expand(alg, prk.as_bytes(), info, &mut max).is_ok());
    assert!(p.hkdf_expand(alg, &prk.as_bytes()[..47], info, &mut okm).is_err());
}

// ===== HKDF-Expand-Label, RFC 9001 Appendix A.1 =====

#[test]
fn hkdf_expand_label_rfc_9001_vectors() {
    let p = AwsLcProvider;
    let alg = HashAlgorithm::Sha256;
    let initial_salt = unhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a");
    let initial = p.hkdf_extract(alg, &initial_salt, &unhex("8394c8f03e515708"));
    assert_eq!(initial.as_bytes(), unhex("7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"));
    let label = |secret: &[u8], label: &str, len: usize| {
        let mut out = vec![0u8; len];
        hkdf_expand_label(&p, alg, secret, b"tls13 ", label.as_bytes(), &[], &mut out).unwrap();
        out
    };
    let client = label(initial.as_bytes(), "client in", 32);
    assert_eq!(client, unhex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"));
    assert_eq!(label(&client, "quic key", 16), unhex("1f369613dd76d5467730efcbe3b1a22d"));
    assert_eq!(label(&client, "quic iv", 12), unhex("fa044b2f42a3fd3b46fb255c"));
    assert_eq!(label(&client, "quic hp", 16), unhex("9f50449e04a0e810283a1e9933adedd2"));
    let server = label(initial.as_bytes(), "server in", 32);
    assert_eq!(server, unhex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"));

    // DTLS 1.3's prefix makes other keys from the same secret; the context is bound too.
    let mut dtls = [0u8; 16];
    hkdf_expand_label(&p, alg, &client, DTLS13_LABEL_PREFIX, b"key", &[], &mut dtls).unwrap();
    let mut tls = [0u8; 16];
    hkdf_expand_label(&p, alg, &client, b"tls13 ", b"key", &[], &mut tls).unwrap();
    assert_ne!(dtls, tls);
    let mut with_context = [0u8; 16];
    hkdf_expand_label(&p, alg, &client, DTLS13_LABEL_PREFIX, b"key", &[1], &mut with_context).unwrap();
    assert_ne!(dtls, with_context);
    // Lengths beyond the HkdfLabel encoding are refused, not truncated.
    assert!(hkdf_expand_label(&p, alg, &client, DTLS13_LABEL_PREFIX, &[b'x'; 250], &[], &mut dtls).is_err());
    assert!(hkdf_expand_label(&p, alg, &client, DTLS13_LABEL_PREFIX, b"key", &[0; 256], &mut dtls).is_err());
}

// ===== record-number masks, RFC 9001 Appendix A.2 and A.5 =====

#[test]
fn record_number_masks_rfc_9001_vectors() {
    let p = AwsLcProvider;
    let aes = p.mask_key(MaskAlgorithm::Aes128, &unhex("9f50449e04a0e810283a1e9933adedd2")).unwrap();
    let sample: [u8; 16] = unhex("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
    assert_eq!(aes.mask(&sample).unwrap().to_vec(), unhex("437b9aec36"));

    let chacha = p
        .mask_key(MaskAlgorithm::ChaCha20, &unhex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"))
        .unwrap();
    let sample: [u8; 16] = unhex("5e5cd55c41f69080575d7999c25a5bfb").try_into().unwrap();
    assert_eq!(chacha.mask(&sample).unwrap().to_vec(), unhex("aefefe7d03"));

    // AES-256: FIPS 197 Appendix C.3 (the mask is the first five bytes of the block).
    let aes256 = p
        .mask_key(MaskAlgorithm::Aes256, &unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"))
        .unwrap();
    let block: [u8; 16] = unhex("00112233445566778899aabbccddeeff").try_into().unwrap();
    assert_eq!(aes256.mask(&block).unwrap().to_vec(), unhex("8ea2b7ca51"));

    // Keys of the wrong length are refused.
    assert!(p.mask_key(MaskAlgorithm::Aes128, &[0; 32]).is_err());
    assert!(p.mask_key(MaskAlgorithm::ChaCha20, &[0; 16]).is_err());
}

// ===== running hash =====

#[test]
fn running_hash_reads_at_any_point_and_forks() {
    let p = AwsLcProvider;
    for alg in [HashAlgorithm::Sha256, HashAlgorithm::Sha384] {
        let mut h = p.start_hash(alg);
        assert_eq!(h.algorithm(), alg);
        assert_eq!(h.current().as_bytes(), p.hash(alg, &[]).as_bytes());
        h.update(b"a");
        let mut fork = h.fork();
        h.update(b"bc");
        // Reading does not disturb the running state.
        assert_eq!(h.current().as_bytes(), p.hash(alg, &[b"abc"]).as_bytes());
        assert_eq!(h.current().as_bytes(), p.hash(alg, &[b"abc"]).as_bytes());
        // The fork went on from "a" alone.
        assert_eq!(fork.current().as_bytes(), p.hash(alg, &[b"a"]).as_bytes());
        fork.update(b"x");
        assert_eq!(fork.current().as_bytes(), p.hash(alg, &[b"ax"]).as_bytes());
        assert_eq!(h.current().as_bytes(), p.hash(alg, &[b"abc"]).as_bytes());
    }
    // FIPS 180-2: SHA-256("abc").
    let mut h = p.start_hash(HashAlgorithm::Sha256);
    h.update(b"abc");
    assert_eq!(h.current().as_bytes(), unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}
