//! Command-line interface: argument definitions and dispatch. Each subcommand's `--help`
//! ends with an example; errors say what was wrong and what to do.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub mod api_client;
mod audit_cmd;
pub mod check_cmd;
mod devnet_cmd;
mod genesis_cmd;
mod init_cmd;
mod keys_cmd;
pub mod query_cmd;
pub mod tx_cmd;

/// Gongzhi (共治): a permissioned BFT ledger of data-sharing grants and civility points.
#[derive(Debug, Parser)]
#[command(name = "gongzhi", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate key files (operator and node keys, mode 0600).
    #[command(after_help = "Example:\n  gongzhi keys generate --out ./keys/yuetan")]
    Keys {
        /// Key operation.
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
    /// Build and check genesis files.
    #[command(
        after_help = "Example:\n  gongzhi genesis new --chain-id xicheng-1 --out genesis.toml\n  \
        gongzhi genesis add-org --genesis genesis.toml --id yuetan --kind street-office \\\n    \
        --name 'Yuetan Street Office (月坛街道办事处)' --keys ./keys/yuetan --power 10\n  \
        gongzhi genesis validate genesis.toml"
    )]
    Genesis {
        /// Genesis operation.
        #[command(subcommand)]
        command: genesis_cmd::GenesisCommand,
    },
    /// Create a node home directory with a documented config.toml.
    #[command(
        after_help = "Example:\n  gongzhi init --home ./node0 --genesis genesis.toml --node-key ./keys/yuetan/node.key"
    )]
    Init(init_cmd::InitArgs),
    /// Local multi-validator networks of real processes, with the demo district.
    #[command(after_help = "Example:\n  gongzhi devnet up --validators 4")]
    Devnet {
        /// Devnet operation.
        #[command(subcommand)]
        command: devnet_cmd::DevnetCommand,
    },
    /// Run a validator or observer node.
    #[command(after_help = "Example:\n  gongzhi start --home ./node0")]
    Start {
        /// Node home directory (made by `gongzhi init`).
        #[arg(long, env = "GONGZHI_HOME", default_value = ".gongzhi")]
        home: PathBuf,
    },
    /// Auditors: export the chain, replay it from genesis, report, benchmark.
    #[command(
        after_help = "Example:\n  gongzhi audit export --home ./node0 --out chain.gzaudit\n  \
        gongzhi audit replay chain.gzaudit --html report.html"
    )]
    Audit {
        /// Audit operation.
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// tx, query, check, verify-receipt, bench (flattened: `gongzhi check …`).
    #[command(flatten)]
    Api(ApiCommand),
}

/// Commands of applications and data owners (tx, query, check, verify-receipt, bench).
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Sign a contract call with an operator key and submit it (waits for the commit).
    #[command(
        after_help = "Example:\n  gongzhi tx revoke --grant 3 --reason 'case closed' --key ./keys/civil-affairs/operator.key --node 127.0.0.1:9090\n\n\
        Run `gongzhi tx <call> --help` for each call's arguments."
    )]
    Tx(tx_cmd::TxArgs),
    /// Read organisations, datasets, grants, balances, histories, proposals, blocks and txs.
    #[command(
        after_help = "Example:\n  gongzhi query grants --grantee health-commission --node 127.0.0.1:9090"
    )]
    Query(query_cmd::QueryArgs),
    /// Ask whether an organisation may use fields of a dataset for a purpose.
    #[command(
        after_help = "Example:\n  gongzhi check --grantee health-commission --dataset elderly-subsidy-roll --fields age,street \\\n    \
        --purpose elderly-care --at-least 12 --receipt decision.gzr --node 127.0.0.1:9090"
    )]
    Check(check_cmd::CheckArgs),
    /// Verify a decision receipt offline against the chain's genesis file.
    #[command(
        after_help = "Example:\n  gongzhi verify-receipt decision.gzr --genesis genesis.toml"
    )]
    VerifyReceipt(check_cmd::VerifyReceiptArgs),
    /// Load generators against a running node.
    #[command(
        after_help = "Example:\n  gongzhi bench checks --node 127.0.0.1:9090 --concurrency 64 --duration 30s"
    )]
    Bench {
        /// What to measure.
        #[command(subcommand)]
        command: check_cmd::BenchCommand,
    },
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keys { command } => keys_cmd::run(command),
        Command::Genesis { command } => genesis_cmd::run(command),
        Command::Init(args) => init_cmd::run(args),
        Command::Audit { command } => audit_cmd::run(command),
        Command::Devnet { command } => devnet_cmd::run(command),
        Command::Api(ApiCommand::Tx(args)) => tx_cmd::run(args),
        Command::Api(ApiCommand::Query(args)) => query_cmd::run(args),
        Command::Api(ApiCommand::Check(args)) => check_cmd::run_check(args),
        Command::Api(ApiCommand::VerifyReceipt(args)) => check_cmd::run_verify_receipt(args),
        Command::Api(ApiCommand::Bench { command }) => check_cmd::run_bench(command),
        Command::Start { home } => {
            let config = crate::config::NodeConfig::load(&home)?;
            crate::logging::init(&config.node.log);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(crate::run::start(&home))
        }
    }
}
