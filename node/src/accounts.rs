//! Signer and member lookups on the latest committed state, for the mempool and peer gating.

use gongzhi_contracts::governance::{self, Organisation};
use gongzhi_ledger::{PublicKey, StateReader};

use crate::chain::Chain;
use crate::mempool::AccountView;

/// Reads signers' nonces and membership from the chain's latest state.
#[derive(Debug, Clone)]
pub struct LatestAccounts {
    chain: Chain,
}

impl LatestAccounts {
    /// A view of `chain`.
    pub fn new(chain: Chain) -> LatestAccounts {
        LatestAccounts { chain }
    }
}

/// The signer's last nonce when it is an operator key of an active organisation.
pub fn committed_nonce<S: StateReader + ?Sized>(state: &S, signer: &PublicKey) -> Option<u64> {
    let org = governance::org_of_signer(state, signer).ok().flatten()?;
    let org = governance::get_org(state, &org).ok().flatten()?;
    if !org.is_active() {
        return None;
    }
    gongzhi_contracts::execute::nonce(state, signer).ok()
}

impl AccountView for LatestAccounts {
    fn committed_nonce(&self, signer: &PublicKey) -> Option<u64> {
        let state = self.chain.store().latest_state().ok()?;
        committed_nonce(&state, signer)
    }
}

/// Keys whose nodes may connect: every active organisation's validator and node keys.
pub fn member_node_keys<S: StateReader + ?Sized>(state: &S) -> anyhow::Result<Vec<PublicKey>> {
    let orgs: Vec<Organisation> = gongzhi_contracts::query::list_orgs(state)?;
    let mut keys = Vec::new();
    for org in orgs.iter().filter(|o| o.is_active()) {
        if let Some(v) = &org.validator {
            keys.push(v.key);
        }
        keys.extend(org.node_keys.iter().copied());
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}
