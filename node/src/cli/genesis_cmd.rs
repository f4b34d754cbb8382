//! `gongzhi genesis …`: build a genesis file step by step and check it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use gongzhi_contracts::{Genesis, GenesisOrg, GenesisPurpose, GenesisReason};

use gongzhi_ledger::keyfile::{self, KeyKind};

/// Genesis operations.
#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Start a genesis file with a chain id and no organisations.
    #[command(
        after_help = "Example:\n  gongzhi genesis new --chain-id xicheng-1 --out genesis.toml"
    )]
    New {
        /// Chain id (printable ASCII, at most 64 characters).
        #[arg(long)]
        chain_id: String,
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        /// Genesis time in milliseconds since the Unix epoch (default: now).
        #[arg(long)]
        time_ms: Option<u64>,
    },
    /// Add an organisation, taking its public keys from a `gongzhi keys generate` directory.
    #[command(
        after_help = "Example:\n  gongzhi genesis add-org --genesis genesis.toml --id yuetan-street \\\n    \
        --kind street-office --name 'Yuetan Street Office (月坛街道办事处)' \\\n    \
        --roles validator,member,issuer --keys ./keys/yuetan --power 10"
    )]
    AddOrg {
        /// Genesis file to edit.
        #[arg(long)]
        genesis: PathBuf,
        /// Organisation id (a-z, 0-9, '-', '_').
        #[arg(long)]
        id: String,
        /// street-office, property-manager, city-department, auditor or service-point.
        #[arg(long)]
        kind: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Comma-separated roles: validator, member, issuer, service-point, auditor.
        #[arg(long, value_delimiter = ',', default_value = "member")]
        roles: Vec<String>,
        /// Key directory holding operator.key (and node.key for validators).
        #[arg(long)]
        keys: PathBuf,
        /// Voting power (validators only).
        #[arg(long)]
        power: Option<u64>,
    },
    /// Add a purpose to the taxonomy.
    #[command(
        after_help = "Example:\n  gongzhi genesis add-purpose --genesis genesis.toml --code elderly-care --label 'Elderly care (养老服务)'"
    )]
    AddPurpose {
        /// Genesis file to edit.
        #[arg(long)]
        genesis: PathBuf,
        /// Purpose code.
        #[arg(long)]
        code: String,
        /// Display label.
        #[arg(long)]
        label: String,
    },
    /// Add a reason to the civility catalogue.
    #[command(
        after_help = "Example:\n  gongzhi genesis add-reason --genesis genesis.toml --code garbage-sorting --label 'Garbage sorting (垃圾分类)' --max-points 5"
    )]
    AddReason {
        /// Genesis file to edit.
        #[arg(long)]
        genesis: PathBuf,
        /// Reason code.
        #[arg(long)]
        code: String,
        /// Display label.
        #[arg(long)]
        label: String,
        /// Most points per award.
        #[arg(long)]
        max_points: u64,
    },
    /// Check a genesis file and summarise it.
    #[command(after_help = "Example:\n  gongzhi genesis validate genesis.toml")]
    Validate {
        /// Genesis file.
        file: PathBuf,
    },
}

const HEADER: &str =
    "# Gongzhi genesis document. Every validator must use a byte-identical copy.\n\
# chain_id: carried by every tx and block. genesis_time: ms since the Unix epoch.\n\
# [[organisations]]: founding members (kind, name, roles, operator_keys, validator_key, power).\n\
# [[purposes]]: the purpose taxonomy grants refer to. [[reasons]]: the civility catalogue.\n\
# [parameters]: chain rules (proposal duration, quota period, …); omitted ones take defaults.\n\n";

/// Write a genesis document as commented TOML.
pub fn write_genesis(path: &Path, genesis: &Genesis) -> Result<()> {
    let body = toml::to_string_pretty(genesis).context("cannot encode genesis")?;
    std::fs::write(path, format!("{HEADER}{body}"))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_unchecked(path: &Path) -> Result<Genesis> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a genesis file", path.display()))
}

/// Run a genesis subcommand.
pub fn run(command: GenesisCommand) -> Result<()> {
    match command {
        GenesisCommand::New {
            chain_id,
            out,
            time_ms,
        } => {
            if out.exists() {
                bail!("{} already exists; refusing to overwrite it", out.display());
            }
            let genesis = Genesis {
                chain_id,
                genesis_time: time_ms.unwrap_or_else(|| crate::driver::now().millis()),
                parameters: Default::default(),
                organisations: Vec::new(),
                purposes: Vec::new(),
                reasons: Vec::new(),
            };
            write_genesis(&out, &genesis)?;
            println!(
                "wrote {}; add organisations with `gongzhi genesis add-org`",
                out.display()
            );
            Ok(())
        }
        GenesisCommand::AddOrg {
            genesis,
            id,
            kind,
            name,
            roles,
            keys,
            power,
        } => {
            let mut doc = read_unchecked(&genesis)?;
            if doc.organisations.iter().any(|o| o.id == id) {
                bail!("organisation {id:?} is already in {}", genesis.display());
            }
            let (_, operator) = keyfile::read_key(&keys.join(KeyKind::Operator.file_name()))?;
            let is_validator = roles.iter().any(|r| r == "validator");
            let validator_key = if is_validator {
                Some(
                    keyfile::read_key(&keys.join(KeyKind::Node.file_name()))?
                        .1
                        .public()
                        .to_hex(),
                )
            } else {
                None
            };
            if is_validator && power.is_none() {
                bail!("a validator needs --power (its voting weight, e.g. 10)");
            }
            doc.organisations.push(GenesisOrg {
                id: id.clone(),
                kind,
                name,
                roles,
                operator_keys: vec![operator.public().to_hex()],
                node_keys: Vec::new(),
                validator_key,
                power,
                issuer_quota: None,
            });
            write_genesis(&genesis, &doc)?;
            println!("added {id} to {}", genesis.display());
            Ok(())
        }
        GenesisCommand::AddPurpose {
            genesis,
            code,
            label,
        } => {
            let mut doc = read_unchecked(&genesis)?;
            doc.purposes.push(GenesisPurpose { code, label });
            write_genesis(&genesis, &doc)
        }
        GenesisCommand::AddReason {
            genesis,
            code,
            label,
            max_points,
        } => {
            let mut doc = read_unchecked(&genesis)?;
            doc.reasons.push(GenesisReason {
                code,
                label,
                max_points,
            });
            write_genesis(&genesis, &doc)
        }
        GenesisCommand::Validate { file } => {
            let genesis = crate::run::load_genesis(&file)?;
            let set = genesis.validator_set()?;
            println!("{} is valid", file.display());
            println!("  chain id       {}", genesis.chain_id);
            println!("  genesis time   {}", genesis.time());
            println!("  genesis hash   {}", genesis.hash());
            println!("  organisations  {}", genesis.organisations.len());
            println!(
                "  validators     {} (total power {})",
                set.len(),
                set.total_power()
            );
            println!("  purposes       {}", genesis.purposes.len());
            println!("  reasons        {}", genesis.reasons.len());
            Ok(())
        }
    }
}
