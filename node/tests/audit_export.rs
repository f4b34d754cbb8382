//! `audit export --home`: refuses while the node holds the store, exports once it is stopped,
//! and the export replays; the file starts with the documented header inside gzip.

#![allow(clippy::unwrap_used, clippy::panic)]

mod audit_common;

use std::io::Read;

use gongzhi_node::audit::fixture::{demo_genesis, run_demo_story, FixtureChain};
use gongzhi_node::audit::format::{FORMAT_VERSION, MAGIC};
use gongzhi_node::audit::progress::Progress;
use gongzhi_node::audit::{export_home, ExportError};
use gongzhi_node::config::{NodeConfig, CONFIG_TEMPLATE};

#[test]
fn export_from_a_stopped_node_home() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), CONFIG_TEMPLATE).unwrap();
    let config = NodeConfig::load(home.path()).unwrap();
    let genesis = demo_genesis();
    let genesis_path = NodeConfig::path(home.path(), &config.node.genesis_file);
    std::fs::write(&genesis_path, toml::to_string(&genesis).unwrap()).unwrap();
    let data_dir = NodeConfig::path(home.path(), &config.node.data_dir);
    let out = home.path().join("chain.gzaudit");

    let mut chain = FixtureChain::create(&data_dir, genesis).unwrap();
    run_demo_story(&mut chain).unwrap();
    let height = chain.chain().height();

    // The "node" still runs: RocksDB's lock is held.
    let err = export_home(home.path(), &out, &mut Progress::silent()).unwrap_err();
    assert!(matches!(err, ExportError::StoreLocked { .. }), "{err}");
    assert!(err.to_string().contains("stop the node first"), "{err}");

    drop(chain);
    let summary = export_home(home.path(), &out, &mut Progress::silent()).unwrap();
    assert_eq!(summary.blocks, height);
    assert_eq!(summary.txs, 26);

    let mut header = [0u8; 12];
    flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap())
        .read_exact(&mut header)
        .unwrap();
    assert_eq!(header[..8], MAGIC);
    assert_eq!(
        u32::from_le_bytes(header[8..].try_into().unwrap()),
        FORMAT_VERSION
    );

    let replayed = audit_common::replay(&out).unwrap();
    assert_eq!(replayed.blocks, height);
}

#[test]
fn export_refuses_a_home_without_a_chain() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), CONFIG_TEMPLATE).unwrap();
    std::fs::write(
        home.path().join("genesis.toml"),
        toml::to_string(&demo_genesis()).unwrap(),
    )
    .unwrap();
    let err = export_home(
        home.path(),
        &home.path().join("x.gzaudit"),
        &mut Progress::silent(),
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::NotInitialised { .. }), "{err}");
}
