//! The machine's speed at the time of a run, so that runs made at different times can be
//! compared: how many ed25519 signatures one core checks per second (a tx's own check,
//! `Tx::verify`), measured for half a second just before the nodes start and again just after
//! they stop, while the bench is the only thing the devnet runs.
//!
//! Why: on a shared VM the same binary's throughput moves by 15–30 % within the hour, with the
//! host's load. A run's tx/s divided by this rate (txs per thousand checks) stays comparable
//! when the machine's speed does not.

use std::hint::black_box;
use std::time::{Duration, Instant};

use gongzhi_ledger::{Keypair, Tx};

/// How long each measurement lasts.
pub const MEASURE_FOR: Duration = Duration::from_millis(500);

/// Signature checks per second on this thread, measured for `duration`; `None` if a check
/// fails (it never should: the tx is signed here).
pub fn verifies_per_second(duration: Duration) -> Option<f64> {
    const CHAIN: &str = "yardstick";
    let key = Keypair::from_secret([7; 32]);
    // A bench tx's size: 160 bytes of call.
    let tx = Tx::sign(&key, CHAIN, 1, vec![0x5a; 160]);
    let started = Instant::now();
    let mut checked = 0u64;
    while started.elapsed() < duration {
        for _ in 0..32 {
            black_box(&tx).verify(black_box(CHAIN)).ok()?;
        }
        checked += 32;
    }
    Some(checked as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_positive_rate() {
        let rate = verifies_per_second(Duration::from_millis(50)).expect("the check passes");
        // Any machine that runs the tests checks more than 100 signatures per second.
        assert!(rate > 100.0, "{rate}");
    }
}
