//! Signing for simulated validators, behind the core's `SignatureScheme` and
//! `SignatureVerifier` traits.
//!
//! Two real schemes, chosen per run:
//! - [`CryptoKind::Blake3Mac`] (default): a keyed blake3 MAC (XOF output of 64
//!   bytes over `tag ‖ 0 ‖ bytes`) with a 32-byte secret per validator; the
//!   verifier holds every secret. Cheap, so the simulator spends its time in
//!   consensus rather than in curve arithmetic. Forgery needs the secret.
//! - [`CryptoKind::Ed25519`]: ed25519-dalek keys derived from the same seed,
//!   the scheme the node uses (without the chain id prefix).
//!
//! Invariant: a [`ValidatorId`] is derived from the secret, so the verifier
//! rejects any signature not made with that validator's key.

use std::collections::BTreeMap;
use std::rc::Rc;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use gongzhi_consensus::{Signature, SignatureScheme, SignatureVerifier, ValidatorId};

/// Which signature scheme a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoKind {
    /// Keyed blake3 MAC (fast).
    Blake3Mac,
    /// ed25519 (as in the node).
    Ed25519,
}

/// One validator's signing key.
#[derive(Clone, Debug)]
pub enum SimKey {
    /// Keyed blake3.
    Blake3Mac {
        /// The MAC key.
        secret: [u8; 32],
    },
    /// ed25519.
    Ed25519(Box<SigningKey>),
}

impl SimKey {
    /// The key of validator `index` in a run seeded with `seed`.
    pub fn derive(kind: CryptoKind, seed: u64, index: usize) -> SimKey {
        let mut hasher = blake3::Hasher::new_derive_key("gongzhi sim validator key v1");
        hasher.update(&seed.to_le_bytes());
        hasher.update(&(index as u64).to_le_bytes());
        let secret = *hasher.finalize().as_bytes();
        match kind {
            CryptoKind::Blake3Mac => SimKey::Blake3Mac { secret },
            CryptoKind::Ed25519 => SimKey::Ed25519(Box::new(SigningKey::from_bytes(&secret))),
        }
    }

    /// The public identity.
    pub fn id(&self) -> ValidatorId {
        match self {
            SimKey::Blake3Mac { secret } => {
                ValidatorId(*blake3::keyed_hash(secret, b"gongzhi sim public id").as_bytes())
            }
            SimKey::Ed25519(key) => ValidatorId(key.verifying_key().to_bytes()),
        }
    }
}

fn mac(secret: &[u8; 32], tag: &str, bytes: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut hasher = blake3::Hasher::new_keyed(secret);
    hasher.update(tag.as_bytes()).update(&[0]).update(bytes);
    hasher.finalize_xof().fill(&mut out);
    out
}

impl SignatureScheme for SimKey {
    fn sign(&self, tag: &str, bytes: &[u8]) -> Signature {
        match self {
            SimKey::Blake3Mac { secret } => Signature(mac(secret, tag, bytes)),
            SimKey::Ed25519(key) => {
                let mut message = tag.as_bytes().to_vec();
                message.push(0);
                message.extend_from_slice(bytes);
                Signature(key.sign(&message).to_bytes())
            }
        }
    }
}

/// Verifies signatures of every simulated validator.
#[derive(Clone, Debug)]
pub struct SimVerifier {
    keys: Rc<BTreeMap<ValidatorId, SimKey>>,
}

impl SimVerifier {
    /// A verifier for `keys`.
    pub fn new(keys: &[SimKey]) -> Self {
        SimVerifier {
            keys: Rc::new(keys.iter().map(|k| (k.id(), k.clone())).collect()),
        }
    }
}

impl SignatureVerifier for SimVerifier {
    fn verify(&self, signer: &ValidatorId, tag: &str, bytes: &[u8], sig: &Signature) -> bool {
        match self.keys.get(signer) {
            Some(SimKey::Blake3Mac { secret }) => mac(secret, tag, bytes) == sig.0,
            Some(SimKey::Ed25519(_)) => {
                let mut message = tag.as_bytes().to_vec();
                message.push(0);
                message.extend_from_slice(bytes);
                let Ok(public) = VerifyingKey::from_bytes(&signer.0) else {
                    return false;
                };
                public
                    .verify(&message, &ed25519_dalek::Signature::from_bytes(&sig.0))
                    .is_ok()
            }
            None => false,
        }
    }
}
