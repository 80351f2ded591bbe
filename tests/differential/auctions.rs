//! The reference model of the auctions service and its market feed, written from the
//! rules documented on `mabeam_shards::auction` (re-exported as `mabeam::auctions`) and
//! DESIGN.md: English, Dutch, sealed first-price, Vickrey and combinatorial rules,
//! deadlines, close, cancel, per-shard retention (count and age) and the market feed of
//! sales (key = category, price = total paid / winning bids, volume = winning bids).
//!
//! The model never calls the library's state machines: it only uses the public data
//! types to phrase its expectations.

use std::collections::HashMap;

use mabeam::auctions::{
    Amount, AuctionError, AuctionFilter, AuctionId, AuctionKind, AuctionSpec, AuctionState,
    AuctionStatus, Award, Bid, BidReceipt, CloseCause, KindTag, NoWinnerReason, Outcome,
    Settlement, SpecError,
};

/// Low bits of an auction id holding the shard's sequence (documented on `AuctionId`'s
/// routing: `shard << 48 | sequence`).
pub const SEQ_BITS: u32 = 48;

pub struct ModelAuction {
    pub spec: AuctionSpec,
    pub created_at: u64,
    pub state: AuctionState,
    pub bid_count: u32,
    /// English / Dutch: the leader and its amount (the price it pays).
    leader: Option<(u64, Amount)>,
    /// Sealed kinds: every accepted bid in order.
    bids: Vec<Bid>,
    ended_at: Option<u64>,
    outcome: Option<Outcome>,
}

pub struct AuctionsModel {
    shards: usize,
    max_retained: usize,
    retention_nanos: u64,
    pub auctions: HashMap<AuctionId, ModelAuction>,
    /// Per shard: the retained ended auctions as (closed_at, id).
    ended: Vec<Vec<(u64, AuctionId)>>,
    /// Every id ever created, for generating operations (evicted ones included).
    pub known: Vec<AuctionId>,
    /// Market feed per category: (total_volume, update_count, sum of price*volume).
    pub market: HashMap<u32, (u64, u64, u128)>,
}

fn dutch_price(kind: &AuctionKind, created_at: u64, now: u64) -> Option<Amount> {
    match *kind {
        AuctionKind::Dutch {
            start,
            step,
            tick_nanos,
            reserve,
        } => {
            let ticks = now.saturating_sub(created_at) / tick_nanos;
            let drop = step.checked_mul(ticks);
            Some(match drop.and_then(|d| start.checked_sub(d)) {
                Some(p) if p >= reserve => p,
                _ => reserve,
            })
        }
        _ => None,
    }
}

impl ModelAuction {
    fn min_bid(&self, now: u64) -> Option<Amount> {
        let m = match self.spec.kind {
            AuctionKind::English {
                reserve,
                min_increment,
            } => match self.leader {
                None => reserve,
                Some((_, a)) => a.checked_add(min_increment)?.max(reserve),
            },
            AuctionKind::Dutch { .. } => dutch_price(&self.spec.kind, self.created_at, now)?,
            AuctionKind::SealedFirstPrice { reserve } | AuctionKind::Vickrey { reserve } => reserve,
            AuctionKind::Combinatorial { .. } => 1,
        };
        Some(m.max(1))
    }

    fn settle(&self) -> Settlement {
        let reserve = self.spec.kind.reserve();
        match self.spec.kind {
            AuctionKind::English { .. } | AuctionKind::Dutch { .. } => match self.leader {
                None => Settlement::NoWinner(NoWinnerReason::NoBids),
                Some((bidder, price)) => Settlement::Sold(Award {
                    bidder,
                    bundle: 0,
                    price,
                }),
            },
            AuctionKind::SealedFirstPrice { .. } | AuctionKind::Vickrey { .. } => {
                // Highest wins, earliest among equals.
                let Some(best) = self
                    .bids
                    .iter()
                    .enumerate()
                    .max_by_key(|(i, b)| (b.amount, std::cmp::Reverse(*i)))
                    .map(|(i, _)| i)
                else {
                    return Settlement::NoWinner(NoWinnerReason::NoBids);
                };
                let winner = self.bids[best];
                let price = if matches!(self.spec.kind, AuctionKind::Vickrey { .. }) {
                    let second = self
                        .bids
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != best)
                        .map(|(_, b)| b.amount)
                        .max();
                    second.unwrap_or(0).max(reserve)
                } else {
                    winner.amount
                };
                Settlement::Sold(Award {
                    bidder: winner.bidder,
                    bundle: 0,
                    price,
                })
            }
            AuctionKind::Combinatorial { .. } => {
                if self.bids.is_empty() {
                    return Settlement::NoWinner(NoWinnerReason::NoBids);
                }
                // Brute force over subsets (the generator keeps bids few and their
                // amounts distinct powers of two, so the best set is unique).
                let n = self.bids.len();
                let mut best: (Amount, u32) = (0, 0);
                for set in 0u32..(1 << n) {
                    let mut items = 0u64;
                    let mut total = 0u64;
                    let mut ok = true;
                    for (i, b) in self.bids.iter().enumerate() {
                        if set & (1 << i) != 0 {
                            if items & b.bundle != 0 {
                                ok = false;
                                break;
                            }
                            items |= b.bundle;
                            total += b.amount;
                        }
                    }
                    if ok && total > best.0 {
                        best = (total, set);
                    }
                }
                if best.0 < reserve {
                    return Settlement::NoWinner(NoWinnerReason::BelowReserve);
                }
                let awards = self
                    .bids
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| best.1 & (1 << i) != 0)
                    .map(|(_, b)| Award {
                        bidder: b.bidder,
                        bundle: b.bundle,
                        price: b.amount,
                    })
                    .collect();
                Settlement::Bundles {
                    awards,
                    total: best.0,
                }
            }
        }
    }

    fn status(&self, id: AuctionId, now: u64) -> AuctionStatus {
        let mut s = AuctionStatus {
            id,
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
            s.min_bid = self.min_bid(now);
            if let Some(p) = dutch_price(&self.spec.kind, self.created_at, now) {
                s.price = Some(p);
            } else if matches!(self.spec.kind, AuctionKind::English { .. }) {
                s.price = self.leader.map(|l| l.1);
                s.leader = self.leader.map(|l| l.0);
            }
        } else if let Some(o) = &self.outcome {
            if o.is_sold() {
                s.price = Some(o.total_paid());
            }
            s.leader = o.winner();
            s.winner = o.winner();
            s.winning_bids = o.awards().len() as u8;
        }
        s
    }
}

impl AuctionsModel {
    pub fn new(shards: usize, max_retained: usize, retention_nanos: u64) -> Self {
        Self {
            shards,
            max_retained,
            retention_nanos,
            auctions: HashMap::new(),
            ended: vec![Vec::new(); shards],
            known: Vec::new(),
            market: HashMap::new(),
        }
    }

    fn shard_of(id: AuctionId) -> usize {
        (id.to_raw() >> SEQ_BITS) as usize
    }

    /// The documented spec checks, in the order: kind parameters, buy-now, deadline.
    pub fn validate(spec: &AuctionSpec, now: u64) -> Result<(), SpecError> {
        match spec.kind {
            AuctionKind::English {
                min_increment: 0, ..
            } => return Err(SpecError::ZeroIncrement),
            AuctionKind::Dutch { step: 0, .. } => return Err(SpecError::ZeroStep),
            AuctionKind::Dutch { tick_nanos: 0, .. } => return Err(SpecError::ZeroTick),
            AuctionKind::Dutch { start, reserve, .. } if start < reserve => {
                return Err(SpecError::StartBelowReserve)
            }
            AuctionKind::Combinatorial { items, .. } if items == 0 || items > 64 => {
                return Err(SpecError::InvalidItems)
            }
            _ => {}
        }
        if let Some(b) = spec.buy_now {
            if !matches!(spec.kind, AuctionKind::English { .. }) {
                return Err(SpecError::BuyNowNotSupported);
            }
            if b == 0 || b < spec.kind.reserve() {
                return Err(SpecError::BuyNowBelowReserve);
            }
        }
        if spec.deadline.is_some_and(|d| d <= now) {
            return Err(SpecError::DeadlineNotInFuture);
        }
        Ok(())
    }

    /// Checks the engine's answer to a create and records the auction. The shard is
    /// the engine's choice (round-robin); the id must name a valid shard and be new.
    pub fn create(
        &mut self,
        spec: AuctionSpec,
        now: u64,
        got: Result<AuctionId, AuctionError>,
    ) -> Result<(), String> {
        if let Err(e) = Self::validate(&spec, now) {
            return if got == Err(AuctionError::InvalidSpec(e)) {
                Ok(())
            } else {
                Err(format!(
                    "create {spec:?}: want InvalidSpec({e:?}), got {got:?}"
                ))
            };
        }
        let id = got.map_err(|e| format!("create {spec:?}: {e:?}"))?;
        if Self::shard_of(id) >= self.shards || self.known.contains(&id) {
            return Err(format!("create returned a bad or reused id {id:?}"));
        }
        self.known.push(id);
        self.auctions.insert(
            id,
            ModelAuction {
                spec,
                created_at: now,
                state: AuctionState::Open,
                bid_count: 0,
                leader: None,
                bids: Vec::new(),
                ended_at: None,
                outcome: None,
            },
        );
        Ok(())
    }

    /// An auction ended at `at` on its shard: it joins the retention, which evicts by
    /// count (oldest `closed_at` first, smaller id among equals).
    fn retain(&mut self, id: AuctionId, at: u64) {
        let shard = Self::shard_of(id);
        self.ended[shard].push((at, id));
        while self.ended[shard].len() > self.max_retained {
            let min = *self.ended[shard].iter().min().expect("non-empty");
            self.ended[shard].retain(|e| *e != min);
            self.auctions.remove(&min.1);
        }
    }

    fn end(
        &mut self,
        id: AuctionId,
        at: u64,
        cause: CloseCause,
        settlement: Settlement,
    ) -> Outcome {
        let outcome = Outcome {
            auction: id,
            closed_at: at,
            cause,
            settlement,
        };
        let a = self.auctions.get_mut(&id).expect("ending a known auction");
        a.state = if cause == CloseCause::Deadline && !outcome.is_sold() {
            AuctionState::Expired
        } else {
            AuctionState::Closed
        };
        a.ended_at = Some(at);
        a.outcome = Some(outcome.clone());
        let category = a.spec.category;
        if outcome.is_sold() {
            let volume = outcome.awards().len() as u64;
            let price = outcome.total_paid() / volume;
            let m = self.market.entry(category).or_default();
            m.0 += volume;
            m.1 += 1;
            m.2 += u128::from(price) * u128::from(volume);
        }
        self.retain(id, at);
        outcome
    }

    pub fn bid(&mut self, id: AuctionId, bid: Bid, now: u64) -> Result<BidReceipt, AuctionError> {
        let a = self
            .auctions
            .get_mut(&id)
            .ok_or(AuctionError::NotFound { id })?;
        if a.state != AuctionState::Open {
            return Err(AuctionError::NotOpen { state: a.state });
        }
        if bid.bidder == a.spec.seller {
            return Err(AuctionError::SellerBid);
        }
        let bundle_ok = match a.spec.kind {
            AuctionKind::Combinatorial { .. } => {
                bid.bundle != 0 && bid.bundle & !a.spec.kind.item_mask() == 0
            }
            _ => bid.bundle == 0,
        };
        if !bundle_ok {
            return Err(AuctionError::InvalidBundle { bundle: bid.bundle });
        }
        let sealed = a.spec.kind.tag().is_sealed();
        if sealed {
            let dup = match a.spec.kind {
                AuctionKind::Combinatorial { .. } => a
                    .bids
                    .iter()
                    .any(|b| b.bidder == bid.bidder && b.bundle == bid.bundle),
                _ => a.bids.iter().any(|b| b.bidder == bid.bidder),
            };
            if dup {
                return Err(AuctionError::AlreadyBid { bidder: bid.bidder });
            }
        }
        let minimum = a.min_bid(now).ok_or(AuctionError::Overflow)?;
        let mut closing = None;
        match a.spec.kind {
            AuctionKind::English { .. } if a.spec.buy_now.is_some_and(|b| bid.amount >= b) => {
                let price = a.spec.buy_now.expect("checked");
                a.leader = Some((bid.bidder, price));
                closing = Some((CloseCause::BuyNow, price));
            }
            _ if bid.amount < minimum => return Err(AuctionError::BidTooLow { minimum }),
            AuctionKind::English { .. } => a.leader = Some((bid.bidder, bid.amount)),
            AuctionKind::Dutch { .. } => {
                // Wins at the current clock price (0 with a reserve of 0 once the clock
                // is down, although the bid itself must be at least 1).
                let price = dutch_price(&a.spec.kind, a.created_at, now).expect("Dutch");
                a.leader = Some((bid.bidder, price));
                closing = Some((CloseCause::DutchPrice, price));
            }
            _ => a.bids.push(bid),
        }
        a.bid_count += 1;
        let closed = closing.map(|(cause, price)| {
            let award = Award {
                bidder: bid.bidder,
                bundle: 0,
                price,
            };
            self.end(id, now, cause, Settlement::Sold(award))
        });
        Ok(BidReceipt {
            auction: id,
            bidder: bid.bidder,
            amount: bid.amount,
            accepted_at: now,
            closed,
        })
    }

    pub fn close(&mut self, id: AuctionId, now: u64) -> Result<Outcome, AuctionError> {
        let a = self
            .auctions
            .get(&id)
            .ok_or(AuctionError::NotFound { id })?;
        if a.state != AuctionState::Open {
            return Err(AuctionError::NotOpen { state: a.state });
        }
        let settlement = a.settle();
        Ok(self.end(id, now, CloseCause::Closed, settlement))
    }

    pub fn cancel(&mut self, id: AuctionId, now: u64) -> Result<(), AuctionError> {
        let a = self
            .auctions
            .get_mut(&id)
            .ok_or(AuctionError::NotFound { id })?;
        if a.state != AuctionState::Open {
            return Err(AuctionError::NotOpen { state: a.state });
        }
        if a.bid_count > 0 {
            return Err(AuctionError::HasBids { count: a.bid_count });
        }
        a.state = AuctionState::Cancelled;
        a.ended_at = Some(now);
        self.retain(id, now);
        Ok(())
    }

    /// What every shard does when time has moved (its timers run after a flush): due
    /// deadlines in deadline order (smaller id among equals), then eviction by age.
    pub fn advance(&mut self, now: u64) {
        let mut due: Vec<(u64, AuctionId)> = self
            .auctions
            .iter()
            .filter(|(_, a)| a.state == AuctionState::Open)
            .filter_map(|(id, a)| a.spec.deadline.filter(|d| *d <= now).map(|d| (d, *id)))
            .collect();
        due.sort();
        for (deadline, id) in due {
            // Retention by count may have evicted it already (an older-ended expiry
            // applied in the same pass); it cannot be open and evicted, so it is here.
            let Some(a) = self.auctions.get(&id) else {
                continue;
            };
            let settlement = a.settle();
            self.end(id, deadline, CloseCause::Deadline, settlement);
        }
        for shard in 0..self.shards {
            let retention = self.retention_nanos;
            let old: Vec<(u64, AuctionId)> = self.ended[shard]
                .iter()
                .copied()
                .filter(|(at, _)| at.saturating_add(retention) <= now)
                .collect();
            for e in old {
                self.ended[shard].retain(|x| *x != e);
                self.auctions.remove(&e.1);
            }
        }
    }

    pub fn status(&self, id: AuctionId, now: u64) -> Option<AuctionStatus> {
        self.auctions.get(&id).map(|a| a.status(id, now))
    }

    pub fn list_active(&self, filter: AuctionFilter, now: u64) -> Vec<AuctionStatus> {
        let mut v: Vec<AuctionStatus> = self
            .auctions
            .iter()
            .map(|(id, a)| a.status(*id, now))
            .filter(|s| {
                s.state == AuctionState::Open
                    && filter.kind.map_or(true, |k| k == s.kind)
                    && filter.category.map_or(true, |c| c == s.category)
            })
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// A bid amount for a combinatorial auction: a power of two no other bid of that
    /// auction uses, so the best set is unique.
    pub fn fresh_power(&self, id: AuctionId, k: u32) -> Amount {
        let used: Vec<Amount> = self
            .auctions
            .get(&id)
            .map(|a| a.bids.iter().map(|b| b.amount).collect())
            .unwrap_or_default();
        (0..40)
            .map(|i| 1u64 << ((k + i) % 40))
            .find(|p| !used.contains(p))
            .unwrap_or(1)
    }

    pub fn kind_of(&self, id: AuctionId) -> Option<KindTag> {
        self.auctions.get(&id).map(|a| a.spec.kind.tag())
    }

    pub fn min_bid_of(&self, id: AuctionId, now: u64) -> Option<Amount> {
        self.auctions.get(&id).and_then(|a| a.min_bid(now))
    }

    pub fn items_of(&self, id: AuctionId) -> u8 {
        match self.auctions.get(&id).map(|a| a.spec.kind) {
            Some(AuctionKind::Combinatorial { items, .. }) => items,
            _ => 0,
        }
    }

    pub fn combo_bids(&self, id: AuctionId) -> usize {
        self.auctions.get(&id).map_or(0, |a| a.bids.len())
    }

    pub fn seller_of(&self, id: AuctionId) -> Option<u64> {
        self.auctions.get(&id).map(|a| a.spec.seller)
    }
}
