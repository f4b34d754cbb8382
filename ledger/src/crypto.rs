//! ed25519 keys and signatures over `chain_id ‖ domain tag ‖ canonical bytes`.
//!
//! The signed message frames chain id and tag with length prefixes, so no choice of chain id
//! can make one kind of object's signature valid for another. Batch verification is used
//! wherever many signatures are checked at once ([`crate::ed25519_batch`]); it accepts every
//! set of signatures that [`verify`] accepts one by one (its equation is a random combination
//! of theirs, so a key's own holder could also craft signatures with small-order parts that
//! the batch sometimes accepts; nobody else can). Small-order ("weak") keys, whose signatures
//! anyone could forge, fail both paths and are refused when parsed
//! ([`PublicKey::check_usable`]).

use std::fmt;

use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ed25519_batch::{batch_holds, BatchItem};
use crate::LedgerError;

/// An ed25519 public key: the identity of a signer (org operator key or validator key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex characters into a usable key (see [`PublicKey::check_usable`]).
    pub fn from_hex(s: &str) -> Result<PublicKey, LedgerError> {
        let bytes =
            hex::decode(s.trim()).map_err(|e| LedgerError::InvalidKey(format!("not hex: {e}")))?;
        let array: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            LedgerError::InvalidKey(format!("expected 32 bytes, got {}", b.len()))
        })?;
        let key = PublicKey(array);
        key.check_usable()?;
        Ok(key)
    }

    /// A key can sign for someone only if it is a valid curve point of large order. A
    /// small-order ("weak") key has signatures anyone can forge without a secret, so it is
    /// refused wherever a key is registered and wherever a signature is checked.
    pub fn check_usable(&self) -> Result<(), LedgerError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.0)
            .map_err(|_| LedgerError::InvalidKey("not a valid ed25519 public key".into()))?;
        if key.is_weak() {
            return Err(LedgerError::InvalidKey(
                "a small-order (weak) ed25519 key, whose signatures anyone can forge; \
                 generate a new key"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..12])
    }
}

/// An ed25519 signature (64 bytes, serialised as a length-checked byte string).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let array: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(array))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// The exact bytes an ed25519 signature covers: `len(chain_id) ‖ chain_id ‖ len(tag) ‖ tag ‖ body`.
pub fn signing_message(chain_id: &str, tag: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(16 + chain_id.len() + tag.len() + body.len());
    msg.extend_from_slice(&(chain_id.len() as u32).to_le_bytes());
    msg.extend_from_slice(chain_id.as_bytes());
    msg.extend_from_slice(&(tag.len() as u32).to_le_bytes());
    msg.extend_from_slice(tag.as_bytes());
    msg.extend_from_slice(body);
    msg
}

/// A signing key. Never printed: `Debug` shows only the public key.
pub struct Keypair {
    signing: ed25519_dalek::SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair::from_secret(self.signing.to_bytes())
    }
}

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Keypair {
        Keypair {
            signing: ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// The key with this 32-byte secret seed (deterministic; used by tests and devnets).
    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        Keypair {
            signing: ed25519_dalek::SigningKey::from_bytes(&secret),
        }
    }

    /// The 32-byte secret seed. Callers must store it with owner-only permissions.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Sign `body` as an object of kind `tag` on chain `chain_id`.
    pub fn sign(&self, chain_id: &str, tag: &str, body: &[u8]) -> Signature {
        Signature(
            self.signing
                .sign(&signing_message(chain_id, tag, body))
                .to_bytes(),
        )
    }
}

/// Decompressed keys a thread keeps: at most this many (about 240 KB), then it starts over.
/// Threads come and go with tokio's blocking pool, so this bounds memory per thread, not per
/// process; a district's signers number in the hundreds.
const KEY_CACHE_ENTRIES: usize = 1024;

thread_local! {
    /// This thread's recently used verifying keys, decompressed. Decompressing a key is a
    /// square root in the field, about a fifth of a batch verification's cost per signature,
    /// and a chain's txs come from a few hundred keys. Only usable keys are kept; the map is
    /// bounded and keyed by SipHash with a random key, so keys chosen by a peer can neither
    /// grow it nor collide it. A cache hit returns exactly what decompressing again would.
    static KEY_CACHE: std::cell::RefCell<std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The verifying key of `signer`, `None` if it is not a usable key (invalid or weak).
fn usable_key(signer: &PublicKey) -> Option<ed25519_dalek::VerifyingKey> {
    let cached = KEY_CACHE.with(|cache| cache.borrow().get(&signer.0).copied());
    if cached.is_some() {
        return cached;
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(&signer.0)
        .ok()
        .filter(|key| !key.is_weak())?;
    KEY_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= KEY_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(signer.0, key);
    });
    Some(key)
}

/// Verify one signature. A weak signer key fails, whatever the signature.
pub fn verify(
    chain_id: &str,
    tag: &str,
    body: &[u8],
    signer: &PublicKey,
    signature: &Signature,
) -> Result<(), LedgerError> {
    let key = usable_key(signer).ok_or(LedgerError::BadSignature { signer: *signer })?;
    key.verify(
        &signing_message(chain_id, tag, body),
        &ed25519_dalek::Signature::from_bytes(&signature.0),
    )
    .map_err(|_| LedgerError::BadSignature { signer: *signer })
}

/// One item of a batch verification: a signer, its full signed message and the signature.
#[derive(Debug, Clone)]
pub struct SignedMessage {
    /// Who claims to have signed.
    pub signer: PublicKey,
    /// The framed message ([`signing_message`]).
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Signature,
}

/// Verify many signatures at once ([`crate::ed25519_batch`]: dalek's batch equation, each
/// signer's terms added up first). On failure, finds and names the first bad one (by index),
/// so the caller can report exactly which item was wrong.
pub fn verify_batch(items: &[SignedMessage]) -> Result<(), LedgerError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut batch = Vec::with_capacity(items.len());
    for item in items {
        let Some(key) = usable_key(&item.signer) else {
            return Err(first_bad(items));
        };
        batch.push(BatchItem {
            key: key.to_edwards(),
            key_bytes: &item.signer.0,
            message: &item.message,
            signature: &item.signature.0,
        });
    }
    if batch_holds(&batch) {
        Ok(())
    } else {
        Err(first_bad(items))
    }
}

fn first_bad(items: &[SignedMessage]) -> LedgerError {
    for (index, item) in items.iter().enumerate() {
        let ok = usable_key(&item.signer).is_some_and(|key| {
            key.verify_strict(
                &item.message,
                &ed25519_dalek::Signature::from_bytes(&item.signature.0),
            )
            .is_ok()
        });
        if !ok {
            return LedgerError::BadSignatureInBatch {
                index,
                signer: item.signer,
            };
        }
    }
    // The batch equation failed although each signature verifies alone (non-canonical
    // encodings can do this); report it against the first item rather than accept it.
    LedgerError::BadSignatureInBatch {
        index: 0,
        signer: items[0].signer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_domain_separation() {
        let key = Keypair::from_secret([7; 32]);
        let sig = key.sign("chain-a", "gongzhi/tx/v1", b"body");
        assert!(verify("chain-a", "gongzhi/tx/v1", b"body", &key.public(), &sig).is_ok());
        assert!(verify("chain-b", "gongzhi/tx/v1", b"body", &key.public(), &sig).is_err());
        assert!(verify("chain-a", "gongzhi/vote/v1", b"body", &key.public(), &sig).is_err());
        assert!(verify("chain-a", "gongzhi/tx/v1", b"bodx", &key.public(), &sig).is_err());
    }

    #[test]
    fn batch_names_the_bad_item() {
        let keys: Vec<Keypair> = (0..5u8).map(|i| Keypair::from_secret([i; 32])).collect();
        let mut items: Vec<SignedMessage> = keys
            .iter()
            .map(|k| {
                let message = signing_message("c", "t", &[1, 2, 3]);
                SignedMessage {
                    signer: k.public(),
                    signature: k.sign("c", "t", &[1, 2, 3]),
                    message,
                }
            })
            .collect();
        assert!(verify_batch(&items).is_ok());
        items[3].message[10] ^= 1;
        match verify_batch(&items) {
            Err(LedgerError::BadSignatureInBatch { index, .. }) => assert_eq!(index, 3),
            other => panic!("expected bad item 3, got {other:?}"),
        }
    }

    /// The identity point as a key with the signature (R = identity, s = 0) satisfies the
    /// verification equation for every message: a forgery needing no secret. Both paths and
    /// key parsing refuse such a key.
    #[test]
    fn weak_keys_are_refused_everywhere() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey(identity);
        let mut forged = [0u8; 64];
        forged[0] = 1;
        let forged = Signature(forged);
        assert!(matches!(
            verify("c", "t", b"pay me", &weak, &forged),
            Err(LedgerError::BadSignature { .. })
        ));
        let good = Keypair::from_secret([9; 32]);
        let items = vec![
            SignedMessage {
                signer: good.public(),
                message: signing_message("c", "t", b"x"),
                signature: good.sign("c", "t", b"x"),
            },
            SignedMessage {
                signer: weak,
                message: signing_message("c", "t", b"pay me"),
                signature: forged,
            },
        ];
        assert!(matches!(
            verify_batch(&items),
            Err(LedgerError::BadSignatureInBatch { index: 1, .. })
        ));
        assert!(matches!(
            PublicKey::from_hex(&hex::encode(identity)),
            Err(LedgerError::InvalidKey(reason)) if reason.contains("weak")
        ));
        assert!(weak.check_usable().is_err());
        assert!(good.public().check_usable().is_ok());
    }

    /// Keys come from the thread's cache after the first use, and past its bound: the verdicts
    /// stay those of a fresh decompression, for good and bad signatures alike.
    #[test]
    fn cached_keys_give_the_same_verdicts() {
        let keys: Vec<Keypair> = (0..KEY_CACHE_ENTRIES as u32 + 8)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..4].copy_from_slice(&i.to_le_bytes());
                Keypair::from_secret(secret)
            })
            .collect();
        for round in 0..2 {
            for key in keys.iter().step_by(97) {
                let sig = key.sign("c", "t", b"body");
                assert!(
                    verify("c", "t", b"body", &key.public(), &sig).is_ok(),
                    "round {round}"
                );
                assert!(
                    verify("c", "t", b"bodx", &key.public(), &sig).is_err(),
                    "round {round}"
                );
            }
        }
        let items: Vec<SignedMessage> = keys
            .iter()
            .map(|k| SignedMessage {
                signer: k.public(),
                message: signing_message("c", "t", b"m"),
                signature: k.sign("c", "t", b"m"),
            })
            .collect();
        assert!(verify_batch(&items).is_ok());
        assert!(KEY_CACHE.with(|c| c.borrow().len()) <= KEY_CACHE_ENTRIES);
        let mut tampered = items.clone();
        tampered[KEY_CACHE_ENTRIES + 3].message[5] ^= 1;
        assert!(matches!(
            verify_batch(&tampered),
            Err(LedgerError::BadSignatureInBatch { index, .. }) if index == KEY_CACHE_ENTRIES + 3
        ));
    }

    #[test]
    fn key_hex_rejects_garbage() {
        assert!(PublicKey::from_hex("00").is_err());
        let k = Keypair::generate().public();
        assert_eq!(PublicKey::from_hex(&k.to_hex()).ok(), Some(k));
    }
}
