//! ed25519 batch verification that adds up the terms of each signer once.
//!
//! A batch of n signatures (R_i, s_i) by keys A_i on messages M_i holds when
//!
//! `[-Σ z_i·s_i]·B + Σ [z_i]·R_i + Σ [z_i·h_i]·A_i = 0`, with `h_i = SHA-512(R_i ‖ A_i ‖ M_i)`
//!
//! for random 128-bit z_i: ed25519-dalek's `verify_batch` equation. dalek computes it as one
//! multiscalar multiplication over 2n+1 points. A chain's txs come from a few hundred keys, and
//! a key signing k txs of a batch contributes k terms on the same point A, so here they are
//! added first: `[Σ_{i: A_i = A} z_i·h_i]·A`, one point per distinct key. The sum is the same
//! group element, so the verdict is the same, over n + keys + 1 points instead of 2n + 1.
//!
//! The z_i are derived, not drawn: a blake3 XOF under its own context over the batch's size,
//! every h_i (which covers R_i, A_i and M_i) and every s_i. Whoever chooses the signatures fixes
//! the z_i only by fixing the whole batch, which is what makes them safe (dalek derives its
//! z_i the same way, through a merlin transcript). Nothing here reads a clock or a random
//! source, so every node gets the same verdict for the same batch.
//!
//! Invariants:
//! - a batch of signatures each of which passes single verification (`R = [s]B − [h]A`)
//!   passes: each one's term sums to the identity;
//! - a non-canonical `s` (not below the group order) or an `R` that is not a curve point fails
//!   the batch, as in dalek.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// The blake3 derivation context of the coefficients.
const COEFFICIENTS_CONTEXT: &str = "gongzhi 2026-12-04 ed25519 batch verification coefficients";

/// One signature of a batch: the signer's key (decompressed), its 32-byte encoding, the signed
/// message and the 64-byte signature.
pub(crate) struct BatchItem<'a> {
    pub key: EdwardsPoint,
    pub key_bytes: &'a [u8; 32],
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// Whether the batch equation holds (see the module documentation). An empty batch holds.
pub(crate) fn batch_holds(items: &[BatchItem<'_>]) -> bool {
    let mut coefficients = blake3::Hasher::new_derive_key(COEFFICIENTS_CONTEXT);
    coefficients.update(&(items.len() as u64).to_le_bytes());
    let mut challenges = Vec::with_capacity(items.len());
    let mut responses = Vec::with_capacity(items.len());
    for item in items {
        let (r, s) = item.signature.split_at(32);
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(item.key_bytes);
        hash.update(item.message);
        let challenge: [u8; 64] = hash.finalize().into();
        coefficients.update(&challenge);
        coefficients.update(s);
        challenges.push(Scalar::from_bytes_mod_order_wide(&challenge));
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(s);
        match Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) {
            Some(s) => responses.push(s),
            None => return false,
        }
    }
    let mut stream = coefficients.finalize_xof();

    // Scalars and points of the multiscalar multiplication: B first, then each R, then each
    // distinct key once.
    let mut scalars = Vec::with_capacity(items.len() + 1);
    let mut points = Vec::with_capacity(items.len() + 1);
    scalars.push(Scalar::ZERO);
    points.push(Some(ED25519_BASEPOINT_POINT));
    let mut base = Scalar::ZERO;
    let mut key_terms: Vec<(EdwardsPoint, Scalar)> = Vec::new();
    // SipHash with a random key: keys chosen by a peer cannot collide in it. Only lookups;
    // the terms keep first-seen order.
    let mut key_slots: HashMap<[u8; 32], usize> = HashMap::new();
    for ((item, challenge), response) in items.iter().zip(&challenges).zip(&responses) {
        let mut z = [0u8; 16];
        stream.fill(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        base -= z * response;
        let mut r = [0u8; 32];
        r.copy_from_slice(&item.signature[..32]);
        scalars.push(z);
        points.push(CompressedEdwardsY(r).decompress());
        let slot = *key_slots.entry(*item.key_bytes).or_insert_with(|| {
            key_terms.push((item.key, Scalar::ZERO));
            key_terms.len() - 1
        });
        key_terms[slot].1 += z * challenge;
    }
    scalars[0] = base;
    for (key, scalar) in key_terms {
        scalars.push(scalar);
        points.push(Some(key));
    }
    EdwardsPoint::optional_multiscalar_mul(scalars, points).is_some_and(|sum| sum.is_identity())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A batch in owned form: key, message, signature.
    type Owned = Vec<(SigningKey, Vec<u8>, [u8; 64])>;

    fn sign_batch(rng: &mut rand_chacha::ChaCha20Rng, size: usize, signers: usize) -> Owned {
        let keys: Vec<SigningKey> = (0..signers)
            .map(|_| SigningKey::from_bytes(&rng.gen()))
            .collect();
        (0..size)
            .map(|_| {
                let key = keys[rng.gen_range(0..signers)].clone();
                let message: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
                let signature = key.sign(&message).to_bytes();
                (key, message, signature)
            })
            .collect()
    }

    fn ours(batch: &Owned) -> bool {
        let keys: Vec<[u8; 32]> = batch
            .iter()
            .map(|(k, _, _)| k.verifying_key().to_bytes())
            .collect();
        let items: Vec<BatchItem<'_>> = batch
            .iter()
            .zip(&keys)
            .map(|((key, message, signature), key_bytes)| BatchItem {
                key: key.verifying_key().to_edwards(),
                key_bytes,
                message,
                signature,
            })
            .collect();
        batch_holds(&items)
    }

    fn dalek(batch: &Owned) -> bool {
        let messages: Vec<&[u8]> = batch.iter().map(|(_, m, _)| m.as_slice()).collect();
        let signatures: Vec<ed25519_dalek::Signature> = batch
            .iter()
            .map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(s))
            .collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> =
            batch.iter().map(|(k, _, _)| k.verifying_key()).collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }

    /// Honest batches of every shape pass, as in dalek: one signer or many, repeated or not.
    #[test]
    fn honest_batches_pass() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        assert!(batch_holds(&[]));
        for (size, signers) in [(1, 1), (2, 1), (7, 3), (64, 64), (300, 5), (400, 300)] {
            let batch = sign_batch(&mut rng, size, signers);
            assert!(ours(&batch), "{size} signatures by {signers} keys");
            assert!(dalek(&batch), "{size} signatures by {signers} keys");
        }
    }

    /// Every kind of tampering fails the batch, as it fails dalek's: a changed message, a
    /// flipped signature bit, a signature moved to another message of the same signer, another
    /// signer's key, a non-canonical s (s + ℓ) and an R that is no curve point.
    #[test]
    fn tampered_batches_fail_like_dalek() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        for round in 0..20 {
            let size = rng.gen_range(2..120);
            let signers = rng.gen_range(1..8);
            let honest = sign_batch(&mut rng, size, signers);
            let victim = rng.gen_range(0..size);
            let mut cases: Vec<(&str, Owned)> = Vec::new();

            let mut batch = honest.clone();
            batch[victim].1.push(0);
            cases.push(("message changed", batch));

            let mut batch = honest.clone();
            let bit = rng.gen_range(0..512);
            batch[victim].2[bit / 8] ^= 1 << (bit % 8);
            cases.push(("signature bit flipped", batch));

            let mut batch = honest.clone();
            let other = (victim + 1) % size;
            let (a, b) = (batch[victim].2, batch[other].2);
            batch[victim].2 = b;
            batch[other].2 = a;
            cases.push(("signatures swapped", batch));

            let mut batch = honest.clone();
            batch[victim].0 = SigningKey::from_bytes(&rng.gen());
            cases.push(("another key", batch));

            let mut batch = honest.clone();
            let mut s = [0u8; 32];
            s.copy_from_slice(&batch[victim].2[32..]);
            let s = Scalar::from_bytes_mod_order(s);
            // s + ℓ as bytes: the same scalar mod ℓ, but not its canonical encoding.
            let mut sum = [0u8; 32];
            // ℓ = (ℓ − 1) + 1: add −1 and a carry of 1.
            let mut carry = 1u16;
            let order = (-Scalar::ONE).to_bytes();
            for (i, byte) in sum.iter_mut().enumerate() {
                let total = u16::from(s.as_bytes()[i]) + u16::from(order[i]) + carry;
                *byte = total as u8;
                carry = total >> 8;
            }
            batch[victim].2[32..].copy_from_slice(&sum);
            cases.push(("non-canonical s", batch));

            let mut batch = honest.clone();
            // y = 2 is not the y-coordinate of a curve point.
            let mut r = [0u8; 32];
            r[0] = 2;
            batch[victim].2[..32].copy_from_slice(&r);
            cases.push(("R not on the curve", batch));

            for (case, batch) in cases {
                let expected = dalek(&batch);
                assert!(
                    !expected || case == "signatures swapped",
                    "dalek accepts {case}"
                );
                assert_eq!(ours(&batch), expected, "round {round}: {case}");
            }
        }
    }
}
