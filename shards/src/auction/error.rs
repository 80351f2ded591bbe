//! Errors of the auction state machines.

use std::fmt;

use super::{Amount, AuctionId, AuctionState};

/// Why an [`AuctionSpec`](super::AuctionSpec) was refused at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpecError {
    /// English `min_increment` is 0 (a later bid must be strictly higher).
    ZeroIncrement,
    /// Dutch `step` is 0 (the price would never fall).
    ZeroStep,
    /// Dutch `tick_nanos` is 0 (the clock would have no period).
    ZeroTick,
    /// Dutch `start` is below its `reserve`.
    StartBelowReserve,
    /// Combinatorial `items` is 0 or above 64.
    InvalidItems,
    /// `buy_now` is below the reserve, or 0.
    BuyNowBelowReserve,
    /// `buy_now` is set on a kind that does not take one (every kind but English).
    BuyNowNotSupported,
    /// `deadline` is at or before `now`.
    DeadlineNotInFuture,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpecError::ZeroIncrement => "English min_increment must be at least 1",
            SpecError::ZeroStep => "Dutch step must be at least 1",
            SpecError::ZeroTick => "Dutch tick_nanos must be at least 1",
            SpecError::StartBelowReserve => "Dutch start price is below the reserve",
            SpecError::InvalidItems => "combinatorial items must be between 1 and 64",
            SpecError::BuyNowBelowReserve => "buy_now is below the reserve (or 0)",
            SpecError::BuyNowNotSupported => "buy_now is only accepted for English auctions",
            SpecError::DeadlineNotInFuture => "deadline is not after the creation time",
        })
    }
}

impl std::error::Error for SpecError {}

/// What an auction call refused, and why. A call that returns an error changed nothing,
/// except that a due deadline may have been applied first (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuctionError {
    /// The spec is invalid.
    InvalidSpec(SpecError),
    /// No auction with this id (never created, or already evicted).
    NotFound {
        /// The id asked for.
        id: AuctionId,
    },
    /// An auction with this id already exists in the book (open or retained).
    DuplicateId {
        /// The id asked for.
        id: AuctionId,
    },
    /// The auction is not open any more.
    NotOpen {
        /// The state it is in.
        state: AuctionState,
    },
    /// The bid is below the rule's minimum.
    BidTooLow {
        /// The lowest amount that would have been accepted at that moment.
        minimum: Amount,
    },
    /// The bid's bundle is wrong for the kind: not 0 for a single-item auction, or empty
    /// or naming items beyond `items` for a combinatorial one.
    InvalidBundle {
        /// The bundle that was sent.
        bundle: u64,
    },
    /// This bidder already bid (sealed kinds), or already bid on this bundle
    /// (combinatorial).
    AlreadyBid {
        /// The bidder.
        bidder: u64,
    },
    /// The seller cannot bid in its own auction.
    SellerBid,
    /// The auction already holds the most bids its kind takes.
    TooManyBids {
        /// The bound that was hit.
        limit: usize,
    },
    /// The book already holds the most open auctions it takes.
    TooManyAuctions {
        /// The bound that was hit.
        limit: usize,
    },
    /// The auction has bids, so it cannot be cancelled.
    HasBids {
        /// How many bids it has.
        count: u32,
    },
    /// An amount computation would overflow [`Amount`].
    Overflow,
    /// The engine could not carry out the call (shut down, busy, handler failure).
    Engine(crate::Error),
}

impl fmt::Display for AuctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuctionError::Engine(e) => e.fmt(f),
            AuctionError::InvalidSpec(e) => write!(f, "invalid auction spec: {e}"),
            AuctionError::NotFound { id } => write!(f, "auction {id} not found"),
            AuctionError::DuplicateId { id } => write!(f, "auction {id} already exists"),
            AuctionError::NotOpen { state } => write!(f, "auction is not open (it is {state})"),
            AuctionError::BidTooLow { minimum } => {
                write!(f, "bid too low: the minimum is {minimum}")
            }
            AuctionError::InvalidBundle { bundle } => {
                write!(f, "invalid bundle {bundle:#x} for this auction")
            }
            AuctionError::AlreadyBid { bidder } => write!(f, "bidder {bidder} already bid"),
            AuctionError::SellerBid => f.write_str("the seller cannot bid in its own auction"),
            AuctionError::TooManyBids { limit } => {
                write!(f, "auction already holds its maximum of {limit} bids")
            }
            AuctionError::TooManyAuctions { limit } => {
                write!(f, "book already holds its maximum of {limit} open auctions")
            }
            AuctionError::HasBids { count } => {
                write!(f, "auction has {count} bid(s) and cannot be cancelled")
            }
            AuctionError::Overflow => f.write_str("amount overflow"),
        }
    }
}

impl std::error::Error for AuctionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuctionError::InvalidSpec(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SpecError> for AuctionError {
    fn from(e: SpecError) -> Self {
        AuctionError::InvalidSpec(e)
    }
}

impl From<crate::Error> for AuctionError {
    fn from(e: crate::Error) -> Self {
        AuctionError::Engine(e)
    }
}
