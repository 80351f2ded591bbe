//! One auction's state machine ([`Auction`]).

use hashbrown::HashSet;

use super::combinatorial::best_allocation;
use super::{
    Amount, AuctionError, AuctionId, AuctionKind, AuctionSpec, AuctionState, AuctionStatus, Award,
    Bid, BidReceipt, CloseCause, NoWinnerReason, Outcome, Settlement, MAX_BIDS_PER_AUCTION,
    MAX_COMBINATORIAL_BIDS, MAX_OPEN_CRY_BIDS,
};

/// A bid that currently leads (English) or tops the sealed bids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leading {
    bidder: u64,
    amount: Amount,
}

/// What an auction remembers of its bids, per family of kinds.
#[derive(Debug, Clone)]
enum Bids {
    /// English and Dutch: only the leader (a Dutch auction never has one while open:
    /// its first qualifying bid ends it).
    OpenCry { leader: Option<Leading> },
    /// Sealed first-price and Vickrey: every bidder (one bid each, at most
    /// [`MAX_BIDS_PER_AUCTION`]), the top bid (earliest among equals) and the highest
    /// amount among the other bids.
    Sealed {
        bidders: HashSet<u64>,
        best: Option<Leading>,
        second: Option<Amount>,
    },
    /// Combinatorial: every bid in arrival order (at most [`MAX_COMBINATORIAL_BIDS`])
    /// and their sum, which always fits in an [`Amount`].
    Combinatorial { bids: Vec<Bid>, sum: Amount },
}

/// What an auction remembers of its bids, as plain data (see [`AuctionParts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BidsParts {
    /// English and Dutch: the leading `(bidder, amount)`, if any.
    OpenCry {
        /// The leading bid.
        leader: Option<(u64, Amount)>,
    },
    /// Sealed first-price and Vickrey: every bidder (ascending), the top bid and the
    /// highest amount among the others.
    Sealed {
        /// Every bidder, ascending.
        bidders: Vec<u64>,
        /// The top `(bidder, amount)`, earliest among equals.
        best: Option<(u64, Amount)>,
        /// The highest amount among the other bids.
        second: Option<Amount>,
    },
    /// Combinatorial: every bid in arrival order.
    Combinatorial {
        /// The bids, in arrival order.
        bids: Vec<Bid>,
    },
}

/// An auction as plain data, for export and restore: [`Auction::to_parts`] and
/// [`Auction::from_parts`] round-trip exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AuctionParts {
    /// The id.
    pub id: AuctionId,
    /// The spec it was created with.
    pub spec: AuctionSpec,
    /// When it was created.
    pub created_at: u64,
    /// Its state.
    pub state: AuctionState,
    /// Bids accepted.
    pub bid_count: u32,
    /// What it remembers of its bids.
    pub bids: BidsParts,
    /// When it ended.
    pub ended_at: Option<u64>,
    /// How it ended, if it closed or expired.
    pub outcome: Option<Outcome>,
}

/// One auction: its spec, its bids and, once ended, its outcome.
///
/// Created open by [`Auction::new`]; it ends exactly once (state `Closed`, `Expired` or
/// `Cancelled`) and never reopens. See the [module docs](super) for every rule.
#[derive(Debug, Clone)]
pub struct Auction {
    id: AuctionId,
    spec: AuctionSpec,
    created_at: u64,
    state: AuctionState,
    bid_count: u32,
    bids: Bids,
    ended_at: Option<u64>,
    outcome: Option<Outcome>,
}

impl Auction {
    /// Creates an open auction at `now` after validating `spec`
    /// ([`AuctionError::InvalidSpec`] says what is wrong).
    pub fn new(id: AuctionId, spec: AuctionSpec, now: u64) -> Result<Self, AuctionError> {
        spec.validate(now)?;
        let bids = match spec.kind {
            AuctionKind::English { .. } | AuctionKind::Dutch { .. } => {
                Bids::OpenCry { leader: None }
            }
            AuctionKind::SealedFirstPrice { .. } | AuctionKind::Vickrey { .. } => Bids::Sealed {
                bidders: HashSet::new(),
                best: None,
                second: None,
            },
            AuctionKind::Combinatorial { .. } => Bids::Combinatorial {
                bids: Vec::new(),
                sum: 0,
            },
        };
        Ok(Auction {
            id,
            spec,
            created_at: now,
            state: AuctionState::Open,
            bid_count: 0,
            bids,
            ended_at: None,
            outcome: None,
        })
    }

    /// The auction as plain data.
    pub fn to_parts(&self) -> AuctionParts {
        let lead = |l: &Option<Leading>| l.map(|l| (l.bidder, l.amount));
        let bids = match &self.bids {
            Bids::OpenCry { leader } => BidsParts::OpenCry {
                leader: lead(leader),
            },
            Bids::Sealed {
                bidders,
                best,
                second,
            } => {
                let mut bidders: Vec<u64> = bidders.iter().copied().collect();
                bidders.sort_unstable();
                BidsParts::Sealed {
                    bidders,
                    best: lead(best),
                    second: *second,
                }
            }
            Bids::Combinatorial { bids, .. } => BidsParts::Combinatorial { bids: bids.clone() },
        };
        AuctionParts {
            id: self.id,
            spec: self.spec,
            created_at: self.created_at,
            state: self.state,
            bid_count: self.bid_count,
            bids,
            ended_at: self.ended_at,
            outcome: self.outcome.clone(),
        }
    }

    /// Rebuilds an auction from [`to_parts`](Self::to_parts), checking what a restore
    /// from an untrusted file could get wrong: the spec's rules (against `created_at`),
    /// bids that fit the kind and the bounds, and an end consistent with the state.
    /// The error says what is wrong.
    pub fn from_parts(parts: AuctionParts) -> Result<Self, &'static str> {
        parts
            .spec
            .validate(parts.created_at)
            .map_err(|_| "auction spec breaks its rules")?;
        let kind = parts.spec.kind;
        let bids = match (parts.bids, kind) {
            (
                BidsParts::OpenCry { leader },
                AuctionKind::English { .. } | AuctionKind::Dutch { .. },
            ) => Bids::OpenCry {
                leader: leader.map(|(bidder, amount)| Leading { bidder, amount }),
            },
            (
                BidsParts::Sealed {
                    bidders,
                    best,
                    second,
                },
                AuctionKind::SealedFirstPrice { .. } | AuctionKind::Vickrey { .. },
            ) => {
                if bidders.len() > MAX_BIDS_PER_AUCTION {
                    return Err("more sealed bidders than MAX_BIDS_PER_AUCTION");
                }
                let bidders: HashSet<u64> = bidders.into_iter().collect();
                if best.is_some_and(|(b, _)| !bidders.contains(&b)) {
                    return Err("sealed top bid from no bidder");
                }
                Bids::Sealed {
                    bidders,
                    best: best.map(|(bidder, amount)| Leading { bidder, amount }),
                    second,
                }
            }
            (BidsParts::Combinatorial { bids }, AuctionKind::Combinatorial { .. }) => {
                if bids.len() > MAX_COMBINATORIAL_BIDS {
                    return Err("more combinatorial bids than MAX_COMBINATORIAL_BIDS");
                }
                let sum = bids
                    .iter()
                    .try_fold(0 as Amount, |s, b| s.checked_add(b.amount))
                    .ok_or("combinatorial bids overflow their sum")?;
                Bids::Combinatorial { bids, sum }
            }
            _ => return Err("bids of another kind than the spec"),
        };
        let open = parts.state == AuctionState::Open;
        if open != parts.ended_at.is_none() {
            return Err("auction end time inconsistent with its state");
        }
        if open && parts.outcome.is_some() {
            return Err("open auction with an outcome");
        }
        if parts
            .outcome
            .as_ref()
            .is_some_and(|o| o.auction != parts.id)
        {
            return Err("outcome of another auction");
        }
        Ok(Auction {
            id: parts.id,
            spec: parts.spec,
            created_at: parts.created_at,
            state: parts.state,
            bid_count: parts.bid_count,
            bids,
            ended_at: parts.ended_at,
            outcome: parts.outcome,
        })
    }

    /// The auction's id.
    pub fn id(&self) -> AuctionId {
        self.id
    }

    /// The spec it was created with.
    pub fn spec(&self) -> &AuctionSpec {
        &self.spec
    }

    /// When it was created.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// Its state as last applied (a due deadline is applied only by a call that takes a
    /// `&mut self`).
    pub fn state(&self) -> AuctionState {
        self.state
    }

    /// Bids accepted so far.
    pub fn bid_count(&self) -> u32 {
        self.bid_count
    }

    /// When it ended, if it has (closed, expired or cancelled).
    pub fn ended_at(&self) -> Option<u64> {
        self.ended_at
    }

    /// How it ended, if it closed or expired (`None` while open and once cancelled).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The deadline still to be applied: the spec's deadline while open, else `None`.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            AuctionState::Open => self.spec.deadline,
            _ => None,
        }
    }

    /// The Dutch clock price at `now` (`None` for other kinds). See the module docs for
    /// the formula; it never goes below the reserve and never overflows.
    pub fn dutch_price(&self, now: u64) -> Option<Amount> {
        match self.spec.kind {
            AuctionKind::Dutch {
                start,
                step,
                tick_nanos,
                reserve,
            } => Some(super::dutch_clock_price(
                start,
                step,
                tick_nanos,
                reserve,
                self.created_at,
                now,
            )),
            _ => None,
        }
    }

    /// The lowest bid that would be accepted at `now` if the auction is open
    /// ([`AuctionError::Overflow`] when an English minimum is beyond [`Amount`]).
    pub fn min_bid(&self, now: u64) -> Result<Amount, AuctionError> {
        let minimum = match (&self.spec.kind, &self.bids) {
            (
                AuctionKind::English {
                    reserve,
                    min_increment,
                },
                Bids::OpenCry { leader },
            ) => match leader {
                None => *reserve,
                Some(l) => l
                    .amount
                    .checked_add(*min_increment)
                    .ok_or(AuctionError::Overflow)?
                    .max(*reserve),
            },
            (AuctionKind::Dutch { reserve, .. }, _) => self.dutch_price(now).unwrap_or(*reserve),
            (AuctionKind::Combinatorial { .. }, _) => 1,
            (kind, _) => kind.reserve(),
        };
        Ok(minimum.max(1))
    }

    /// Places a bid at `now`.
    ///
    /// Applies a due deadline first (then refuses with [`AuctionError::NotOpen`]). Checks,
    /// in this order: open, not the seller, the bundle, the kind's bid bound, one bid per
    /// bidder (per bundle for combinatorial), the minimum, overflow. A refused bid
    /// changes nothing. A bid that ends the auction (Dutch, English buy-now) returns the
    /// outcome in [`BidReceipt::closed`].
    pub fn bid(&mut self, bid: Bid, now: u64) -> Result<BidReceipt, AuctionError> {
        self.ensure_open(now)?;
        if bid.bidder == self.spec.seller {
            return Err(AuctionError::SellerBid);
        }
        let bundle_ok = match self.spec.kind {
            AuctionKind::Combinatorial { .. } => {
                bid.bundle != 0 && bid.bundle & !self.spec.kind.item_mask() == 0
            }
            _ => bid.bundle == 0,
        };
        if !bundle_ok {
            return Err(AuctionError::InvalidBundle { bundle: bid.bundle });
        }
        let count = self
            .bid_count
            .checked_add(1)
            .ok_or(AuctionError::TooManyBids {
                limit: MAX_OPEN_CRY_BIDS,
            })?;
        // An English minimum that overflows matters only to a bid that does not take
        // the buy-now offer, so the error is raised where the minimum is needed.
        let minimum = self.min_bid(now);
        let dutch_price = self.dutch_price(now);
        let buy_now = self.spec.buy_now;
        let mut closed = None;
        let at_least = |minimum: Result<Amount, AuctionError>| -> Result<(), AuctionError> {
            let minimum = minimum?;
            if bid.amount < minimum {
                return Err(AuctionError::BidTooLow { minimum });
            }
            Ok(())
        };
        match &mut self.bids {
            Bids::OpenCry { leader } => {
                let (price, cause) = match (dutch_price, buy_now) {
                    (Some(clock), _) => {
                        at_least(minimum)?;
                        (clock, Some(CloseCause::DutchPrice))
                    }
                    (None, Some(buy_now)) if bid.amount >= buy_now => {
                        (buy_now, Some(CloseCause::BuyNow))
                    }
                    _ => {
                        at_least(minimum)?;
                        (bid.amount, None)
                    }
                };
                *leader = Some(Leading {
                    bidder: bid.bidder,
                    amount: price,
                });
                if let Some(cause) = cause {
                    let award = Award {
                        bidder: bid.bidder,
                        bundle: 0,
                        price,
                    };
                    closed = Some((cause, Settlement::Sold(award)));
                }
            }
            Bids::Sealed {
                bidders,
                best,
                second,
            } => {
                if bidders.len() >= MAX_BIDS_PER_AUCTION {
                    return Err(AuctionError::TooManyBids {
                        limit: MAX_BIDS_PER_AUCTION,
                    });
                }
                if bidders.contains(&bid.bidder) {
                    return Err(AuctionError::AlreadyBid { bidder: bid.bidder });
                }
                at_least(minimum)?;
                bidders.insert(bid.bidder);
                match best {
                    Some(top) if bid.amount <= top.amount => {
                        *second = Some(second.map_or(bid.amount, |s| s.max(bid.amount)));
                    }
                    _ => {
                        *second = best.map(|top| top.amount);
                        *best = Some(Leading {
                            bidder: bid.bidder,
                            amount: bid.amount,
                        });
                    }
                }
            }
            Bids::Combinatorial { bids, sum } => {
                if bids.len() >= MAX_COMBINATORIAL_BIDS {
                    return Err(AuctionError::TooManyBids {
                        limit: MAX_COMBINATORIAL_BIDS,
                    });
                }
                if bids
                    .iter()
                    .any(|b| b.bidder == bid.bidder && b.bundle == bid.bundle)
                {
                    return Err(AuctionError::AlreadyBid { bidder: bid.bidder });
                }
                at_least(minimum)?;
                *sum = sum.checked_add(bid.amount).ok_or(AuctionError::Overflow)?;
                bids.push(bid);
            }
        }
        self.bid_count = count;
        let closed = closed.map(|(cause, settlement)| self.end(now, cause, settlement));
        Ok(BidReceipt {
            auction: self.id,
            bidder: bid.bidder,
            amount: bid.amount,
            accepted_at: now,
            closed,
        })
    }

    /// Closes the auction at `now` and returns its outcome (state `Closed`, with or
    /// without a winner). If the deadline is due, the deadline's expiry is applied
    /// instead and its outcome returned. [`AuctionError::NotOpen`] if it already ended.
    pub fn close(&mut self, now: u64) -> Result<Outcome, AuctionError> {
        if self.state != AuctionState::Open {
            return Err(AuctionError::NotOpen { state: self.state });
        }
        if let Some(outcome) = self.expire_if_due(now) {
            return Ok(outcome);
        }
        let settlement = self.settle();
        Ok(self.end(now, CloseCause::Closed, settlement))
    }

    /// Cancels the auction at `now`: only while open ([`AuctionError::NotOpen`], after
    /// applying a due deadline) and without bids ([`AuctionError::HasBids`]).
    pub fn cancel(&mut self, now: u64) -> Result<(), AuctionError> {
        self.ensure_open(now)?;
        if self.bid_count > 0 {
            return Err(AuctionError::HasBids {
                count: self.bid_count,
            });
        }
        self.state = AuctionState::Cancelled;
        self.ended_at = Some(now);
        Ok(())
    }

    /// Applies the deadline if the auction is open and `now >= deadline`: closes with the
    /// winner(s) if bids qualify, else expires without a winner. Returns the outcome if
    /// it did (its `closed_at` is the deadline), `None` if nothing was due.
    pub fn expire_if_due(&mut self, now: u64) -> Option<Outcome> {
        let deadline = self.next_deadline()?;
        if now < deadline {
            return None;
        }
        let settlement = self.settle();
        Some(self.end(deadline, CloseCause::Deadline, settlement))
    }

    /// The public view at `now` (the Dutch price is computed for `now`). It does not
    /// apply a due deadline: call [`expire_if_due`](Self::expire_if_due) first.
    pub fn status(&self, now: u64) -> AuctionStatus {
        let mut status = AuctionStatus {
            id: self.id,
            kind: self.spec.kind.tag(),
            state: self.state,
            category: self.spec.category,
            seller: self.spec.seller,
            created_at: self.created_at,
            deadline: self.spec.deadline,
            bid_count: self.bid_count,
            price: None,
            min_bid: None,
            leader: None,
            winner: None,
            winning_bids: 0,
            closed_at: self.ended_at,
        };
        if self.state == AuctionState::Open {
            status.min_bid = self.min_bid(now).ok();
            match &self.bids {
                Bids::OpenCry { leader } => {
                    status.price = self.dutch_price(now).or(leader.map(|l| l.amount));
                    status.leader = leader.map(|l| l.bidder);
                }
                Bids::Sealed { .. } | Bids::Combinatorial { .. } => {}
            }
        } else if let Some(outcome) = &self.outcome {
            status.price = outcome.is_sold().then(|| outcome.total_paid());
            status.leader = outcome.winner();
            status.winner = outcome.winner();
            // At most MAX_COMBINATORIAL_BIDS (24) winning bids.
            status.winning_bids = outcome.winning_bids() as u8;
        }
        status
    }

    /// Refuses with `NotOpen` unless open at `now` (applying a due deadline first).
    fn ensure_open(&mut self, now: u64) -> Result<(), AuctionError> {
        self.expire_if_due(now);
        match self.state {
            AuctionState::Open => Ok(()),
            state => Err(AuctionError::NotOpen { state }),
        }
    }

    /// Who wins what if the auction ended now.
    fn settle(&self) -> Settlement {
        match &self.bids {
            Bids::OpenCry { leader: None } | Bids::Sealed { best: None, .. } => {
                Settlement::NoWinner(NoWinnerReason::NoBids)
            }
            Bids::OpenCry {
                leader: Some(leader),
            } => Settlement::Sold(Award {
                bidder: leader.bidder,
                bundle: 0,
                price: leader.amount,
            }),
            Bids::Sealed {
                best: Some(best),
                second,
                ..
            } => {
                let reserve = self.spec.kind.reserve();
                let price = match self.spec.kind {
                    AuctionKind::Vickrey { .. } => second.unwrap_or(reserve).max(reserve),
                    _ => best.amount,
                };
                Settlement::Sold(Award {
                    bidder: best.bidder,
                    bundle: 0,
                    price,
                })
            }
            Bids::Combinatorial { bids, .. } => {
                if bids.is_empty() {
                    return Settlement::NoWinner(NoWinnerReason::NoBids);
                }
                let allocation = best_allocation(bids).expect(
                    "a combinatorial auction holds at most MAX_COMBINATORIAL_BIDS bids whose \
                     sum fits in an Amount (both checked at bid time)",
                );
                if allocation.total < self.spec.kind.reserve() {
                    return Settlement::NoWinner(NoWinnerReason::BelowReserve);
                }
                let awards = bids
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| allocation.chosen & (1 << i) != 0)
                    .map(|(_, b)| Award {
                        bidder: b.bidder,
                        bundle: b.bundle,
                        price: b.amount,
                    })
                    .collect();
                Settlement::Bundles {
                    awards,
                    total: allocation.total,
                }
            }
        }
    }

    /// Ends the auction with `settlement`; state `Expired` for a deadline without a
    /// winner, `Closed` otherwise.
    fn end(&mut self, at: u64, cause: CloseCause, settlement: Settlement) -> Outcome {
        let outcome = Outcome {
            auction: self.id,
            closed_at: at,
            cause,
            settlement,
        };
        self.state = if cause == CloseCause::Deadline && !outcome.is_sold() {
            AuctionState::Expired
        } else {
            AuctionState::Closed
        };
        self.ended_at = Some(at);
        self.outcome = Some(outcome.clone());
        outcome
    }
}
