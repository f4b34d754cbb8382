//! Shared by the audit tests: build the demo chain, read an export back into memory (test
//! chains are small), write a tampered copy, and re-sign certificates.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use gongzhi_consensus::VOTE_SIGN_TAG;
use gongzhi_contracts::Genesis;
use gongzhi_ledger::{CommitCertificate, CommitSignature, Keypair};
use gongzhi_node::audit::fixture::{demo_genesis, run_demo_story, FixtureChain};
use gongzhi_node::audit::format::{
    decode_block, AuditBlock, BlockRecord, ExportReader, ExportWriter,
};
use gongzhi_node::audit::replay::NoObserver;
use gongzhi_node::audit::{replay_file, ReplayError, ReplayOptions, ReplaySummary};

/// A temp dir holding the demo chain's export.
pub struct Exported {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub height: u64,
}

/// Build the demo chain in a temp dir and export it.
pub fn demo_export() -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = FixtureChain::create(&dir.path().join("data"), demo_genesis()).unwrap();
    run_demo_story(&mut chain).unwrap();
    let file = dir.path().join("honest.gzaudit");
    let summary = chain.export(&file).unwrap();
    Exported {
        height: summary.blocks,
        dir,
        file,
    }
}

/// Genesis and every block of an export.
pub fn read_all(path: &Path) -> (Genesis, Vec<AuditBlock>) {
    let mut reader = ExportReader::open(path).unwrap();
    let genesis = reader.genesis().clone();
    let mut blocks = Vec::new();
    while let BlockRecord::Block { index, bytes } = reader.next_record().unwrap() {
        blocks.push(decode_block(index, &bytes).unwrap());
    }
    (genesis, blocks)
}

/// Write genesis and blocks as a new export next to `like`.
pub fn write_all(like: &Path, name: &str, genesis: &Genesis, blocks: &[AuditBlock]) -> PathBuf {
    let path = like.with_file_name(name);
    let mut writer = ExportWriter::create(&path, genesis).unwrap();
    for block in blocks {
        writer.write_block(block).unwrap();
    }
    writer.finish().unwrap();
    path
}

/// Read `export`, let `tamper` change it, write it back, replay the result.
pub fn replay_tampered(
    export: &Exported,
    tamper: impl FnOnce(&mut Genesis, &mut Vec<AuditBlock>),
) -> Result<ReplaySummary, ReplayError> {
    let (mut genesis, mut blocks) = read_all(&export.file);
    tamper(&mut genesis, &mut blocks);
    let path = write_all(&export.file, "tampered.gzaudit", &genesis, &blocks);
    replay(&path)
}

/// Replay a file with default options, no report.
pub fn replay(path: &Path) -> Result<ReplaySummary, ReplayError> {
    let options = ReplayOptions {
        threads: 2,
        ..ReplayOptions::default()
    };
    replay_file(path, &options, &mut NoObserver)
}

/// A certificate for `template`'s block signed by exactly `keys`.
pub fn certificate_signed_by(
    chain_id: &str,
    template: &CommitCertificate,
    keys: &[Keypair],
) -> CommitCertificate {
    let mut certificate = CommitCertificate {
        signatures: Vec::new(),
        ..template.clone()
    };
    for key in keys {
        let bytes = certificate.precommit_for(&key.public()).sign_bytes();
        certificate.signatures.push(CommitSignature {
            validator: key.public(),
            signature: key.sign(chain_id, VOTE_SIGN_TAG, &bytes),
        });
    }
    certificate.signatures.sort_by_key(|s| s.validator);
    certificate
}
