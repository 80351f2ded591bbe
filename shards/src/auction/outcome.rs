//! How an auction ended ([`Outcome`]) and what a bid got back ([`BidReceipt`]).

use std::fmt;

use super::{Amount, AuctionId, MAX_COMBINATORIAL_BIDS};

/// One winning bid and what it pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Award {
    /// The winner.
    pub bidder: u64,
    /// The bundle won (0 for single-item kinds).
    pub bundle: u64,
    /// What the winner pays.
    pub price: Amount,
}

/// Why an auction ended without a winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NoWinnerReason {
    /// Nobody bid.
    NoBids,
    /// Combinatorial: the best total of non-overlapping bids is below the reserve.
    BelowReserve,
}

impl fmt::Display for NoWinnerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoWinnerReason::NoBids => "no bids",
            NoWinnerReason::BelowReserve => "best total below reserve",
        })
    }
}

/// What ended an auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CloseCause {
    /// [`Auction::close`](super::Auction::close) before the deadline.
    Closed,
    /// The deadline came.
    Deadline,
    /// An English bid reached the buy-now price.
    BuyNow,
    /// A Dutch bid met the clock price.
    DutchPrice,
}

/// Who won what, or why nobody did.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Settlement {
    /// A single-item kind sold to one winner.
    Sold(Award),
    /// A combinatorial auction sold bundles: the winning bids in the order they were
    /// placed (at most [`MAX_COMBINATORIAL_BIDS`]) and their total.
    Bundles {
        /// The winning bids, earliest first.
        awards: Vec<Award>,
        /// Sum of their prices.
        total: Amount,
    },
    /// Nobody won.
    NoWinner(NoWinnerReason),
}

/// How an auction ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Outcome {
    /// The auction.
    pub auction: AuctionId,
    /// When it ended: the `now` of the call that ended it, or for
    /// [`CloseCause::Deadline`] the deadline itself (whenever the expiry was applied).
    pub closed_at: u64,
    /// What ended it.
    pub cause: CloseCause,
    /// Who won what.
    pub settlement: Settlement,
}

impl Outcome {
    /// The winning bids (empty with no winner); combinatorial ones earliest first.
    pub fn awards(&self) -> &[Award] {
        match &self.settlement {
            Settlement::Sold(award) => std::slice::from_ref(award),
            Settlement::Bundles { awards, .. } => awards,
            Settlement::NoWinner(_) => &[],
        }
    }

    /// The winner, or for a combinatorial auction the bidder of the earliest winning bid.
    pub fn winner(&self) -> Option<u64> {
        self.awards().first().map(|a| a.bidder)
    }

    /// What the winners pay in total (0 with no winner).
    pub fn total_paid(&self) -> Amount {
        match &self.settlement {
            Settlement::Sold(award) => award.price,
            Settlement::Bundles { total, .. } => *total,
            Settlement::NoWinner(_) => 0,
        }
    }

    /// True if somebody won.
    pub fn is_sold(&self) -> bool {
        !matches!(self.settlement, Settlement::NoWinner(_))
    }

    /// Number of winning bids (0, 1, or up to [`MAX_COMBINATORIAL_BIDS`]).
    pub fn winning_bids(&self) -> usize {
        let n = self.awards().len();
        debug_assert!(n <= MAX_COMBINATORIAL_BIDS);
        n
    }
}

/// What an accepted bid gets back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BidReceipt {
    /// The auction.
    pub auction: AuctionId,
    /// The bidder.
    pub bidder: u64,
    /// The amount bid (what is paid may differ: Dutch clock price, buy-now, Vickrey).
    pub amount: Amount,
    /// When it was accepted.
    pub accepted_at: u64,
    /// `Some` if this bid ended the auction (a Dutch bid, an English buy-now).
    pub closed: Option<Outcome>,
}
