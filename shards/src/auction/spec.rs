//! What an auction is asked to be ([`AuctionSpec`]) and what a bid is ([`Bid`]).

use std::fmt;

use super::{Amount, SpecError};

/// The kind of an auction and its parameters. See the [module docs](super) for the
/// rules of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AuctionKind {
    /// Ascending open-cry auction.
    English {
        /// Lowest first bid.
        reserve: Amount,
        /// How much a bid must add to the highest bid (at least 1).
        min_increment: Amount,
    },
    /// Descending clock auction.
    Dutch {
        /// Price at creation.
        start: Amount,
        /// How much the price falls per tick (at least 1).
        step: Amount,
        /// Length of a tick in nanoseconds (at least 1).
        tick_nanos: u64,
        /// Floor of the price (at most `start`).
        reserve: Amount,
    },
    /// Sealed bids, the highest pays its bid.
    SealedFirstPrice {
        /// Lowest acceptable bid.
        reserve: Amount,
    },
    /// Sealed bids, the highest pays the second-highest bid (or the reserve).
    Vickrey {
        /// Lowest acceptable bid, and the price a lone bidder pays.
        reserve: Amount,
    },
    /// Sealed bids on bundles of items (bitmasks).
    Combinatorial {
        /// Number of items, 1..=64; item `i` is bit `i` of a bundle.
        items: u8,
        /// Lowest acceptable total of the winning set.
        reserve: Amount,
    },
}

impl AuctionKind {
    /// The tag of this kind (what [`AuctionStatus`](super::AuctionStatus) carries).
    pub fn tag(&self) -> KindTag {
        match self {
            AuctionKind::English { .. } => KindTag::English,
            AuctionKind::Dutch { .. } => KindTag::Dutch,
            AuctionKind::SealedFirstPrice { .. } => KindTag::SealedFirstPrice,
            AuctionKind::Vickrey { .. } => KindTag::Vickrey,
            AuctionKind::Combinatorial { .. } => KindTag::Combinatorial,
        }
    }

    /// The reserve of this kind.
    pub fn reserve(&self) -> Amount {
        match *self {
            AuctionKind::English { reserve, .. }
            | AuctionKind::Dutch { reserve, .. }
            | AuctionKind::SealedFirstPrice { reserve }
            | AuctionKind::Vickrey { reserve }
            | AuctionKind::Combinatorial { reserve, .. } => reserve,
        }
    }

    /// The bitmask of the valid items of a combinatorial auction (0 for other kinds).
    pub fn item_mask(&self) -> u64 {
        match *self {
            AuctionKind::Combinatorial { items, .. } if items >= 64 => u64::MAX,
            AuctionKind::Combinatorial { items, .. } => (1u64 << items) - 1,
            _ => 0,
        }
    }
}

/// The kind of an auction without its parameters.
///
/// The discriminants are the values [`AuctionStatus::to_words`](super::AuctionStatus::to_words)
/// stores; 0 is deliberately unused so that an all-zero record decodes to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KindTag {
    /// [`AuctionKind::English`].
    English = 1,
    /// [`AuctionKind::Dutch`].
    Dutch = 2,
    /// [`AuctionKind::SealedFirstPrice`].
    SealedFirstPrice = 3,
    /// [`AuctionKind::Vickrey`].
    Vickrey = 4,
    /// [`AuctionKind::Combinatorial`].
    Combinatorial = 5,
}

impl KindTag {
    /// True for the kinds whose bids are hidden while the auction is open.
    pub fn is_sealed(self) -> bool {
        matches!(
            self,
            KindTag::SealedFirstPrice | KindTag::Vickrey | KindTag::Combinatorial
        )
    }

    /// The tag stored as `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => KindTag::English,
            2 => KindTag::Dutch,
            3 => KindTag::SealedFirstPrice,
            4 => KindTag::Vickrey,
            5 => KindTag::Combinatorial,
            _ => return None,
        })
    }
}

impl fmt::Display for KindTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KindTag::English => "english",
            KindTag::Dutch => "dutch",
            KindTag::SealedFirstPrice => "sealed_first_price",
            KindTag::Vickrey => "vickrey",
            KindTag::Combinatorial => "combinatorial",
        })
    }
}

/// What to create: the kind with its parameters, and the terms around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AuctionSpec {
    /// Kind and parameters.
    pub kind: AuctionKind,
    /// Who sells (may not bid).
    pub seller: u64,
    /// Free classification, carried into the status (the engine filters on it).
    pub category: u32,
    /// Absolute deadline in nanoseconds on the engine's clock; must be after creation.
    /// `None`: the auction stays open until closed or cancelled.
    pub deadline: Option<u64>,
    /// Price at which a bid wins at once (English only; at least `max(reserve, 1)`).
    pub buy_now: Option<Amount>,
}

impl AuctionSpec {
    /// Checks the spec as [`Auction::new`](super::Auction::new) does at `now`.
    ///
    /// ```
    /// use mabeam_shards::auction::{AuctionKind, AuctionSpec, SpecError};
    ///
    /// let spec = AuctionSpec {
    ///     kind: AuctionKind::Dutch { start: 50, step: 5, tick_nanos: 10, reserve: 60 },
    ///     seller: 1, category: 0, deadline: None, buy_now: None,
    /// };
    /// assert_eq!(spec.validate(0), Err(SpecError::StartBelowReserve));
    /// ```
    pub fn validate(&self, now: u64) -> Result<(), SpecError> {
        match self.kind {
            AuctionKind::English { min_increment, .. } => {
                if min_increment == 0 {
                    return Err(SpecError::ZeroIncrement);
                }
            }
            AuctionKind::Dutch {
                start,
                step,
                tick_nanos,
                reserve,
            } => {
                if step == 0 {
                    return Err(SpecError::ZeroStep);
                }
                if tick_nanos == 0 {
                    return Err(SpecError::ZeroTick);
                }
                if start < reserve {
                    return Err(SpecError::StartBelowReserve);
                }
            }
            AuctionKind::SealedFirstPrice { .. } | AuctionKind::Vickrey { .. } => {}
            AuctionKind::Combinatorial { items, .. } => {
                if items == 0 || items > 64 {
                    return Err(SpecError::InvalidItems);
                }
            }
        }
        if let Some(buy_now) = self.buy_now {
            if !matches!(self.kind, AuctionKind::English { .. }) {
                return Err(SpecError::BuyNowNotSupported);
            }
            if buy_now == 0 || buy_now < self.kind.reserve() {
                return Err(SpecError::BuyNowBelowReserve);
            }
        }
        if let Some(deadline) = self.deadline {
            if deadline <= now {
                return Err(SpecError::DeadlineNotInFuture);
            }
        }
        Ok(())
    }
}

/// A bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Bid {
    /// Who bids (not the seller).
    pub bidder: u64,
    /// How much, in minor units (at least 1).
    pub amount: Amount,
    /// Items bid on, as a bitmask: non-zero and within `items` for a combinatorial
    /// auction, 0 for every other kind.
    pub bundle: u64,
}
