//! Exact winner determination for combinatorial auctions.
//!
//! Given bids on bundles (item bitmasks), pick the set of bids with pairwise disjoint
//! bundles whose total is largest. This is a maximum-weight independent set on the
//! "bundles overlap" graph of the bids, NP-hard in general, so it is solved exactly for
//! at most [`MAX_COMBINATORIAL_BIDS`] bids and refused beyond.
//!
//! # Method
//!
//! A memoised search over the set of bids still *available* (not yet decided and not in
//! conflict with a chosen bid), as a `u32` bitmask of bid indices. From a set `A`, the
//! earliest bid `i` of `A` is either left out (`best(A \ {i})`) or taken
//! (`amount_i + best(A \ conflicts(i))`). Every state whose earliest bid is `i` is a
//! subset of bids `i..n` that contains `i`, reached by decisions on bids `0..i`, so
//! there are at most `min(2^i, 2^(n-1-i))` of them: at most 8 190 memoised states in
//! all for `n = 24` (the tests check this bound on dense random cases).
//!
//! # Ties
//!
//! Among optimal sets, the chosen one is the set that contains the earliest bid on which
//! two optimal sets disagree: for optimal sets `S != T`, `S` is preferred iff the lowest
//! index of their symmetric difference is in `S`. Equivalently, bids are considered in
//! the order they were placed and each is taken whenever some optimal set containing it
//! agrees with the decisions made so far. The search implements this by taking bid `i`
//! whenever taking it is *at least as good as* leaving it out.

use hashbrown::HashMap;

use super::{Amount, AuctionError, Bid, MAX_COMBINATORIAL_BIDS};

/// The winning set of a combinatorial auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Allocation {
    /// Bit `i` set: `bids[i]` wins.
    pub chosen: u32,
    /// Sum of the chosen amounts.
    pub total: Amount,
}

/// Finds the best set of non-overlapping bids, with the tie rule of the
/// [module docs](self). `bids` are in the order they were placed; their `bidder` is
/// ignored. A bid with an empty bundle overlaps nothing.
///
/// Errors: more than [`MAX_COMBINATORIAL_BIDS`] bids ([`AuctionError::TooManyBids`]), or
/// a total that overflows [`Amount`] ([`AuctionError::Overflow`]).
///
/// ```
/// use mabeam_shards::auction::{combinatorial::best_allocation, Bid};
///
/// let bids = [
///     Bid { bidder: 1, amount: 10, bundle: 0b011 },
///     Bid { bidder: 2, amount: 6, bundle: 0b001 },
///     Bid { bidder: 3, amount: 6, bundle: 0b110 },
/// ];
/// let best = best_allocation(&bids)?;
/// assert_eq!((best.chosen, best.total), (0b110, 12)); // bids 1 and 2
/// # Ok::<(), mabeam_shards::auction::AuctionError>(())
/// ```
pub fn best_allocation(bids: &[Bid]) -> Result<Allocation, AuctionError> {
    if bids.len() > MAX_COMBINATORIAL_BIDS {
        return Err(AuctionError::TooManyBids {
            limit: MAX_COMBINATORIAL_BIDS,
        });
    }
    let n = bids.len();
    let mut conflicts = [0u32; MAX_COMBINATORIAL_BIDS];
    for (i, a) in bids.iter().enumerate() {
        conflicts[i] |= 1 << i;
        for (j, b) in bids.iter().enumerate().skip(i + 1) {
            if a.bundle & b.bundle != 0 {
                conflicts[i] |= 1 << j;
                conflicts[j] |= 1 << i;
            }
        }
    }
    let mut search = Search {
        bids,
        conflicts: &conflicts[..n],
        memo: HashMap::new(),
    };
    search.run()
}

/// Most states the search memoises for `n` bids: `sum over i of min(2^i, 2^(n-1-i))`.
#[cfg(test)]
fn state_bound(n: usize) -> usize {
    (0..n).map(|i| 1usize << i.min(n - 1 - i)).sum()
}

struct Search<'a> {
    bids: &'a [Bid],
    conflicts: &'a [u32],
    memo: HashMap<u32, Amount>,
}

impl Search<'_> {
    /// The best allocation, ties by the earliest differing bid.
    fn run(&mut self) -> Result<Allocation, AuctionError> {
        let all: u32 = (1u32 << self.bids.len()) - 1; // at most 24 bids
        let total = self.best(all)?;

        let mut available = all;
        let mut chosen = 0u32;
        while available != 0 {
            let i = available.trailing_zeros() as usize;
            let (take, leave) = self.options(available, i)?;
            if take >= leave {
                chosen |= 1 << i;
                available &= !self.conflicts[i];
            } else {
                available &= !(1 << i);
            }
        }
        Ok(Allocation { chosen, total })
    }

    /// Best total using only the bids in `available`.
    fn best(&mut self, available: u32) -> Result<Amount, AuctionError> {
        if available == 0 {
            return Ok(0);
        }
        if let Some(&v) = self.memo.get(&available) {
            return Ok(v);
        }
        let i = available.trailing_zeros() as usize;
        let (take, leave) = self.options(available, i)?;
        let best = take.max(leave);
        self.memo.insert(available, best);
        Ok(best)
    }

    /// Best totals from `available` when its earliest bid `i` is taken / left out.
    fn options(&mut self, available: u32, i: usize) -> Result<(Amount, Amount), AuctionError> {
        let take_rest = self.best(available & !self.conflicts[i])?;
        let take = self.bids[i]
            .amount
            .checked_add(take_rest)
            .ok_or(AuctionError::Overflow)?;
        let leave = self.best(available & !(1 << i))?;
        Ok((take, leave))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// xorshift64*: a tiny deterministic generator for test cases.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Tries every subset; keeps the best total, ties by the earliest differing bid.
    fn brute_force(bids: &[Bid]) -> Allocation {
        let n = bids.len();
        let mut best = Allocation {
            chosen: 0,
            total: 0,
        };
        for set in 0u32..(1 << n) {
            let mut used = 0u64;
            let mut total = 0u64;
            let mut feasible = true;
            for (i, bid) in bids.iter().enumerate() {
                if set & (1 << i) != 0 {
                    if used & bid.bundle != 0 {
                        feasible = false;
                        break;
                    }
                    used |= bid.bundle;
                    total += bid.amount;
                }
            }
            if !feasible {
                continue;
            }
            let diff = set ^ best.chosen;
            let preferred = diff != 0 && set & (1 << diff.trailing_zeros()) != 0;
            if total > best.total || (total == best.total && preferred) {
                best = Allocation { chosen: set, total };
            }
        }
        best
    }

    fn bid(amount: Amount, bundle: u64) -> Bid {
        Bid {
            bidder: 1,
            amount,
            bundle,
        }
    }

    #[test]
    fn matches_brute_force_on_random_cases() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for case in 0..400 {
            let items = 1 + rng.below(8) as u32;
            let n = rng.below(13) as usize;
            // Small amounts make ties common, so the tie rule is exercised too.
            let max_amount = if case % 2 == 0 { 6 } else { 1_000 };
            let bids: Vec<Bid> = (0..n)
                .map(|_| {
                    let bundle = 1 + rng.below((1 << items) - 1);
                    bid(1 + rng.below(max_amount), bundle)
                })
                .collect();
            let expected = brute_force(&bids);
            let got = best_allocation(&bids).unwrap();
            assert_eq!(got, expected, "case {case}: {bids:?}");
        }
    }

    #[test]
    fn ties_go_to_the_earliest_bid() {
        // Same total either way: {0} = 10 versus {1, 2} = 10; bid 0 came first.
        let bids = [bid(10, 0b11), bid(5, 0b01), bid(5, 0b10)];
        assert_eq!(best_allocation(&bids).unwrap().chosen, 0b001);
        // Reversed order: the pair came first.
        let bids = [bid(5, 0b01), bid(5, 0b10), bid(10, 0b11)];
        assert_eq!(best_allocation(&bids).unwrap().chosen, 0b011);
        // Identical bundles and amounts: the earliest.
        let bids = [bid(7, 0b1), bid(7, 0b1), bid(7, 0b1)];
        assert_eq!(best_allocation(&bids).unwrap().chosen, 0b001);
    }

    #[test]
    fn empty_and_disjoint() {
        assert_eq!(
            best_allocation(&[]).unwrap(),
            Allocation {
                chosen: 0,
                total: 0
            }
        );
        let bids: Vec<Bid> = (0..24).map(|i| bid(i + 1, 1 << i)).collect();
        let best = best_allocation(&bids).unwrap();
        assert_eq!(best.chosen, (1 << 24) - 1);
        assert_eq!(best.total, (1..=24).sum::<u64>());
    }

    #[test]
    fn worst_case_twenty_four_bids_is_exact() {
        // 24 bids over 64 items with heavy overlap: finishes (bounded states) and agrees
        // with the greedy lower bound.
        let mut rng = XorShift(42);
        let bids: Vec<Bid> = (0..24)
            .map(|_| {
                bid(
                    1 + rng.below(1_000_000),
                    rng.next() & rng.next() | 1 << rng.below(64),
                )
            })
            .collect();
        let best = best_allocation(&bids).unwrap();
        let mut used = 0;
        let mut total = 0;
        for (i, b) in bids.iter().enumerate() {
            if best.chosen & (1 << i) != 0 {
                assert_eq!(used & b.bundle, 0, "chosen bundles overlap");
                used |= b.bundle;
                total += b.amount;
            }
        }
        assert_eq!(total, best.total);
        assert!(best.total >= bids.iter().map(|b| b.amount).max().unwrap());
    }

    #[test]
    fn memoised_states_stay_within_the_bound() {
        assert_eq!(state_bound(24), 8_190);
        let mut rng = XorShift(7);
        for case in 0..40 {
            // From sparse to dense overlap over 64 items.
            let bits = 1 + case % 8;
            let bids: Vec<Bid> = (0..24)
                .map(|_| {
                    let bundle = (0..bits).fold(0u64, |m, _| m | 1 << rng.below(64));
                    bid(1 + rng.below(100), bundle)
                })
                .collect();
            let mut conflicts = [0u32; MAX_COMBINATORIAL_BIDS];
            for (i, a) in bids.iter().enumerate() {
                for (j, b) in bids.iter().enumerate() {
                    if i == j || a.bundle & b.bundle != 0 {
                        conflicts[i] |= 1 << j;
                    }
                }
            }
            let mut search = Search {
                bids: &bids,
                conflicts: &conflicts[..24],
                memo: HashMap::new(),
            };
            let allocation = search.run().unwrap();
            assert!(
                search.memo.len() <= state_bound(24),
                "case {case}: {}",
                search.memo.len()
            );
            assert_eq!(allocation, best_allocation(&bids).unwrap());
        }
    }

    #[test]
    fn refuses_too_many_bids_and_overflow() {
        let bids: Vec<Bid> = (0..25).map(|i| bid(1, 1 << i)).collect();
        assert_eq!(
            best_allocation(&bids),
            Err(AuctionError::TooManyBids { limit: 24 })
        );
        let bids = [bid(u64::MAX, 0b01), bid(1, 0b10)];
        assert_eq!(best_allocation(&bids), Err(AuctionError::Overflow));
    }
}
