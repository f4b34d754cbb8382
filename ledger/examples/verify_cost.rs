//! Cost per signature of batch verification, by batch size and number of signers: Gongzhi's
//! `crypto::verify_batch` next to ed25519-dalek's stock `verify_batch` on the same batches.
//!
//! ```text
//! cargo build --release --example verify_cost
//! verify_cost 200 320          # batches of 200 signatures from 320 keys: µs per signature
//! valgrind --tool=callgrind verify_cost 200 320   # then callgrind_annotate --inclusive=yes:
//!                                                 # instructions in `stock` and `gongzhi`
//! ```
//!
//! 3,000 tx-sized messages (160-byte bodies) are signed, key i·7919 mod `signers` for message
//! i, and checked in consecutive batches of the given size, once by each verifier.

use std::time::Instant;

use gongzhi_ledger::crypto::{signing_message, verify_batch, Keypair, SignedMessage};

const MESSAGES: usize = 3_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(batch), Some(signers)) = (
        args.next().and_then(|a| a.parse::<usize>().ok()),
        args.next().and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: verify_cost <batch size> <signers>");
        std::process::exit(2);
    };
    let (batch, signers) = (batch.max(1), signers.max(1));
    let keys: Vec<Keypair> = (0..signers as u64)
        .map(|i| {
            let mut secret = [1u8; 32];
            secret[..8].copy_from_slice(&i.to_le_bytes());
            Keypair::from_secret(secret)
        })
        .collect();
    let items: Vec<SignedMessage> = (0..MESSAGES)
        .map(|i| {
            let key = &keys[(i * 7919) % signers];
            let body: Vec<u8> = (0..160).map(|b| (b ^ i) as u8).collect();
            SignedMessage {
                signer: key.public(),
                message: signing_message("verify-cost", "gongzhi/tx/v1", &body),
                signature: key.sign("verify-cost", "gongzhi/tx/v1", &body),
            }
        })
        .collect();
    // Decompressed once, outside the measured function: a verifier keeps its signers' keys.
    let stock_keys: Vec<ed25519_dalek::VerifyingKey> = items
        .iter()
        .map(|item| ed25519_dalek::VerifyingKey::from_bytes(&item.signer.0).expect("valid key"))
        .collect();
    let stock_us = stock(&items, &stock_keys, batch);
    // Gongzhi's verifier caches decompressed keys per thread: warm it the same way.
    for item in items.iter().take(signers) {
        assert!(verify_batch(std::slice::from_ref(item)).is_ok());
    }
    let gongzhi_us = gongzhi(&items, batch);
    println!(
        "batches of {batch} from {signers} signers: ed25519-dalek {stock_us:.1} µs/signature, \
         gongzhi {gongzhi_us:.1} µs/signature"
    );
}

/// ed25519-dalek's `verify_batch` over keys decompressed beforehand; µs per signature.
#[inline(never)]
fn stock(items: &[SignedMessage], keys: &[ed25519_dalek::VerifyingKey], batch: usize) -> f64 {
    let started = Instant::now();
    for (chunk, keys) in items.chunks(batch).zip(keys.chunks(batch)) {
        let messages: Vec<&[u8]> = chunk.iter().map(|item| item.message.as_slice()).collect();
        let signatures: Vec<ed25519_dalek::Signature> = chunk
            .iter()
            .map(|item| ed25519_dalek::Signature::from_bytes(&item.signature.0))
            .collect();
        assert!(ed25519_dalek::verify_batch(&messages, &signatures, keys).is_ok());
    }
    started.elapsed().as_secs_f64() * 1e6 / items.len() as f64
}

/// Gongzhi's `verify_batch`; µs per signature.
#[inline(never)]
fn gongzhi(items: &[SignedMessage], batch: usize) -> f64 {
    let started = Instant::now();
    for chunk in items.chunks(batch) {
        assert!(verify_batch(chunk).is_ok());
    }
    started.elapsed().as_secs_f64() * 1e6 / items.len() as f64
}
