//! Signer and member lookups on the latest committed state, for the mempool and peer gating.

use gongzhi_contracts::governance::{self, OrgStatus, Organisation};
use gongzhi_ledger::state::ReadCache;
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

/// The signer's last nonce when it is an operator key of an active organisation. Reads the
/// organisation's status key, not its whole record (which holds every operator key).
pub fn committed_nonce<S: StateReader + ?Sized>(state: &S, signer: &PublicKey) -> Option<u64> {
    let org = governance::org_of_signer(state, signer).ok().flatten()?;
    let status = governance::org_status(state, &org).ok().flatten()?;
    if status != OrgStatus::Active {
        return None;
    }
    gongzhi_contracts::execute::nonce(state, signer).ok()
}

impl AccountView for LatestAccounts {
    fn committed_nonce(&self, signer: &PublicKey) -> Option<u64> {
        let state = self.chain.store().latest_state().ok()?;
        committed_nonce(&state, signer)
    }

    /// One snapshot for all, and each organisation's status read once (a block's signers
    /// share a few organisations).
    fn committed_nonces(&self, signers: &[PublicKey]) -> Vec<Option<u64>> {
        let Ok(state) = self.chain.store().latest_state() else {
            return vec![None; signers.len()];
        };
        let state = ReadCache::new(state);
        signers.iter().map(|s| committed_nonce(&state, s)).collect()
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

#[cfg(test)]
mod tests {
    use gongzhi_contracts::{genesis_changes, keys, OrgId};
    use gongzhi_ledger::{codec, Keypair, MemoryState};

    use super::*;
    use crate::audit::fixture::{demo_genesis, operator_key};

    #[test]
    fn a_signer_has_a_nonce_only_while_its_organisation_is_active() {
        let changes = genesis_changes(&demo_genesis()).expect("the demo genesis is valid");
        let mut state: MemoryState = changes
            .into_iter()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        let member = operator_key("yuetan-street").public();
        assert_eq!(committed_nonce(&state, &member), Some(0));
        let stranger = Keypair::from_secret([9; 32]).public();
        assert_eq!(committed_nonce(&state, &stranger), None);

        state.insert(keys::nonce(&member), codec::to_bytes(&7u64));
        assert_eq!(committed_nonce(&state, &member), Some(7));
        // Governance suspends the organisation: its status key is what the check reads.
        state.insert(
            keys::org_status(&OrgId::from("yuetan-street")),
            codec::to_bytes(&OrgStatus::Suspended),
        );
        assert_eq!(committed_nonce(&state, &member), None);
    }

    #[test]
    fn nonces_read_together_match_nonces_read_alone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let chain = Chain::open(dir.path(), &demo_genesis())?;
        let accounts = LatestAccounts::new(chain);
        let signers = [
            operator_key("yuetan-street").public(),
            Keypair::from_secret([9; 32]).public(),
            operator_key("zhanlan-street").public(),
            operator_key("yuetan-street").public(),
        ];
        let together = accounts.committed_nonces(&signers);
        let alone: Vec<Option<u64>> = signers
            .iter()
            .map(|s| accounts.committed_nonce(s))
            .collect();
        assert_eq!(together, alone);
        assert_eq!(together, vec![Some(0), None, Some(0), Some(0)]);
        Ok(())
    }
}
