//! `gongzhi tx <call> …`: sign one contract call with an operator key and submit it.
//!
//! The chain id and the next nonce are asked from the node unless given. By default the
//! command waits for the tx to commit and prints its receipt; a rejected tx prints the
//! contract's error name and message and exits non-zero.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::grants::datasets::AccessRequestArgs;
use gongzhi_contracts::grants::lifecycle::{Delegation, NewGrant, UseRecord};
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{
    Call, CallOutput, GrantId, ProposalId, PurposeCode, RecordId, RequestId, ResidentId,
};
use gongzhi_ledger::{keyfile, Canonical, Hash, Timestamp};
use gongzhi_proto::v1::SubmitTxRequest;

use super::api_client::{
    hex32, parse_time, runtime, split_list, status_error, ApiClient, DEFAULT_NODE,
};

/// Options shared by every `tx` call.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// Operator key file of the signing organisation.
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Node gRPC address.
    #[arg(long, global = true, default_value = DEFAULT_NODE)]
    pub node: String,
    /// Chain id (asked from the node when omitted).
    #[arg(long, global = true)]
    pub chain_id: Option<String>,
    /// Nonce (the signer's next nonce, asked from the node, when omitted).
    #[arg(long, global = true)]
    pub nonce: Option<u64>,
    /// Return once the node accepted the tx, without waiting for its commit.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Print the signed tx as hex instead of submitting it.
    #[arg(long, global = true, hide = true)]
    pub print_only: bool,
    /// The call.
    #[command(subcommand)]
    pub call: CallCommand,
}

/// Grant terms set by an owner.
#[derive(Debug, Args)]
pub struct TermsArgs {
    /// Most uses (unlimited when omitted).
    #[arg(long)]
    pub max_uses: Option<u64>,
    /// Further delegation levels allowed (0: not delegable).
    #[arg(long, default_value_t = 0)]
    pub delegation_depth: u8,
    /// Co-approver organisation (required for sensitive or personal fields).
    #[arg(long)]
    pub co_approver: Option<String>,
    /// Hash (64 hex) of the resident's consent receipt.
    #[arg(long)]
    pub consent_hash: Option<String>,
}

impl TermsArgs {
    fn terms(&self) -> Result<GrantTerms> {
        Ok(GrantTerms {
            max_uses: self.max_uses,
            delegation_depth: self.delegation_depth,
            co_approver: self.co_approver.as_deref().map(Into::into),
            consent_hash: self
                .consent_hash
                .as_deref()
                .map(|h| hex32(h, "--consent-hash").map(Hash))
                .transpose()?,
        })
    }
}

/// Every contract call.
#[derive(Debug, Subcommand)]
pub enum CallCommand {
    /// Register a dataset owned by your organisation.
    #[command(
        after_help = "Example:\n  gongzhi tx register-dataset --id elderly-subsidy-roll --name 'Elderly-care subsidy roll (养老补贴)' \\\n    \
        --field age:internal --field subsidy_level:sensitive --field street:public --key operator.key"
    )]
    RegisterDataset {
        /// New dataset id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A field as name:sensitivity (public, internal, sensitive, personal); repeat.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
    },
    /// Ask a dataset's owner for access.
    #[command(
        after_help = "Example:\n  gongzhi tx request-access --dataset elderly-subsidy-roll --fields age,street \\\n    \
        --purpose elderly-care --until +90d --justification 'Home visits' --key operator.key"
    )]
    RequestAccess {
        /// Dataset.
        #[arg(long)]
        dataset: String,
        /// Fields, comma-separated.
        #[arg(long)]
        fields: String,
        /// Purpose code.
        #[arg(long)]
        purpose: String,
        /// Start (ms since the epoch, 'now', or an offset like +1d).
        #[arg(long, default_value = "now")]
        from: String,
        /// End, exclusive (same forms).
        #[arg(long)]
        until: String,
        /// Why, for the owner.
        #[arg(long)]
        justification: String,
    },
    /// Approve a pending access request into a grant (dataset owner).
    #[command(
        after_help = "Example:\n  gongzhi tx approve-request --request 1 --max-uses 1000 --co-approver yuetan-street --key operator.key"
    )]
    ApproveRequest {
        /// Request id.
        #[arg(long)]
        request: u64,
        /// Terms.
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Reject a pending access request (dataset owner).
    #[command(
        after_help = "Example:\n  gongzhi tx reject-request --request 2 --reason 'purpose too broad' --key operator.key"
    )]
    RejectRequest {
        /// Request id.
        #[arg(long)]
        request: u64,
        /// Why, for the requester.
        #[arg(long)]
        reason: String,
    },
    /// Issue a grant directly (dataset owner).
    #[command(
        after_help = "Example:\n  gongzhi tx issue-grant --grantee police-xicheng --dataset resident-registry --fields address \\\n    \
        --purposes emergency-response --until +1d --co-approver civil-affairs --key operator.key"
    )]
    IssueGrant {
        /// Receiving organisation.
        #[arg(long)]
        grantee: String,
        /// Dataset.
        #[arg(long)]
        dataset: String,
        /// Fields, comma-separated.
        #[arg(long)]
        fields: String,
        /// Purpose codes, comma-separated.
        #[arg(long)]
        purposes: String,
        /// Start (ms since the epoch, 'now', or an offset like +1d).
        #[arg(long, default_value = "now")]
        from: String,
        /// End, exclusive.
        #[arg(long)]
        until: String,
        /// Terms.
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Co-approve a grant (its named co-approver).
    #[command(after_help = "Example:\n  gongzhi tx co-approve --grant 3 --key operator.key")]
    CoApprove {
        /// Grant id.
        #[arg(long)]
        grant: u64,
    },
    /// Delegate part of a grant you received.
    #[command(
        after_help = "Example:\n  gongzhi tx delegate --parent 3 --grantee sanlihe-service --fields age --purposes elderly-care \\\n    \
        --until +30d --key operator.key"
    )]
    Delegate {
        /// Grant delegated from.
        #[arg(long)]
        parent: u64,
        /// Receiving organisation.
        #[arg(long)]
        grantee: String,
        /// Fields (subset of the parent's), comma-separated.
        #[arg(long)]
        fields: String,
        /// Purposes (subset of the parent's), comma-separated.
        #[arg(long)]
        purposes: String,
        /// Start.
        #[arg(long, default_value = "now")]
        from: String,
        /// End, exclusive.
        #[arg(long)]
        until: String,
        /// Own use limit.
        #[arg(long)]
        max_uses: Option<u64>,
        /// Further delegation levels allowed.
        #[arg(long, default_value_t = 0)]
        delegation_depth: u8,
    },
    /// Revoke a grant and everything delegated from it (grantor or dataset owner).
    #[command(
        after_help = "Example:\n  gongzhi tx revoke --grant 3 --reason 'investigation closed' --key operator.key"
    )]
    Revoke {
        /// Grant id.
        #[arg(long)]
        grant: u64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Record a use of a grant (its grantee).
    #[command(
        after_help = "Example:\n  gongzhi tx record-use --grant 3 --fields age,street --purpose elderly-care --key operator.key"
    )]
    RecordUse {
        /// Grant id.
        #[arg(long)]
        grant: u64,
        /// Fields read, comma-separated.
        #[arg(long)]
        fields: String,
        /// Purpose of the use.
        #[arg(long)]
        purpose: String,
        /// Hash (64 hex) of your own request record, for audit.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Award civility points to a resident (issuers).
    #[command(
        after_help = "Example:\n  gongzhi tx award --resident <64 hex> --reason garbage-sorting --points 5 --key operator.key"
    )]
    Award {
        /// Resident pseudonym (64 hex).
        #[arg(long)]
        resident: String,
        /// Catalogue reason code.
        #[arg(long)]
        reason: String,
        /// Points.
        #[arg(long)]
        points: u64,
    },
    /// Redeem a resident's points (service points).
    #[command(
        after_help = "Example:\n  gongzhi tx redeem --resident <64 hex> --points 5 --item 'rice 5kg' --key operator.key"
    )]
    Redeem {
        /// Resident pseudonym (64 hex).
        #[arg(long)]
        resident: String,
        /// Points.
        #[arg(long)]
        points: u64,
        /// What they buy.
        #[arg(long)]
        item: String,
    },
    /// Reverse one of your awards.
    #[command(
        after_help = "Example:\n  gongzhi tx reverse --record 4 --why 'entered twice' --key operator.key"
    )]
    Reverse {
        /// Award record id.
        #[arg(long)]
        record: u64,
        /// Why.
        #[arg(long)]
        why: String,
    },
    /// Propose a governance action (validator organisations), given as JSON.
    #[command(
        after_help = "Examples:\n  gongzhi tx propose --action '{\"SuspendOrg\":\"police-xicheng\"}' --key operator.key\n  \
        gongzhi tx propose --action '{\"SetPurpose\":{\"code\":\"flood-relief\",\"label\":\"Flood relief\"}}' --key operator.key\n\n\
        The JSON is the serde form of the ProposalAction enum (contracts/src/governance/proposals.rs)."
    )]
    Propose {
        /// The action as JSON.
        #[arg(long)]
        action: String,
    },
    /// Approve a governance proposal (validator organisations).
    #[command(after_help = "Example:\n  gongzhi tx approve --proposal 2 --key operator.key")]
    Approve {
        /// Proposal id.
        #[arg(long)]
        proposal: u64,
    },
}

fn sensitivity(text: &str) -> Result<Sensitivity> {
    Ok(match text {
        "public" => Sensitivity::Public,
        "internal" => Sensitivity::Internal,
        "sensitive" => Sensitivity::Sensitive,
        "personal" => Sensitivity::Personal,
        other => bail!("sensitivity {other:?}: use public, internal, sensitive or personal"),
    })
}

fn resident(text: &str) -> Result<ResidentId> {
    Ok(ResidentId(hex32(text, "--resident")?))
}

/// The contract call a command line describes; times relative to `now`.
pub fn build_call(command: &CallCommand, now: Timestamp) -> Result<Call> {
    let purposes = |text: &str| -> Vec<PurposeCode> {
        split_list(text)
            .iter()
            .map(|p| PurposeCode::from(p.as_str()))
            .collect()
    };
    Ok(match command {
        CallCommand::RegisterDataset { id, name, fields } => Call::RegisterDataset {
            id: id.as_str().into(),
            name: name.clone(),
            fields: fields
                .iter()
                .map(|f| {
                    let (name, level) = f.split_once(':').with_context(|| {
                        format!("--field {f:?}: write name:sensitivity, e.g. age:internal")
                    })?;
                    Ok(FieldSpec {
                        name: name.to_string(),
                        sensitivity: sensitivity(level)?,
                    })
                })
                .collect::<Result<_>>()?,
        },
        CallCommand::RequestAccess {
            dataset,
            fields,
            purpose,
            from,
            until,
            justification,
        } => Call::RequestAccess(AccessRequestArgs {
            dataset: dataset.as_str().into(),
            fields: split_list(fields),
            purpose: purpose.as_str().into(),
            valid_from: parse_time(from, now)?,
            valid_until: parse_time(until, now)?,
            justification: justification.clone(),
        }),
        CallCommand::ApproveRequest { request, terms } => Call::ApproveRequest {
            request: RequestId(*request),
            terms: terms.terms()?,
        },
        CallCommand::RejectRequest { request, reason } => Call::RejectRequest {
            request: RequestId(*request),
            reason: reason.clone(),
        },
        CallCommand::IssueGrant {
            grantee,
            dataset,
            fields,
            purposes: p,
            from,
            until,
            terms,
        } => Call::IssueGrant(NewGrant {
            grantee: grantee.as_str().into(),
            dataset: dataset.as_str().into(),
            fields: split_list(fields),
            purposes: purposes(p),
            valid_from: parse_time(from, now)?,
            valid_until: parse_time(until, now)?,
            terms: terms.terms()?,
            parent: None,
        }),
        CallCommand::CoApprove { grant } => Call::CoApproveGrant(GrantId(*grant)),
        CallCommand::Delegate {
            parent,
            grantee,
            fields,
            purposes: p,
            from,
            until,
            max_uses,
            delegation_depth,
        } => Call::DelegateGrant(Delegation {
            parent: GrantId(*parent),
            grantee: grantee.as_str().into(),
            fields: split_list(fields),
            purposes: purposes(p),
            valid_from: parse_time(from, now)?,
            valid_until: parse_time(until, now)?,
            max_uses: *max_uses,
            delegation_depth: *delegation_depth,
        }),
        CallCommand::Revoke { grant, reason } => Call::RevokeGrant {
            grant: GrantId(*grant),
            reason: reason.clone(),
        },
        CallCommand::RecordUse {
            grant,
            fields,
            purpose,
            reference,
        } => Call::RecordUse(UseRecord {
            grant: GrantId(*grant),
            fields: split_list(fields),
            purpose: purpose.as_str().into(),
            reference: reference
                .as_deref()
                .map(|r| hex32(r, "--reference").map(Hash))
                .transpose()?,
        }),
        CallCommand::Award {
            resident: r,
            reason,
            points,
        } => Call::Award {
            resident: resident(r)?,
            reason: reason.as_str().into(),
            points: *points,
        },
        CallCommand::Redeem {
            resident: r,
            points,
            item,
        } => Call::Redeem {
            resident: resident(r)?,
            points: *points,
            item: item.clone(),
        },
        CallCommand::Reverse { record, why } => Call::Reverse {
            record: RecordId(*record),
            why: why.clone(),
        },
        CallCommand::Propose { action } => {
            let action: ProposalAction = serde_json::from_str(action)
                .context("--action is not a ProposalAction in JSON (see the examples in --help)")?;
            Call::Propose(action)
        }
        CallCommand::Approve { proposal } => Call::Approve(ProposalId(*proposal)),
    })
}

/// What a successful call returned, for people.
pub fn describe_output(data: &[u8]) -> String {
    match CallOutput::from_data(data) {
        Ok(CallOutput::Done) | Err(_) => "done".into(),
        Ok(CallOutput::Proposal(p)) => format!(
            "{}: approved by {} of {} power{}",
            p.id,
            p.approved_power,
            p.total_power,
            if p.passed {
                " — passed and applied"
            } else {
                ""
            }
        ),
        Ok(CallOutput::Request(id)) => format!("created {id}"),
        Ok(CallOutput::Grant(id)) => format!("created {id}"),
        Ok(CallOutput::Revoked(n)) => format!("revoked {n} grant(s)"),
        Ok(CallOutput::Uses(n)) => format!("the grant has now {n} use(s)"),
        Ok(CallOutput::Record(id)) => format!("created {id}"),
    }
}

/// Run `gongzhi tx …`.
pub fn run(args: TxArgs) -> Result<()> {
    let key_path = args
        .key
        .clone()
        .context("--key is required: the operator key file of the organisation that signs")?;
    let (_, key) = keyfile::read_key(&key_path)?;
    runtime()?.block_on(async move {
        let call = build_call(&args.call, crate::driver::now())?;
        let offline = args.print_only && args.chain_id.is_some() && args.nonce.is_some();
        let mut client = if offline {
            None
        } else {
            Some(ApiClient::connect(&args.node).await?)
        };
        let chain_id = match (&args.chain_id, client.as_mut()) {
            (Some(id), _) => id.clone(),
            (None, Some(c)) => c.chain_id().await?,
            (None, None) => bail!("--chain-id is needed"),
        };
        let nonce = match (args.nonce, client.as_mut()) {
            (Some(n), _) => n,
            (None, Some(c)) => c.next_nonce(&key.public()).await?,
            (None, None) => bail!("--nonce is needed"),
        };
        let tx = call.sign(&key, &chain_id, nonce);
        if args.print_only {
            println!("{}", hex::encode(tx.encode()));
            return Ok(());
        }
        let Some(mut client) = client else {
            bail!("no node connection")
        };
        let response = client
            .ledger
            .submit_tx(SubmitTxRequest {
                tx: tx.encode(),
                wait_for_commit: !args.no_wait,
            })
            .await
            .map_err(status_error)
            .with_context(|| format!("{} (nonce {nonce}) was not accepted", call.name()))?
            .into_inner();
        println!(
            "tx {} ({}, signer {}, nonce {nonce})",
            hex::encode(&response.tx_hash),
            call.name(),
            key.public()
        );
        let Some(receipt) = response.receipt else {
            println!(
                "accepted; not waiting for the commit (query it with: gongzhi query tx {})",
                hex::encode(&response.tx_hash)
            );
            return Ok(());
        };
        if receipt.success {
            println!(
                "committed at height {}: {}",
                receipt.height,
                describe_output(&receipt.result)
            );
            Ok(())
        } else {
            bail!(
                "rejected at height {}: {} ({}): {}",
                receipt.height,
                receipt.error_name,
                receipt.error_code,
                receipt.error_message
            )
        }
    })
}
