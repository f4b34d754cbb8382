//! The state key layout: every key the contracts read or write is built here.
//!
//! Keys are readable byte strings: a prefix naming the table, then `/`-separated parts. Slug
//! ids cannot contain `/` ([`crate::types::is_slug`]), sequential ids are 8 bytes big-endian,
//! public keys and resident ids are their 32 raw bytes (fixed length, so unambiguous).
//! Only point reads exist on the state trait, so every list is an explicit index: one key
//! holding a small ordered `Vec` (orgs, datasets, purposes, reasons), or, for every
//! append-only list, a chunked list ([`crate::types::ChunkedHead`]): a head key holding the
//! newest, open chunk and the number of sealed chunks, and one key per sealed chunk (a full
//! `Vec` of [`CHUNK`] entries). The chunked lists are:
//! - the grants per (grantee, dataset) that every decision reads: `access/<grantee>/<dataset>`,
//!   chunks at `access/<grantee>/<dataset>/<c:be>`;
//! - the paged lists: `list/<name>/<owner>`, chunks at `list/<name>/<owner>/<c:be>`;
//! - a resident's history, whose head shares a value with the balance because every civility
//!   record changes both: `resident/<id>`, chunks at `resident/<id>/<c:be>`;
//! - the grants delegated from a grant: `grant-children/<id:be>`, chunks at
//!   `grant-children/<id:be>/<c:be>`.
//!
//! Appending rewrites the head (and, once per [`CHUNK`] entries, seals it), never the whole
//! list; a receipt proves a few chunks, not one key per entry.

use gongzhi_ledger::PublicKey;

use crate::types::{
    DatasetId, GrantId, OrgId, ProposalId, PurposeCode, ReasonCode, RecordId, RequestId, ResidentId,
};

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(b'/');
        }
        key.extend_from_slice(part);
    }
    key
}

/// Table prefixes the [`crate::decision_index::CheckIndex`] parses back out of changed keys
/// (each is followed by `/` and the id).
pub(crate) mod prefix {
    /// `org-status/<org>`.
    pub const ORG_STATUS: &[u8] = b"org-status";
    /// `purpose/<code>`.
    pub const PURPOSE: &[u8] = b"purpose";
    /// `dataset/<id>`.
    pub const DATASET: &[u8] = b"dataset";
    /// `grant/<id:be>`.
    pub const GRANT: &[u8] = b"grant";
    /// `access/<grantee>/<dataset>` and `access/<grantee>/<dataset>/<chunk:be>`.
    pub const ACCESS: &[u8] = b"access";
}

/// Governance parameters.
pub const PARAMETERS: &[u8] = b"params";
/// Chain id and genesis time.
pub const CHAIN_INFO: &[u8] = b"chain";
/// Ordered list of all organisation ids (admission order).
pub const ORG_LIST: &[u8] = b"orgs";
/// Ordered list of dataset ids (registration order).
pub const DATASET_LIST: &[u8] = b"datasets";
/// Sorted list of purpose codes.
pub const PURPOSE_LIST: &[u8] = b"purposes";
/// Sorted list of reason codes.
pub const REASON_LIST: &[u8] = b"reasons";
/// Validator set that commits the next block.
pub const VALIDATORS_NEXT: &[u8] = b"validators/next";
/// Validator set that commits the block after the next one.
pub const VALIDATORS_AFTER: &[u8] = b"validators/after";

/// Counter of a sequential id kind.
pub fn counter(name: &str) -> Vec<u8> {
    join(&[b"counter", name.as_bytes()])
}

/// An organisation record.
pub fn org(id: &OrgId) -> Vec<u8> {
    join(&[b"org", id.0.as_bytes()])
}

/// An organisation's status alone (one byte of postcard; read by every decision).
pub fn org_status(id: &OrgId) -> Vec<u8> {
    join(&[prefix::ORG_STATUS, id.0.as_bytes()])
}

/// Which organisation an operator key belongs to.
pub fn signer(key: &PublicKey) -> Vec<u8> {
    join(&[b"signer", &key.0])
}

/// A signer's last used nonce.
pub fn nonce(key: &PublicKey) -> Vec<u8> {
    join(&[b"nonce", &key.0])
}

/// An issuer's quota use in the current period.
pub fn quota_used(org: &OrgId) -> Vec<u8> {
    join(&[b"quota-used", org.0.as_bytes()])
}

/// A proposal.
pub fn proposal(id: ProposalId) -> Vec<u8> {
    join(&[b"proposal", &id.0.to_be_bytes()])
}

/// A purpose of the taxonomy.
pub fn purpose(code: &PurposeCode) -> Vec<u8> {
    join(&[prefix::PURPOSE, code.0.as_bytes()])
}

/// A reason of the civility catalogue.
pub fn reason(code: &ReasonCode) -> Vec<u8> {
    join(&[b"reason", code.0.as_bytes()])
}

/// A dataset.
pub fn dataset(id: &DatasetId) -> Vec<u8> {
    join(&[prefix::DATASET, id.0.as_bytes()])
}

/// An access request.
pub fn request(id: RequestId) -> Vec<u8> {
    join(&[b"request", &id.0.to_be_bytes()])
}

/// A grant.
pub fn grant(id: GrantId) -> Vec<u8> {
    join(&[prefix::GRANT, &id.0.to_be_bytes()])
}

/// The head of the list of grants delegated directly from grant `id` (a
/// [`crate::types::ChunkedHead`] of child ids, ascending).
pub fn grant_children(id: GrantId) -> Vec<u8> {
    join(&[b"grant-children", &id.0.to_be_bytes()])
}

/// Sealed chunk `chunk` of grant `id`'s children: [`CHUNK`] child ids, ascending.
pub fn grant_children_chunk(id: GrantId, chunk: u64) -> Vec<u8> {
    join(&[b"grant-children", &id.0.to_be_bytes(), &chunk.to_be_bytes()])
}

/// Entries in a sealed chunk of a chunked list (its head's open chunk holds fewer).
pub const CHUNK: usize = 64;

/// The head of the access index of (`grantee`, `dataset`), which the decision function reads
/// first: an [`AccessHead`](crate::grants::AccessHead) (sealed chunk count, open chunk).
pub fn access_index(grantee: &OrgId, dataset: &DatasetId) -> Vec<u8> {
    join(&[prefix::ACCESS, grantee.0.as_bytes(), dataset.0.as_bytes()])
}

/// Sealed chunk `chunk` of the access index of (`grantee`, `dataset`): a `Vec<GrantId>` of
/// [`CHUNK`] ids, ascending; chunk `c` holds the list's entries `c·CHUNK ..`.
pub fn access_chunk(grantee: &OrgId, dataset: &DatasetId, chunk: u64) -> Vec<u8> {
    join(&[
        prefix::ACCESS,
        grantee.0.as_bytes(),
        dataset.0.as_bytes(),
        &chunk.to_be_bytes(),
    ])
}

/// A resident's account: balance and the head of their history (a
/// [`crate::civility::ResidentAccount`]), changed together by every civility record.
pub fn resident(resident: &ResidentId) -> Vec<u8> {
    join(&[b"resident", &resident.0])
}

/// Sealed chunk `chunk` of a resident's history: [`CHUNK`] record ids, oldest first (the
/// resident id is 32 raw bytes, so the chunk number after it is unambiguous).
pub fn history_chunk(resident: &ResidentId, chunk: u64) -> Vec<u8> {
    join(&[b"resident", &resident.0, &chunk.to_be_bytes()])
}

/// A civility record.
pub fn record(id: RecordId) -> Vec<u8> {
    join(&[b"record", &id.0.to_be_bytes()])
}

/// Paged lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListName {
    /// Grants by grantee org.
    GrantsByGrantee,
    /// Grants by grantor org.
    GrantsByGrantor,
    /// Grants by dataset.
    GrantsByDataset,
    /// Access requests by dataset (for the owner's inbox).
    RequestsByDataset,
}

impl ListName {
    fn prefix(self) -> &'static [u8] {
        match self {
            ListName::GrantsByGrantee => b"grantee",
            ListName::GrantsByGrantor => b"grantor",
            ListName::GrantsByDataset => b"dataset-grants",
            ListName::RequestsByDataset => b"dataset-requests",
        }
    }
}

/// The head of a paged list: a [`crate::types::ChunkedHead`] (sealed chunk count, open chunk).
pub fn list_head(name: ListName, owner: &[u8]) -> Vec<u8> {
    join(&[b"list", name.prefix(), owner])
}

/// Sealed chunk `chunk` of a paged list: a `Vec` of [`CHUNK`] entries, the list's entries
/// `chunk·CHUNK ..` in append order.
pub fn list_chunk(name: ListName, owner: &[u8], chunk: u64) -> Vec<u8> {
    join(&[b"list", name.prefix(), owner, &chunk.to_be_bytes()])
}

/// A readable rendering of a key for error messages.
pub fn display(key: &[u8]) -> String {
    key.iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}
