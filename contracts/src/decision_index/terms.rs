//! A grant's terms pre-decoded for the [`CheckIndex`](crate::CheckIndex): purposes and fields
//! as sets of interned numbers, the remaining conditions as plain values, all inline so that
//! evaluating a candidate touches no heap string.
//!
//! Invariants:
//! - [`Terms::compile`] interns every purpose and field name of the grant, so a requested
//!   name that is not interned is covered by no grant;
//! - the sets are exact for a grant whose fields and purposes are strictly sorted (the
//!   contracts keep them so). For any other grant `regular` is false and the index evaluates
//!   the decoded record instead, so that the answer stays the same as
//!   [`evaluate_grant`](crate::decision::evaluate_grant)'s binary searches on any state.

use gongzhi_ledger::Timestamp;

use crate::decision::TermsView;
use crate::grants::Grant;
use crate::types::GrantId;
use gongzhi_ledger::fast_hash::FastMap;

/// A set of interned numbers: those below 64 as bits, the others sorted and distinct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NumberSet {
    low: u64,
    high: Box<[u32]>,
}

impl NumberSet {
    /// The set of `numbers` (any order, repeats allowed).
    pub(crate) fn of(numbers: impl IntoIterator<Item = u32>) -> NumberSet {
        let mut low = 0u64;
        let mut high = Vec::new();
        for n in numbers {
            if n < 64 {
                low |= 1 << n;
            } else {
                high.push(n);
            }
        }
        high.sort_unstable();
        high.dedup();
        NumberSet {
            low,
            high: high.into_boxed_slice(),
        }
    }

    /// Whether `n` is in the set.
    pub(crate) fn contains(&self, n: u32) -> bool {
        if n < 64 {
            self.low & (1 << n) != 0
        } else {
            self.high.binary_search(&n).is_ok()
        }
    }

    /// Whether every number of `other` is in the set.
    pub(crate) fn contains_all(&self, other: &NumberSet) -> bool {
        self.low & other.low == other.low
            && other
                .high
                .iter()
                .all(|n| self.high.binary_search(n).is_ok())
    }
}

/// The number of the next name interned into a table of `len` names. Numbers are never
/// reused; 2^32 names would not fit in memory anyway (saturating keeps this total).
pub(crate) fn next_number(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The number of `name` in a table of plain numbers, interning it if new.
pub(crate) fn intern(table: &mut FastMap<Box<str>, u32>, name: &str) -> u32 {
    if let Some(&number) = table.get(name) {
        return number;
    }
    let number = next_number(table.len());
    table.insert(name.into(), number);
    number
}

/// One grant's own terms, pre-decoded. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Terms {
    valid_from: Timestamp,
    valid_until: Timestamp,
    purposes: NumberSet,
    fields: NumberSet,
    revoked: bool,
    co_approved: bool,
    exhausted: bool,
    /// The parent grant, when delegated.
    pub(crate) parent: Option<GrantId>,
    /// Fields and purposes strictly sorted: the sets answer exactly as binary searches.
    pub(crate) regular: bool,
}

fn strictly_sorted<T: Ord>(items: &[T]) -> bool {
    items.windows(2).all(|pair| pair[0] < pair[1])
}

impl Terms {
    /// `grant`'s terms, numbering its purposes with `purpose_number` and its fields in
    /// `fields` (both intern new names).
    pub(crate) fn compile(
        grant: &Grant,
        mut purpose_number: impl FnMut(&str) -> u32,
        fields: &mut FastMap<Box<str>, u32>,
    ) -> Terms {
        Terms {
            valid_from: grant.valid_from,
            valid_until: grant.valid_until,
            purposes: NumberSet::of(grant.purposes.iter().map(|p| purpose_number(p.as_str()))),
            fields: NumberSet::of(grant.fields.iter().map(|f| intern(fields, f))),
            revoked: grant.revoked.is_some(),
            co_approved: grant.co_approved,
            exhausted: grant.max_uses.is_some_and(|max| grant.uses >= max),
            parent: grant.parent,
            regular: strictly_sorted(&grant.fields) && strictly_sorted(&grant.purposes),
        }
    }

    /// These terms against `request`, for [`evaluate_terms`](crate::decision::evaluate_terms).
    pub(crate) fn against<'a>(&'a self, request: &'a Request) -> TermsAgainst<'a> {
        TermsAgainst {
            terms: self,
            request,
        }
    }
}

/// A request in the index's numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The purpose's number (`None`: not interned, so covered by no grant).
    pub(crate) purpose: Option<u32>,
    /// The fields' numbers (`None`: a field is not interned, so covered by no grant).
    pub(crate) fields: Option<NumberSet>,
}

/// [`Terms`] against one [`Request`].
#[derive(Debug)]
pub(crate) struct TermsAgainst<'a> {
    terms: &'a Terms,
    request: &'a Request,
}

impl TermsView for TermsAgainst<'_> {
    fn revoked(&self) -> bool {
        self.terms.revoked
    }

    fn covers_purpose(&self) -> bool {
        self.request
            .purpose
            .is_some_and(|n| self.terms.purposes.contains(n))
    }

    fn covers_fields(&self) -> bool {
        self.request
            .fields
            .as_ref()
            .is_some_and(|fields| self.terms.fields.contains_all(fields))
    }

    fn co_approved(&self) -> bool {
        self.terms.co_approved
    }

    fn valid_from(&self) -> Timestamp {
        self.terms.valid_from
    }

    fn valid_until(&self) -> Timestamp {
        self.terms.valid_until
    }

    fn exhausted(&self) -> bool {
        self.terms.exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_sets_cover_low_and_high_numbers() {
        let set = NumberSet::of([3, 70, 64, 3, 1000]);
        for n in [3, 64, 70, 1000] {
            assert!(set.contains(n), "{n}");
        }
        for n in [0, 63, 65, 999] {
            assert!(!set.contains(n), "{n}");
        }
        assert!(set.contains_all(&NumberSet::of([70, 3])));
        assert!(set.contains_all(&NumberSet::of([])));
        assert!(!set.contains_all(&NumberSet::of([3, 4])));
        assert!(!set.contains_all(&NumberSet::of([3, 71])));
    }
}
