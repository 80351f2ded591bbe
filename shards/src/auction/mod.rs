//! Auctions: one shard's auction state machines, plain deterministic code.
//!
//! - [`Auction`] is one auction: created from an [`AuctionSpec`], it takes [`Bid`]s, and
//!   ends exactly once, by [`Auction::close`], by its deadline ([`Auction::expire_if_due`]),
//!   by a bid that closes it (Dutch, buy-now) or by [`Auction::cancel`].
//! - [`AuctionBook`] is all the auctions of one shard: a map by id, a deadline heap and a
//!   bounded retention of ended auctions. Every mutating call reports what happened as
//!   [`AuctionEvent`]s so the engine can publish snapshots and events.
//! - [`AuctionStatus`] is the fixed-size public view the engine publishes in its seqlock
//!   table ([`AuctionStatus::to_words`] / [`AuctionStatus::from_words`]).
//!
//! Nothing here reads a clock: every call takes `now`, in nanoseconds on the engine's
//! clock, and the caller is expected to pass a non-decreasing `now`.
//!
//! # Rules
//!
//! Amounts ([`Amount`]) are integers in minor units. Every addition and multiplication
//! on amounts is checked; one that would overflow fails with [`AuctionError::Overflow`]
//! and changes nothing. A bid of 0 is always refused ([`AuctionError::BidTooLow`]), so
//! the lowest acceptable bid is `max(reserve, 1)`. The seller cannot bid in its own
//! auction ([`AuctionError::SellerBid`]).
//!
//! - **English** (open cry, ascending). The first bid must reach the reserve; every later
//!   bid must reach `highest + min_increment` (and the reserve). `min_increment` must be
//!   at least 1, so a later bid is always strictly higher and two leaders can never tie:
//!   "ties go to the earliest bid" holds trivially. The leader may raise its own bid. At
//!   close the leader wins and pays its bid. *Buy-now*: a bid `>= buy_now` wins at once
//!   and pays exactly `buy_now` (not its bid), even if `buy_now` is below
//!   `highest + min_increment` — the buy-now offer stands until the auction ends. Only
//!   English auctions take a buy-now price (see below).
//! - **Dutch** (descending clock). The price at `now` is
//!   `max(reserve, start - step * floor((now - created_at) / tick_nanos))`; a product
//!   or difference that would overflow or go below the reserve gives the reserve, and a
//!   `now` before `created_at` counts as no time elapsed. Once at the reserve the price
//!   stays there until the deadline (or a seller close). The first bid at or above the
//!   current price wins at once and pays the *current price*, not its bid.
//! - **Sealed first-price**. One bid per bidder ([`AuctionError::AlreadyBid`] for a
//!   second), each at least the reserve. While open, [`AuctionStatus`] and
//!   [`AuctionEvent::Bid`] show the number of bids but no amount and no leader. The
//!   highest bid wins and pays its bid; equal amounts go to the earliest bid.
//! - **Vickrey** (sealed second-price). Bidding as sealed first-price. The highest bid
//!   (earliest among equals) wins and pays `max(second-highest bid, reserve)`; with a
//!   single bid it pays the reserve (so a reserve of 0 sells to a lone bidder for 0);
//!   with two equal top bids the winner pays that same amount.
//! - **Combinatorial** (sealed, OR bids on bundles). An auction has `items` (1..=64)
//!   items; a bid names a non-empty bundle as a bitmask of those items and an amount. A
//!   bidder may place several bids on different bundles and may win several of them
//!   (each winning bid is paid separately); a second bid on the *same* bundle by the same
//!   bidder is refused with [`AuctionError::AlreadyBid`]. At close the winning set is the
//!   set of pairwise non-overlapping bundles with the largest total, computed exactly
//!   (see [`combinatorial`]); each winning bid pays its own amount. The reserve applies
//!   to that total: a best total below the reserve means no winner. Exact winner
//!   determination is exponential in the worst case, so an auction takes at most
//!   [`MAX_COMBINATORIAL_BIDS`] bids; the next one is refused with
//!   [`AuctionError::TooManyBids`]. The sum of all accepted amounts must fit in an
//!   [`Amount`] (checked at bid time), so every total is representable.
//!
//! **Buy-now** is accepted for English auctions only. A Dutch auction already sells at
//! a posted price (its clock), so a second posted price adds nothing; in the sealed kinds
//! and the combinatorial kind an immediate sale on a hidden bid would reveal information
//! and defeat the sealed rules (for Vickrey, it would break truthful bidding). A spec
//! that sets it on those kinds is refused with [`SpecError::BuyNowNotSupported`].
//!
//! **Deadline.** `deadline` is absolute. At `now >= deadline` the auction is due: it
//! closes with a winner where bids qualify (state [`AuctionState::Closed`], cause
//! [`CloseCause::Deadline`]), else it becomes [`AuctionState::Expired`] with no winner.
//! Every call that receives a `now` past the deadline first applies the expiry; then a
//! bid or a cancel is refused with [`AuctionError::NotOpen`], while a close returns the
//! expiry's outcome (the same winner determination a close would have run).
//!
//! **Cancel** is allowed only while the auction is open and has no bid
//! ([`AuctionError::HasBids`]).
//!
//! **Bounds.** Sealed kinds keep every bidder (to refuse a second bid) and take at most
//! [`MAX_BIDS_PER_AUCTION`] bids; English and Dutch keep only the leader and a count,
//! so they are bounded only by the width of the count ([`MAX_OPEN_CRY_BIDS`]).
//!
//! ```
//! use mabeam_shards::auction::{Auction, AuctionId, AuctionKind, AuctionSpec, Bid};
//!
//! let spec = AuctionSpec {
//!     kind: AuctionKind::English { reserve: 100, min_increment: 10 },
//!     seller: 1,
//!     category: 7,
//!     deadline: Some(1_000),
//!     buy_now: None,
//! };
//! let mut auction = Auction::new(AuctionId::new(0, 42), spec, 0)?;
//! auction.bid(Bid { bidder: 2, amount: 100, bundle: 0 }, 10)?;
//! assert!(auction.bid(Bid { bidder: 3, amount: 105, bundle: 0 }, 20).is_err()); // < 110
//! auction.bid(Bid { bidder: 3, amount: 110, bundle: 0 }, 30)?;
//! let outcome = auction.expire_if_due(1_000).expect("the deadline has come");
//! assert_eq!(outcome.winner(), Some(3));
//! assert_eq!(outcome.total_paid(), 110);
//! # Ok::<(), mabeam_shards::auction::AuctionError>(())
//! ```

mod book;
pub mod combinatorial;
mod error;
mod outcome;
mod spec;
mod state_machine;
mod status;

pub use book::{AuctionBook, AuctionEvent, BookLimits};
pub use error::{AuctionError, SpecError};
pub use outcome::{Award, BidReceipt, CloseCause, NoWinnerReason, Outcome, Settlement};
pub use spec::{AuctionKind, AuctionSpec, Bid, KindTag};
pub use state_machine::{Auction, AuctionParts, BidsParts};
pub use status::{AuctionState, AuctionStatus, STATUS_WORDS};

/// An amount of money in minor units (cents, satoshis, …).
pub type Amount = u64;

/// Low bits of an engine's auction id that hold the owning shard's sequence; the bits
/// above hold the shard (`shard << AUCTION_SEQ_BITS | sequence`), so a bid or status read
/// routes without hashing.
pub const AUCTION_SEQ_BITS: u32 = 48;

/// The id of an auction, chosen by the caller (the engine) and unique within a book.
///
/// An engine's ids hold the shard that owns the auction in the bits above
/// [`AUCTION_SEQ_BITS`] and that shard's sequence number below, so a bid or a status read
/// routes without hashing. `Debug` shows both parts, `Display` shows them as
/// `shard#sequence`; [`to_raw`](Self::to_raw) and [`from_raw`](Self::from_raw) convert to
/// and from the 64-bit word (for storage or a wire format).
///
/// ```
/// use mabeam_shards::auction::AuctionId;
/// let id = AuctionId::new(1, 7);
/// assert_eq!((id.shard(), id.sequence()), (1, 7));
/// assert_eq!(format!("{id:?}"), "AuctionId(shard 1, #7)");
/// assert_eq!(id.to_string(), "1#7");
/// assert_eq!(AuctionId::from_raw(id.to_raw()), id);
/// assert_eq!(id.to_raw(), 1 << 48 | 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))] // its raw u64, as the state file has it
pub struct AuctionId(u64);

impl AuctionId {
    /// Sequence numbers an id can hold: `0..MAX_SEQUENCE`.
    pub const MAX_SEQUENCE: u64 = 1 << AUCTION_SEQ_BITS;

    /// The id of the `sequence`-th auction of `shard`. Bits of `sequence` above
    /// [`AUCTION_SEQ_BITS`] and of `shard` above 16 are dropped.
    #[inline]
    pub const fn new(shard: u16, sequence: u64) -> Self {
        Self((shard as u64) << AUCTION_SEQ_BITS | (sequence & (Self::MAX_SEQUENCE - 1)))
    }

    /// The id whose 64-bit word is `raw` (the inverse of [`to_raw`](Self::to_raw)).
    #[inline]
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The id as one 64-bit word: `shard << AUCTION_SEQ_BITS | sequence`.
    #[inline]
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// The shard that owns the auction.
    #[inline]
    pub const fn shard(self) -> usize {
        (self.0 >> AUCTION_SEQ_BITS) as usize
    }

    /// The auction's sequence number on its shard.
    #[inline]
    pub const fn sequence(self) -> u64 {
        self.0 & (Self::MAX_SEQUENCE - 1)
    }
}

impl From<u64> for AuctionId {
    fn from(raw: u64) -> Self {
        Self::from_raw(raw)
    }
}

impl From<AuctionId> for u64 {
    fn from(id: AuctionId) -> Self {
        id.to_raw()
    }
}

impl std::fmt::Debug for AuctionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuctionId(shard {}, #{})", self.shard(), self.sequence())
    }
}

impl std::fmt::Display for AuctionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.shard(), self.sequence())
    }
}

/// The Dutch clock price at `now` of an auction created at `created_at`:
/// `max(reserve, start - step * floor((now - created_at) / tick_nanos))`, the reserve
/// where the product or difference would overflow or go below it; a `now` before
/// `created_at` counts as no time elapsed, and a `tick_nanos` of 0 as 1.
///
/// Published so that a reader of a snapshot can compute the current price without a
/// message to the shard.
///
/// ```
/// use mabeam_shards::auction::dutch_clock_price;
/// assert_eq!(dutch_clock_price(1_000, 100, 10, 500, 0, 35), 700);
/// assert_eq!(dutch_clock_price(1_000, 100, 10, 500, 0, 1_000), 500);
/// ```
#[inline]
pub fn dutch_clock_price(
    start: Amount,
    step: Amount,
    tick_nanos: u64,
    reserve: Amount,
    created_at: u64,
    now: u64,
) -> Amount {
    let ticks = now.saturating_sub(created_at) / tick_nanos.max(1);
    step.checked_mul(ticks)
        .and_then(|drop| start.checked_sub(drop))
        .map_or(reserve, |p| p.max(reserve))
}

/// Most bids a combinatorial auction takes; the next one is refused with
/// [`AuctionError::TooManyBids`].
///
/// Winner determination is exact and exponential in the worst case; with this bound
/// the memoised search of [`combinatorial::best_allocation`] keeps at most 8 190 states
/// (see there), each a hash-map lookup and an addition.
pub const MAX_COMBINATORIAL_BIDS: usize = 24;

/// Most bids a sealed auction (first-price or Vickrey) takes; the next one is refused
/// with [`AuctionError::TooManyBids`]. Sealed auctions remember every bidder (one bid
/// each), so this bounds their memory.
pub const MAX_BIDS_PER_AUCTION: usize = 4096;

/// Most bids an English or Dutch auction takes: these keep only the leader and a `u32`
/// count, so the bound is the count's width.
pub const MAX_OPEN_CRY_BIDS: usize = u32::MAX as usize;

#[cfg(test)]
mod tests;
