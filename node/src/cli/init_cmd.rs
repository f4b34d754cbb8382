//! `gongzhi init`: a home directory with a documented config, the genesis and the node key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::config::{NodeConfig, CONFIG_TEMPLATE};
use gongzhi_ledger::keyfile::{self, KeyKind};

/// Arguments of `gongzhi init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Home directory to create.
    #[arg(long, env = "GONGZHI_HOME", default_value = ".gongzhi")]
    pub home: PathBuf,
    /// Genesis file to copy in (check it first with `gongzhi genesis validate`).
    #[arg(long)]
    pub genesis: PathBuf,
    /// Node key file to copy in; a new key is generated when omitted.
    #[arg(long)]
    pub node_key: Option<PathBuf>,
    /// Human name of this node.
    #[arg(long, default_value = "gongzhi-node")]
    pub moniker: String,
    /// Run as an observer (follows the chain, serves the API, never votes).
    #[arg(long)]
    pub observer: bool,
    /// Peer-to-peer listen multiaddress.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/26656")]
    pub p2p_listen: String,
    /// Peers to dial (repeatable): /ip4/HOST/tcp/PORT/p2p/PEER_ID.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub rpc_listen: String,
    /// Prometheus metrics address ("" disables).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub metrics_listen: String,
    /// Empty-block interval in milliseconds (0 = only make blocks when txs wait).
    #[arg(long)]
    pub empty_block_interval_ms: Option<u64>,
}

/// Replace `key = …` inside `[section]` of a TOML text, keeping every comment.
fn set_value(text: &str, section: &str, key: &str, value: &str) -> String {
    let mut in_section = false;
    let mut done = false;
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                in_section = trimmed == format!("[{section}]");
            }
            if in_section && !done && trimmed.starts_with(&format!("{key} =")) {
                done = true;
                format!("{key} = {value}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Create the home directory.
pub fn run(args: InitArgs) -> Result<()> {
    let config_path = args.home.join("config.toml");
    if config_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a node's home (choose another --home)",
            config_path.display()
        );
    }
    let genesis = crate::run::load_genesis(&args.genesis)?;
    fs::create_dir_all(args.home.join("keys"))
        .with_context(|| format!("cannot create {}", args.home.display()))?;
    fs::set_permissions(args.home.join("keys"), fs::Permissions::from_mode(0o700))?;
    let key_path = args.home.join("keys").join(KeyKind::Node.file_name());
    let key = match &args.node_key {
        Some(path) => keyfile::read_key(path)?.1,
        None => gongzhi_ledger::Keypair::generate(),
    };
    keyfile::write_key(&key_path, KeyKind::Node, &key)?;
    fs::copy(&args.genesis, args.home.join("genesis.toml"))
        .with_context(|| format!("cannot copy {}", args.genesis.display()))?;

    let mut text = CONFIG_TEMPLATE.to_string();
    text = set_value(&text, "node", "moniker", &quoted(&args.moniker));
    if args.observer {
        text = set_value(&text, "node", "role", "\"observer\"");
    }
    text = set_value(&text, "p2p", "listen", &quoted(&args.p2p_listen));
    let peers: Vec<String> = args.peers.iter().map(|p| quoted(p)).collect();
    text = set_value(&text, "p2p", "peers", &format!("[{}]", peers.join(", ")));
    text = set_value(&text, "rpc", "listen", &quoted(&args.rpc_listen));
    text = set_value(&text, "metrics", "listen", &quoted(&args.metrics_listen));
    if let Some(ms) = args.empty_block_interval_ms {
        text = set_value(
            &text,
            "consensus",
            "empty_block_interval_ms",
            &ms.to_string(),
        );
    }
    let parsed: NodeConfig =
        toml::from_str(&text).context("internal error: generated config does not parse")?;
    parsed.validate()?;
    fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    for peer in &args.peers {
        crate::run::parse_peer(peer)?;
    }
    println!(
        "initialised {} for chain {}",
        args.home.display(),
        genesis.chain_id
    );
    println!(
        "node key {}  (peer id {})",
        key.public(),
        peer_id_text(&key)
    );
    println!(
        "start it with: gongzhi start --home {}",
        args.home.display()
    );
    Ok(())
}

fn peer_id_text(key: &gongzhi_ledger::Keypair) -> String {
    crate::network::peer_id_from_node_key(key.public().0)
        .map_or_else(|e| e.to_string(), |p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_value_edits_only_the_named_section() {
        let text = "[a]\nx = 1\n[b]\nx = 1\n";
        assert_eq!(set_value(text, "b", "x", "2"), "[a]\nx = 1\n[b]\nx = 2\n");
    }
}
