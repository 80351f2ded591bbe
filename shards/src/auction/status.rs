//! The public, fixed-size view of an auction ([`AuctionStatus`]) and its word encoding.

use std::fmt;

use super::{Amount, AuctionId, KindTag};

/// Where an auction is in its life.
///
/// The discriminants are the values [`AuctionStatus::to_words`] stores (0 is unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum AuctionState {
    /// Taking bids.
    Open = 1,
    /// Ended by a close, a closing bid, or a deadline with a winner.
    Closed = 2,
    /// Cancelled before any bid.
    Cancelled = 3,
    /// The deadline came with no qualifying bid.
    Expired = 4,
}

impl AuctionState {
    /// The state stored as `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => AuctionState::Open,
            2 => AuctionState::Closed,
            3 => AuctionState::Cancelled,
            4 => AuctionState::Expired,
            _ => return None,
        })
    }
}

impl fmt::Display for AuctionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuctionState::Open => "open",
            AuctionState::Closed => "closed",
            AuctionState::Cancelled => "cancelled",
            AuctionState::Expired => "expired",
        })
    }
}

/// Number of `u64` words of an encoded [`AuctionStatus`].
pub const STATUS_WORDS: usize = 11;

const FLAG_PRICE: u64 = 1;
const FLAG_MIN_BID: u64 = 1 << 1;
const FLAG_LEADER: u64 = 1 << 2;
const FLAG_WINNER: u64 = 1 << 3;
const FLAG_DEADLINE: u64 = 1 << 4;
const FLAG_CLOSED_AT: u64 = 1 << 5;
const ALL_FLAGS: u64 = (1 << 6) - 1;

/// The public view of an auction at a moment: what the engine publishes for readers.
///
/// Sealed kinds (sealed first-price, Vickrey, combinatorial) show no amount and no
/// leader while open, only the bid count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuctionStatus {
    /// The auction.
    pub id: AuctionId,
    /// Its kind.
    pub kind: KindTag,
    /// Its state.
    pub state: AuctionState,
    /// The spec's category.
    pub category: u32,
    /// The seller.
    pub seller: u64,
    /// When it was created.
    pub created_at: u64,
    /// Its deadline, if any.
    pub deadline: Option<u64>,
    /// Bids accepted so far.
    pub bid_count: u32,
    /// Open: the highest bid (English, `None` before the first), the clock price at the
    /// status's `now` (Dutch), `None` (sealed kinds). Ended: what the winner pays (the
    /// total for combinatorial), `None` with no winner.
    pub price: Option<Amount>,
    /// Open: the lowest bid that would be accepted now (`None` if it overflows
    /// [`Amount`]: English at the top of the range). Ended: `None`.
    pub min_bid: Option<Amount>,
    /// Open English: the current highest bidder. Other kinds while open: `None`.
    /// Ended: the winner.
    pub leader: Option<u64>,
    /// Ended with a sale: the winner (combinatorial: the bidder of the earliest winning
    /// bid). Otherwise `None`.
    pub winner: Option<u64>,
    /// Number of winning bids: 0 (no winner or still open), 1, or for combinatorial up
    /// to [`MAX_COMBINATORIAL_BIDS`](super::MAX_COMBINATORIAL_BIDS).
    pub winning_bids: u8,
    /// When it ended, if it has.
    pub closed_at: Option<u64>,
}

impl AuctionStatus {
    /// Encodes the status as fixed-size words (for a seqlock slot).
    ///
    /// Layout: `[id, kind | state << 8 | flags << 16 | winning_bids << 24 | category << 32,
    /// bid_count, price, min_bid, leader, winner, deadline, seller, created_at,
    /// closed_at]`; a flag bit marks each `Some`, and a `None` field is stored as 0.
    ///
    /// ```
    /// use mabeam_shards::auction::{Auction, AuctionId, AuctionKind, AuctionSpec, AuctionStatus};
    ///
    /// let spec = AuctionSpec {
    ///     kind: AuctionKind::Vickrey { reserve: 5 },
    ///     seller: 1, category: 3, deadline: Some(100), buy_now: None,
    /// };
    /// let status = Auction::new(AuctionId::new(0, 9), spec, 0)?.status(0);
    /// assert_eq!(AuctionStatus::from_words(&status.to_words()), Some(status));
    /// # Ok::<(), mabeam_shards::auction::AuctionError>(())
    /// ```
    pub fn to_words(&self) -> [u64; STATUS_WORDS] {
        fn opt(flags: &mut u64, flag: u64, value: Option<u64>) -> u64 {
            match value {
                Some(v) => {
                    *flags |= flag;
                    v
                }
                None => 0,
            }
        }
        let mut flags = 0;
        let price = opt(&mut flags, FLAG_PRICE, self.price);
        let min_bid = opt(&mut flags, FLAG_MIN_BID, self.min_bid);
        let leader = opt(&mut flags, FLAG_LEADER, self.leader);
        let winner = opt(&mut flags, FLAG_WINNER, self.winner);
        let deadline = opt(&mut flags, FLAG_DEADLINE, self.deadline);
        let closed_at = opt(&mut flags, FLAG_CLOSED_AT, self.closed_at);
        let header = self.kind as u64
            | (self.state as u64) << 8
            | flags << 16
            | u64::from(self.winning_bids) << 24
            | u64::from(self.category) << 32;
        [
            self.id.to_raw(),
            header,
            u64::from(self.bid_count),
            price,
            min_bid,
            leader,
            winner,
            deadline,
            self.seller,
            self.created_at,
            closed_at,
        ]
    }

    /// Decodes words written by [`to_words`](Self::to_words). Returns `None` for words
    /// that no status encodes (an unknown kind or state, unknown flags, a count beyond
    /// `u32`, or a non-zero absent field), in particular for an all-zero record.
    #[inline]
    pub fn from_words(words: &[u64; STATUS_WORDS]) -> Option<Self> {
        let header = words[1];
        let kind = KindTag::from_code((header & 0xff) as u8)?;
        let state = AuctionState::from_code((header >> 8 & 0xff) as u8)?;
        let flags = header >> 16 & 0xff;
        if flags & !ALL_FLAGS != 0 {
            return None;
        }
        let winning_bids = (header >> 24 & 0xff) as u8;
        let category = (header >> 32) as u32;
        let bid_count = u32::try_from(words[2]).ok()?;
        let opt = |flag: u64, word: u64| -> Result<Option<u64>, ()> {
            match (flags & flag != 0, word) {
                (true, w) => Ok(Some(w)),
                (false, 0) => Ok(None),
                (false, _) => Err(()),
            }
        };
        Some(AuctionStatus {
            id: AuctionId::from_raw(words[0]),
            kind,
            state,
            category,
            seller: words[8],
            created_at: words[9],
            deadline: opt(FLAG_DEADLINE, words[7]).ok()?,
            bid_count,
            price: opt(FLAG_PRICE, words[3]).ok()?,
            min_bid: opt(FLAG_MIN_BID, words[4]).ok()?,
            leader: opt(FLAG_LEADER, words[5]).ok()?,
            winner: opt(FLAG_WINNER, words[6]).ok()?,
            winning_bids,
            closed_at: opt(FLAG_CLOSED_AT, words[10]).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuctionStatus {
        AuctionStatus {
            id: AuctionId::from_raw(u64::MAX),
            kind: KindTag::Combinatorial,
            state: AuctionState::Closed,
            category: u32::MAX,
            seller: 7,
            created_at: 11,
            deadline: Some(0),
            bid_count: u32::MAX,
            price: Some(u64::MAX),
            min_bid: None,
            leader: Some(0),
            winner: Some(3),
            winning_bids: 24,
            closed_at: Some(99),
        }
    }

    #[test]
    fn words_round_trip_every_kind_state_and_option() {
        let kinds = [
            KindTag::English,
            KindTag::Dutch,
            KindTag::SealedFirstPrice,
            KindTag::Vickrey,
            KindTag::Combinatorial,
        ];
        let states = [
            AuctionState::Open,
            AuctionState::Closed,
            AuctionState::Cancelled,
            AuctionState::Expired,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            for (j, state) in states.into_iter().enumerate() {
                for mask in 0..64u32 {
                    let pick = |bit: u32, v: u64| (mask & (1 << bit) != 0).then_some(v);
                    let status = AuctionStatus {
                        kind,
                        state,
                        category: (i * 10 + j) as u32,
                        price: pick(0, 0),
                        min_bid: pick(1, 12),
                        leader: pick(2, u64::MAX),
                        winner: pick(3, 5),
                        deadline: pick(4, 1 << 40),
                        closed_at: pick(5, 0),
                        ..sample()
                    };
                    assert_eq!(AuctionStatus::from_words(&status.to_words()), Some(status));
                }
            }
        }
    }

    #[test]
    fn garbage_words_decode_to_none() {
        assert_eq!(AuctionStatus::from_words(&[0; STATUS_WORDS]), None);
        let good = sample().to_words();
        let mut bad_kind = good;
        bad_kind[1] = bad_kind[1] & !0xff | 9;
        assert_eq!(AuctionStatus::from_words(&bad_kind), None);
        let mut bad_state = good;
        bad_state[1] &= !0xff00;
        assert_eq!(AuctionStatus::from_words(&bad_state), None);
        let mut bad_flags = good;
        bad_flags[1] |= 0x80 << 16;
        assert_eq!(AuctionStatus::from_words(&bad_flags), None);
        let mut bad_count = good;
        bad_count[2] = 1 << 32;
        assert_eq!(AuctionStatus::from_words(&bad_count), None);
        let mut stray = good;
        stray[4] = 1; // min_bid is None in the sample
        assert_eq!(AuctionStatus::from_words(&stray), None);
    }
}
