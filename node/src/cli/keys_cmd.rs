//! `gongzhi keys …`

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use gongzhi_ledger::keyfile;

/// Key operations.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an operator key (signs txs) and a node key (network identity, votes) in DIR.
    #[command(
        after_help = "Example:\n  gongzhi keys generate --out ./keys/yuetan\n\n\
        Files are created with mode 0600 and never overwritten; only public keys are printed."
    )]
    Generate {
        /// Directory to write operator.key and node.key into (created, mode 0700).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key stored in a key file.
    #[command(after_help = "Example:\n  gongzhi keys show ./keys/yuetan/operator.key")]
    Show {
        /// A key file.
        file: PathBuf,
    },
}

/// Run a keys subcommand.
pub fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            for (kind, path, public) in keyfile::generate_key_dir(&out)? {
                println!(
                    "{:<8} {}  {}",
                    format!("{kind:?}").to_lowercase(),
                    public,
                    path.display()
                );
            }
            println!(
                "Keep these files secret; back them up. Only the public keys above are shared."
            );
            Ok(())
        }
        KeysCommand::Show { file } => {
            let (kind, key) = keyfile::read_key(&file)?;
            println!("{:<8} {}", format!("{kind:?}").to_lowercase(), key.public());
            Ok(())
        }
    }
}
