//! `gongzhi query …`: read organisations, datasets, grants, balances, histories, proposals,
//! blocks and txs from a node, printed for people (ids as `grant#3`, hashes as hex).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gongzhi_contracts::Call;
use gongzhi_ledger::{Canonical, Timestamp, Tx};
use gongzhi_proto::v1::{
    consistency::Requirement, get_block_request, list_grants_request, Consistency,
    GetBalanceRequest, GetBlockRequest, GetDatasetRequest, GetHistoryRequest, GetReceiptRequest,
    GetTxRequest, Grant, GrantStatus, ListDatasetsRequest, ListGrantsRequest,
    ListOrganizationsRequest, ListProposalsRequest, OrganizationRole, OrganizationStatus,
    ProposalStatus, StatusRequest,
};

use super::api_client::{hex32, runtime, status_error, ApiClient, DEFAULT_NODE};
use super::tx_cmd::describe_output;

/// `gongzhi query` options.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Node gRPC address.
    #[arg(long, global = true, default_value = DEFAULT_NODE)]
    pub node: String,
    /// Read exactly this height instead of the latest.
    #[arg(long, global = true)]
    pub at: Option<u64>,
    /// What to read.
    #[command(subcommand)]
    pub what: QueryCommand,
}

/// What `gongzhi query` reads.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Node status: chain, height, peers.
    #[command(after_help = "Example:\n  gongzhi query status --node 127.0.0.1:9090")]
    Status,
    /// Member organisations.
    #[command(after_help = "Example:\n  gongzhi query orgs --role validator")]
    Orgs {
        /// Only this role: validator, member, issuer, service-point, auditor.
        #[arg(long)]
        role: Option<String>,
        /// Include removed organisations.
        #[arg(long)]
        all: bool,
    },
    /// Registered datasets (or one, with its fields).
    #[command(
        after_help = "Examples:\n  gongzhi query datasets\n  gongzhi query datasets --id resident-registry"
    )]
    Datasets {
        /// Show this dataset with its fields.
        #[arg(long)]
        id: Option<String>,
        /// Only datasets of this owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Grants by grantee, grantor or dataset.
    #[command(after_help = "Example:\n  gongzhi query grants --grantee health-commission --all")]
    Grants {
        /// Grants received by this organisation.
        #[arg(long, group = "by")]
        grantee: Option<String>,
        /// Grants given by this organisation.
        #[arg(long, group = "by")]
        grantor: Option<String>,
        /// Grants on this dataset.
        #[arg(long, group = "by")]
        dataset: Option<String>,
        /// Include expired, revoked, used-up and not-yet-valid grants.
        #[arg(long)]
        all: bool,
    },
    /// A resident's civility balance.
    #[command(after_help = "Example:\n  gongzhi query balance 3f2a…(64 hex)")]
    Balance {
        /// Resident pseudonym (64 hex).
        resident: String,
    },
    /// A resident's civility history, newest first.
    #[command(after_help = "Example:\n  gongzhi query history 3f2a…(64 hex)")]
    History {
        /// Resident pseudonym (64 hex).
        resident: String,
    },
    /// Governance proposals, newest first.
    #[command(after_help = "Example:\n  gongzhi query proposals --status open")]
    Proposals {
        /// open, passed or expired.
        #[arg(long)]
        status: Option<String>,
    },
    /// A block by height (the latest when omitted).
    #[command(after_help = "Example:\n  gongzhi query block 42")]
    Block {
        /// Height.
        height: Option<u64>,
    },
    /// A tx and its receipt, by hash.
    #[command(after_help = "Example:\n  gongzhi query tx 9c1e…(64 hex)")]
    Tx {
        /// Tx hash (64 hex).
        hash: String,
    },
}

fn consistency(at: Option<u64>) -> Option<Consistency> {
    at.map(|h| Consistency {
        requirement: Some(Requirement::ExactHeight(h)),
    })
}

fn time(ms: u64) -> String {
    Timestamp(ms).to_string()
}

fn print_grant(g: &Grant) {
    let status = GrantStatus::try_from(g.status)
        .map_or("?", |s| s.as_str_name().trim_start_matches("GRANT_STATUS_"));
    println!(
        "grant#{:<4} {:<20} {} → {}  {} [{}] for [{}]  {} .. {}  uses {}/{}{}{}",
        g.grant_id,
        status,
        g.grantor_org_id,
        g.grantee_org_id,
        g.dataset_id,
        g.fields.join(","),
        g.purpose_codes.join(","),
        time(g.valid_from_ms),
        time(g.valid_until_ms),
        g.uses,
        g.max_uses.map_or("∞".to_string(), |m| m.to_string()),
        if g.parent_grant_id != 0 {
            format!("  delegated from grant#{}", g.parent_grant_id)
        } else {
            String::new()
        },
        if g.co_approver_org_id.is_empty() {
            String::new()
        } else {
            format!(
                "  co-approver {}{}",
                g.co_approver_org_id,
                if g.co_approved { " ✓" } else { " (pending)" }
            )
        },
    );
}

/// Print every item of a paged list: `fetch(token)` returns one page and the token of the next
/// (empty after the last page); the first call gets an empty token.
async fn each_page<T>(
    mut fetch: impl AsyncFnMut(String) -> Result<(Vec<T>, String)>,
    mut print: impl FnMut(&T),
) -> Result<()> {
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token).await?;
        items.iter().for_each(&mut print);
        if next.is_empty() {
            return Ok(());
        }
        token = next;
    }
}

/// Run `gongzhi query …`.
pub fn run(args: QueryArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let mut c = ApiClient::connect(&args.node).await?;
        let at = consistency(args.at);
        match args.what {
            QueryCommand::Status => {
                let s = c
                    .node
                    .status(StatusRequest {})
                    .await
                    .map_err(status_error)?
                    .into_inner();
                println!(
                    "chain {}  height {}  block {}  time {}",
                    s.chain_id,
                    s.latest_height,
                    hex::encode(&s.latest_block_hash),
                    time(s.latest_block_time_ms)
                );
                println!(
                    "peers {}  syncing {}  version {}",
                    s.peers_count, s.syncing, s.node_version
                );
            }
            QueryCommand::Orgs { role, all } => {
                let role = match role.as_deref() {
                    None => OrganizationRole::Unspecified,
                    Some(r) => OrganizationRole::from_str_name(&format!(
                        "ORGANIZATION_ROLE_{}",
                        r.replace('-', "_").to_uppercase()
                    ))
                    .with_context(|| {
                        format!(
                            "--role {r:?}: use validator, member, issuer, service-point or auditor"
                        )
                    })?,
                };
                let pages = async |page_token| {
                    let page = c
                        .registry
                        .list_organizations(ListOrganizationsRequest {
                            role: role as i32,
                            include_removed: all,
                            consistency: at,
                            page_size: 0,
                            page_token,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    Ok((page.organizations, page.next_page_token))
                };
                each_page(pages, |o| {
                    let status = OrganizationStatus::try_from(o.status).map_or("?", |s| {
                        s.as_str_name().trim_start_matches("ORGANIZATION_STATUS_")
                    });
                    let roles: Vec<&str> = o
                        .roles
                        .iter()
                        .filter_map(|r| OrganizationRole::try_from(*r).ok())
                        .map(|r| r.as_str_name().trim_start_matches("ORGANIZATION_ROLE_"))
                        .collect();
                    println!(
                        "{:<20} {:<9} power {:<3} [{}]  {}",
                        o.org_id,
                        status,
                        o.voting_power,
                        roles.join(","),
                        o.name
                    );
                })
                .await?;
            }
            QueryCommand::Datasets { id: Some(id), .. } => {
                let d = c
                    .registry
                    .get_dataset(GetDatasetRequest {
                        dataset_id: id,
                        consistency: at,
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                let d = d.dataset.context("no dataset in the answer")?;
                println!("{}  {}  owner {}", d.dataset_id, d.name, d.owner_org_id);
                for f in &d.fields {
                    let level = gongzhi_proto::v1::FieldSensitivity::try_from(f.sensitivity)
                        .map_or("?", |s| {
                            s.as_str_name().trim_start_matches("FIELD_SENSITIVITY_")
                        });
                    println!("  {:<20} {level}", f.name);
                }
            }
            QueryCommand::Datasets { id: None, owner } => {
                let pages = async |page_token| {
                    let page = c
                        .registry
                        .list_datasets(ListDatasetsRequest {
                            owner_org_id: owner.clone().unwrap_or_default(),
                            consistency: at,
                            page_size: 0,
                            page_token,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    Ok((page.datasets, page.next_page_token))
                };
                each_page(pages, |d| {
                    let fields: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
                    println!(
                        "{:<24} owner {:<18} [{}]  {}",
                        d.dataset_id,
                        d.owner_org_id,
                        fields.join(","),
                        d.name
                    );
                })
                .await?;
            }
            QueryCommand::Grants {
                grantee,
                grantor,
                dataset,
                all,
            } => {
                let filter = match (grantee, grantor, dataset) {
                    (Some(g), _, _) => list_grants_request::Filter::GranteeOrgId(g),
                    (_, Some(g), _) => list_grants_request::Filter::GrantorOrgId(g),
                    (_, _, Some(d)) => list_grants_request::Filter::DatasetId(d),
                    _ => bail!("name one of --grantee, --grantor or --dataset"),
                };
                let pages = async |page_token| {
                    let page = c
                        .authorization
                        .list_grants(ListGrantsRequest {
                            filter: Some(filter.clone()),
                            include_inactive: all,
                            consistency: at,
                            page_size: 0,
                            page_token,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    Ok((page.grants, page.next_page_token))
                };
                each_page(pages, print_grant).await?;
            }
            QueryCommand::Balance { resident } => {
                let id = hex32(&resident, "RESIDENT")?;
                let b = c
                    .civility
                    .get_balance(GetBalanceRequest {
                        resident_id: id.to_vec(),
                        consistency: at,
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                println!(
                    "{} points (height {})",
                    b.balance,
                    b.state.map_or(0, |s| s.height)
                );
            }
            QueryCommand::History { resident } => {
                let id = hex32(&resident, "RESIDENT")?;
                let pages = async |page_token| {
                    let page = c
                        .civility
                        .get_history(GetHistoryRequest {
                            resident_id: id.to_vec(),
                            consistency: at,
                            page_size: 0,
                            page_token,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    Ok((page.records, page.next_page_token))
                };
                each_page(pages, |r| {
                    let kind = gongzhi_proto::v1::CivilityRecordKind::try_from(r.kind)
                        .map_or("?", |k| {
                            k.as_str_name().trim_start_matches("CIVILITY_RECORD_KIND_")
                        });
                    let detail = match kind {
                        "AWARD" => format!(
                            "{}{}",
                            r.reason_code,
                            if r.reversed_by_record_id != 0 {
                                format!(" (reversed by record#{})", r.reversed_by_record_id)
                            } else {
                                String::new()
                            }
                        ),
                        "REDEMPTION" => r.redeemed_item.clone(),
                        _ => {
                            format!("of record#{}: {}", r.reversed_record_id, r.reversal_reason)
                        }
                    };
                    println!(
                        "record#{:<4} {:<10} {:>4} pts  by {:<18} height {:<5} {}  {detail}",
                        r.record_id,
                        kind,
                        r.points,
                        r.org_id,
                        r.height,
                        time(r.time_ms)
                    );
                })
                .await?;
            }
            QueryCommand::Proposals { status } => {
                let status = match status.as_deref() {
                    None => ProposalStatus::Unspecified,
                    Some(s) => ProposalStatus::from_str_name(&format!(
                        "PROPOSAL_STATUS_{}",
                        s.to_uppercase()
                    ))
                    .with_context(|| format!("--status {s:?}: use open, passed or expired"))?,
                };
                let pages = async |page_token| {
                    let page = c
                        .registry
                        .list_proposals(ListProposalsRequest {
                            status: status as i32,
                            consistency: at,
                            page_size: 0,
                            page_token,
                        })
                        .await
                        .map_err(status_error)?
                        .into_inner();
                    Ok((page.proposals, page.next_page_token))
                };
                each_page(pages, |p| {
                    let s = ProposalStatus::try_from(p.status).map_or("?", |s| {
                        s.as_str_name().trim_start_matches("PROPOSAL_STATUS_")
                    });
                    println!(
                        "proposal#{:<3} {:<7} {}/{} power  by {:<16} {}",
                        p.proposal_id,
                        s,
                        p.approved_power,
                        p.total_power,
                        p.proposer_org_id,
                        p.summary
                    );
                })
                .await?;
            }
            QueryCommand::Block { height } => {
                let height = match height {
                    Some(h) => h,
                    None => {
                        c.node
                            .status(StatusRequest {})
                            .await
                            .map_err(status_error)?
                            .into_inner()
                            .latest_height
                    }
                };
                let b = c
                    .ledger
                    .get_block(GetBlockRequest {
                        block: Some(get_block_request::Block::Height(height)),
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                let b = b.block.context("no block in the answer")?;
                let block = gongzhi_ledger::Block::decode(&b.block)?;
                println!(
                    "block {} {}  time {}  proposer {}  {} tx(s)",
                    block.header.height,
                    block.hash(),
                    block.header.time,
                    block.header.proposer,
                    block.txs.len()
                );
                println!("  state root {}", block.header.state_root);
                for tx in &block.txs {
                    let call = Call::decode(&tx.body.call).map_or("malformed call", |c| c.name());
                    println!(
                        "  tx {}  {}  signer {} nonce {}",
                        tx.hash(),
                        call,
                        tx.body.signer,
                        tx.body.nonce
                    );
                }
            }
            QueryCommand::Tx { hash } => {
                let hash = hex32(&hash, "HASH")?.to_vec();
                let t = c
                    .ledger
                    .get_tx(GetTxRequest {
                        tx_hash: hash.clone(),
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                if t.tx.is_empty() {
                    println!("pending in the mempool");
                    return Ok(());
                }
                let tx = Tx::decode(&t.tx)?;
                let call = Call::decode(&tx.body.call).map_or("malformed call", |c| c.name());
                println!(
                    "tx {}  {}  height {} index {}  signer {} nonce {}",
                    hex::encode(&hash),
                    call,
                    t.height,
                    t.index,
                    tx.body.signer,
                    tx.body.nonce
                );
                let r = c
                    .ledger
                    .get_receipt(GetReceiptRequest { tx_hash: hash })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                if let Some(r) = r.receipt {
                    if r.success {
                        println!("  succeeded: {}", describe_output(&r.result));
                    } else {
                        println!(
                            "  rejected: {} ({}): {}",
                            r.error_name, r.error_code, r.error_message
                        );
                    }
                }
            }
        }
        Ok(())
    })
}
