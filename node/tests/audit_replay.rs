//! Replay of an honest export passes; each kind of tampering is caught with a precise error.
//!
//! The chain is real (see `gongzhi_node::audit::fixture`): 13 blocks of the demo district's
//! stories, signed txs, certificates signed by the four validators, and a governance change
//! that raises civil-affairs' power to 3 from block 12 on.

#![allow(clippy::unwrap_used, clippy::panic)]

mod audit_common;

use audit_common::{certificate_signed_by, demo_export, replay, replay_tampered};
use gongzhi_ledger::Keypair;
use gongzhi_node::audit::fixture::{validator_key, CHAIN_ID};
use gongzhi_node::audit::{FormatError, ReplayError};

#[test]
fn honest_export_replays() {
    let export = demo_export();
    let summary = replay(&export.file).unwrap();
    assert_eq!(summary.blocks, export.height);
    assert_eq!(summary.blocks, 13);
    assert_eq!(summary.txs, 26);
    assert_eq!(summary.failed_txs, 1, "the quota breach");
    assert_eq!(summary.validator_set_changes, 1, "the power change");
    assert_eq!(summary.chain_id, CHAIN_ID);
}

#[test]
fn changed_tx_byte_is_a_bad_signature() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        let call = &mut blocks[1].block.txs[1].body.call;
        let last = call.len() - 1;
        call[last] ^= 0x01;
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::TxBadSignature {
                height: 2,
                tx_index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("block 2 tx #1"), "{err}");
}

#[test]
fn changed_signature_is_caught() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        blocks[6].block.txs[4].signature.0[10] ^= 0x80;
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::TxBadSignature {
                height: 7,
                tx_index: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn changed_header_field_breaks_the_certificate() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        blocks[3].block.header.time.0 += 1;
    })
    .unwrap_err();
    assert!(
        matches!(err, ReplayError::CertificateWrongBlock { height: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("header was altered"), "{err}");
}

#[test]
fn certificate_short_of_two_thirds_is_caught() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        blocks[4].certificate.signatures.truncate(2);
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::CertificateShort {
                height: 5,
                signed_power: 2,
                total_power: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn certificate_signed_by_a_non_validator_is_caught() {
    let export = demo_export();
    let outsider = Keypair::from_secret([42; 32]);
    let err = replay_tampered(&export, |_, blocks| {
        let keys = [
            validator_key("yuetan-street"),
            validator_key("zhanlan-street"),
            validator_key("jinyu-property"),
            outsider.clone(),
        ];
        blocks[2].certificate = certificate_signed_by(CHAIN_ID, &blocks[2].certificate, &keys);
    })
    .unwrap_err();
    match &err {
        ReplayError::CertificateSignerNotValidator {
            height: 3, signer, ..
        } => assert_eq!(*signer, outsider.public()),
        other => panic!("expected a non-validator signer at 3, got {other}"),
    }
}

#[test]
fn validator_set_is_tracked_through_governance() {
    // From block 12 civil-affairs has power 3 of 6: the other three validators alone (3 of 6)
    // no longer make a quorum, although they would have under the genesis set (3 of 4).
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        let keys = [
            validator_key("yuetan-street"),
            validator_key("zhanlan-street"),
            validator_key("jinyu-property"),
        ];
        blocks[12].certificate = certificate_signed_by(CHAIN_ID, &blocks[12].certificate, &keys);
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::CertificateShort {
                height: 13,
                signed_power: 3,
                total_power: 6,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn dropped_block_is_a_gap() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        blocks.remove(3);
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::HeightGap {
                expected: 4,
                found: 5
            }
        ),
        "{err}"
    );
}

#[test]
fn swapped_blocks_are_caught() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        blocks.swap(5, 6);
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::HeightGap {
                expected: 6,
                found: 7
            }
        ),
        "{err}"
    );
}

#[test]
fn different_genesis_is_caught() {
    let export = demo_export();
    let err = replay_tampered(&export, |genesis, _| {
        genesis.organisations[4].name = "Someone Else (别人)".into();
    })
    .unwrap_err();
    assert!(matches!(err, ReplayError::GenesisMismatch { .. }), "{err}");
    assert!(err.to_string().contains("block 1 follows genesis"), "{err}");
}

#[test]
fn altered_receipt_is_caught() {
    let export = demo_export();
    let err = replay_tampered(&export, |_, blocks| {
        blocks[6].receipts.swap(0, 1);
    })
    .unwrap_err();
    assert!(
        matches!(err, ReplayError::RecordedReceiptsAltered { height: 7, .. }),
        "{err}"
    );
}

#[test]
fn damaged_or_truncated_file_is_a_format_error() {
    let export = demo_export();
    let bytes = std::fs::read(&export.file).unwrap();
    let damaged = export.file.with_file_name("damaged.gzaudit");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    std::fs::write(&damaged, &flipped).unwrap();
    // gzip's CRC catches the damage at the latest at the end of the stream; a garbled record
    // may be reported first (undecodable, or a signature that no longer verifies).
    let err = replay(&damaged).expect_err("a damaged file must not verify");
    assert!(!err.to_string().is_empty());

    let truncated = export.file.with_file_name("truncated.gzaudit");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = replay(&truncated).unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::Format(FormatError::Truncated { .. } | FormatError::Corrupt { .. })
        ),
        "{err}"
    );
}

/// An export whose header names another format version (version 1: made by a release with the
/// old contract state layout) is refused before any block, naming both versions, instead of
/// failing later as a state-root mismatch.
#[test]
fn an_export_of_another_format_version_is_refused_by_version() {
    use std::io::{Read, Write};

    let export = demo_export();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&export.file).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(&plain[8..12], &2u32.to_le_bytes());
    plain[8..12].copy_from_slice(&1u32.to_le_bytes());
    let old = export.file.with_file_name("version1.gzaudit");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    std::fs::write(&old, gz.finish().unwrap()).unwrap();
    let err = replay(&old).unwrap_err();
    assert!(
        matches!(
            err,
            ReplayError::Format(FormatError::UnsupportedVersion {
                found: 1,
                supported: 2
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("matching gongzhi release"),
        "{err}"
    );
}
