//! The economics part of a shard: its auctions, market states and pricing cache, and the
//! tables it publishes them in.
//!
//! Auction ids carry their shard in the top 16 bits (`shard << 48 | sequence`), so status
//! reads and bids route without hashing. Market keys and pricing-cache keys route by a
//! stable hash of the key. An auction that closes with a sale feeds its price into the
//! market state of its category (market key = the category number); when that key lives
//! on another shard, the feed is a shard-to-shard message.

mod state;

use std::collections::VecDeque;

use mabeam_shards::auction::{
    dutch_clock_price, AuctionBook, AuctionError, AuctionEvent, AuctionId, AuctionKind,
    AuctionSpec, AuctionState, AuctionStatus, Bid, BidReceipt, BookLimits, KindTag, Outcome,
    AUCTION_SEQ_BITS, STATUS_WORDS,
};
use mabeam_shards::market::{
    MarketBook, MarketError, MarketLimits, MarketState, MarketUpdate, MARKET_WORDS,
};
use mabeam_shards::pricing::{Pricing, PricingError, Trend};
use mabeam_shards::table::{capacity_for, snapshot_table, TableReader, TableWriter};

use crate::engine::ServiceCtx;
use crate::runtime::{shard_for, Reply};

/// Words of a Dutch clock record: start, step, tick, reserve.
pub(crate) const DUTCH_WORDS: usize = 4;
/// Words of a pricing cache record: check hash, optimal, confidence, trend, dynamic.
pub(crate) const PRICING_WORDS: usize = 5;

/// Filter of [`Auctions::list_active`](crate::auctions::Auctions::list_active).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuctionFilter {
    /// Only this kind.
    pub kind: Option<KindTag>,
    /// Only this category.
    pub category: Option<u32>,
}

impl AuctionFilter {
    /// True if `status` is open and passes the filter.
    pub fn matches(&self, status: &AuctionStatus) -> bool {
        status.state == AuctionState::Open
            && self.kind.map_or(true, |k| k == status.kind)
            && self.category.map_or(true, |c| c == status.category)
    }
}

/// Economics commands.
pub(crate) enum EconomicsCommand {
    Create {
        spec: AuctionSpec,
        reply: Reply<Result<AuctionId, AuctionError>>,
    },
    Bid {
        id: AuctionId,
        bid: Bid,
        reply: Reply<Result<BidReceipt, AuctionError>>,
    },
    Close {
        id: AuctionId,
        reply: Reply<Result<Outcome, AuctionError>>,
    },
    Cancel {
        id: AuctionId,
        reply: Reply<Result<(), AuctionError>>,
    },
    /// Centralized mode's status read.
    Status {
        id: AuctionId,
        reply: Reply<Option<AuctionStatus>>,
    },
    /// Centralized mode's listing.
    ListActive {
        filter: AuctionFilter,
        reply: Reply<Vec<AuctionStatus>>,
    },
    MarketUpdate {
        update: MarketUpdate,
        reply: Reply<Result<MarketState, MarketError>>,
    },
    /// Centralized mode's market read.
    MarketState {
        key: u64,
        reply: Reply<Option<MarketState>>,
    },
    PricingPut {
        key: u64,
        check: u64,
        pricing: Pricing,
        reply: Reply<Result<Pricing, PricingError>>,
    },
    /// Centralized mode's cache read.
    PricingGet {
        key: u64,
        check: u64,
        reply: Reply<Option<Pricing>>,
    },
}

/// Per-shard bounds of the economics state (`#[non_exhaustive]`: start from
/// [`EconomicsConfig::default()`] and use the `with_*` setters or assign fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EconomicsConfig {
    /// Auction bounds per shard: open auctions, retained ended auctions (count and age).
    pub auctions: BookLimits,
    /// Market bounds per shard: keys, VWAP window and points.
    pub market: MarketLimits,
    /// Pricing results cached per shard; beyond it the oldest entry is evicted.
    pub pricing_cache: usize,
}

setters!(EconomicsConfig {
    with_auctions => auctions: BookLimits,
    with_market => market: MarketLimits,
    with_pricing_cache => pricing_cache: usize,
});

impl Default for EconomicsConfig {
    fn default() -> Self {
        Self {
            auctions: BookLimits::default(),
            market: MarketLimits::default(),
            pricing_cache: 4096,
        }
    }
}

/// What readers of one shard's economics tables hold.
pub(crate) struct EconomicsPort {
    pub status: TableReader<STATUS_WORDS>,
    pub dutch: TableReader<DUTCH_WORDS>,
    pub market: TableReader<MARKET_WORDS>,
    pub pricing: TableReader<PRICING_WORDS>,
}

/// One shard's economics state.
///
/// Invariants: the status table holds exactly the auctions of the book, each as of the
/// end of the last command that touched it; the Dutch table holds the clock of every
/// Dutch auction in the book; the pricing table holds at most `pricing_cache` entries,
/// whose keys are exactly those in `pricing_order`.
pub(crate) struct EconomicsShard {
    index: usize,
    shards: usize,
    next_seq: u64,
    book: AuctionBook,
    status: TableWriter<STATUS_WORDS>,
    dutch: TableWriter<DUTCH_WORDS>,
    market: MarketBook,
    market_table: TableWriter<MARKET_WORDS>,
    pricing: TableWriter<PRICING_WORDS>,
    pricing_order: VecDeque<u64>,
    pricing_cache: usize,
    events: Vec<AuctionEvent>,
}

impl EconomicsShard {
    pub(crate) fn new(
        index: usize,
        shards: usize,
        config: &EconomicsConfig,
        reserve: usize,
    ) -> Result<(Self, EconomicsPort), MarketError> {
        let (status, status_r) = snapshot_table(capacity_for(reserve).max(64));
        let (dutch, dutch_r) = snapshot_table(16);
        let (market_table, market_r) = snapshot_table(64);
        let (pricing, pricing_r) = snapshot_table(64);
        let shard = Self {
            index,
            shards,
            next_seq: 0,
            book: AuctionBook::with_reserve(config.auctions, reserve),
            status,
            dutch,
            market: MarketBook::new(config.market)?,
            market_table,
            pricing,
            pricing_order: VecDeque::new(),
            pricing_cache: config.pricing_cache.max(1),
            events: Vec::new(),
        };
        let port = EconomicsPort {
            status: status_r,
            dutch: dutch_r,
            market: market_r,
            pricing: pricing_r,
        };
        Ok((shard, port))
    }

    /// The id of this shard's auction number `seq`.
    fn id_at(&self, seq: u64) -> AuctionId {
        AuctionId::from_raw((self.index as u64) << AUCTION_SEQ_BITS | seq)
    }

    /// Prefetches the status slot `cmd` will write: a bid's, close's or cancel's
    /// auction's, or for a create the id it will get if the `creates` before it in the
    /// batch succeed (a wrong guess only costs a useless prefetch).
    pub(crate) fn prefetch(&self, cmd: &EconomicsCommand, creates: &mut u64) {
        match cmd {
            EconomicsCommand::Bid { id, .. }
            | EconomicsCommand::Close { id, .. }
            | EconomicsCommand::Cancel { id, .. } => self.status.prefetch(id.to_raw()),
            EconomicsCommand::Create { .. } => {
                let id = self.id_at(self.next_seq.wrapping_add(*creates));
                *creates += 1;
                self.status.prefetch(id.to_raw());
            }
            _ => {}
        }
    }

    /// The earliest auction deadline on this shard.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.book.next_deadline()
    }

    /// Expires due auctions and evicts by retention age.
    pub(crate) fn advance(&mut self, ctx: &mut ServiceCtx<'_>) {
        self.book.advance(ctx.now, &mut self.events);
        self.drain_events(ctx);
    }

    pub(crate) fn apply(&mut self, cmd: EconomicsCommand, ctx: &mut ServiceCtx<'_>) {
        let now = ctx.now;
        match cmd {
            EconomicsCommand::Create { spec, reply } => {
                let id = self.id_at(self.next_seq);
                let r = self.book.create(id, spec, now, &mut self.events);
                if r.is_ok() {
                    self.next_seq += 1;
                    if let AuctionKind::Dutch {
                        start,
                        step,
                        tick_nanos,
                        reserve,
                    } = spec.kind
                    {
                        self.dutch
                            .insert(id.to_raw(), [start, step, tick_nanos, reserve]);
                    }
                }
                self.drain_events(ctx);
                ctx.answer(reply, r.map(|_| id));
            }
            EconomicsCommand::Bid { id, bid, reply } => {
                let r = self.book.bid(id, bid, now, &mut self.events);
                self.drain_events(ctx);
                ctx.answer(reply, r);
            }
            EconomicsCommand::Close { id, reply } => {
                let r = self.book.close(id, now, &mut self.events);
                self.drain_events(ctx);
                ctx.answer(reply, r);
            }
            EconomicsCommand::Cancel { id, reply } => {
                let r = self.book.cancel(id, now, &mut self.events);
                self.drain_events(ctx);
                ctx.answer(reply, r);
            }
            EconomicsCommand::Status { id, reply } => {
                ctx.reply(reply, self.book.status(id, now).ok());
            }
            EconomicsCommand::ListActive { filter, reply } => {
                let list = self
                    .book
                    .iter()
                    .map(|a| a.status(now))
                    .filter(|s| filter.matches(s))
                    .collect();
                ctx.reply(reply, list);
            }
            EconomicsCommand::MarketUpdate { update, reply } => {
                let r = self.market.apply(update, now);
                if let Ok(state) = &r {
                    self.market_table.insert(state.key, state.to_words());
                    ctx.events.market_updated(*state, ctx.now);
                }
                ctx.answer(reply, r);
            }
            EconomicsCommand::MarketState { key, reply } => {
                ctx.reply(reply, self.market.state(key));
            }
            EconomicsCommand::PricingPut {
                key,
                check,
                pricing,
                reply,
            } => {
                if self.pricing.get(key).is_none() {
                    if self.pricing_order.len() >= self.pricing_cache {
                        if let Some(old) = self.pricing_order.pop_front() {
                            self.pricing.remove(old);
                        }
                    }
                    self.pricing_order.push_back(key);
                }
                self.pricing.insert(key, encode_pricing(check, &pricing));
                ctx.reply(reply, Ok(pricing));
            }
            EconomicsCommand::PricingGet { key, check, reply } => {
                let r = self
                    .pricing
                    .get(key)
                    .and_then(|w| decode_pricing(check, &w));
                ctx.reply(reply, r);
            }
        }
    }

    /// Publishes what the book reported: status records, evictions, the market feed of
    /// sales, and the `auction.*` events.
    fn drain_events(&mut self, ctx: &mut ServiceCtx<'_>) {
        for event in self.events.drain(..) {
            match &event {
                AuctionEvent::Created(s) => self.status.insert(s.id.to_raw(), s.to_words()),
                AuctionEvent::Bid { id, .. } => {
                    // Absent only if the bid ended the auction and retention evicted it:
                    // the `Closed` and `Evicted` events that follow publish that.
                    if let Ok(s) = self.book.status(*id, ctx.now) {
                        self.status.insert(id.to_raw(), s.to_words());
                    }
                }
                // From the event, not the book: retention may have evicted the auction in
                // the same call (an `Evicted` event follows), and the sale must still
                // reach its market.
                AuctionEvent::Cancelled { id, status } => {
                    self.status.insert(id.to_raw(), status.to_words());
                }
                AuctionEvent::Closed {
                    id,
                    outcome,
                    status,
                } => {
                    self.status.insert(id.to_raw(), status.to_words());
                    if outcome.is_sold() {
                        feed_market(status.category, outcome, self.shards, ctx);
                    }
                }
                AuctionEvent::Evicted { id } => {
                    self.status.remove(id.to_raw());
                    self.dutch.remove(id.to_raw());
                }
            }
            ctx.events.auction(event, ctx.now);
        }
    }
}

/// A sale's market update: key = category, price = what was paid per winning bid
/// (rounded down), volume = number of winning bids.
fn feed_market(category: u32, outcome: &Outcome, shards: usize, ctx: &mut ServiceCtx<'_>) {
    let volume = outcome.winning_bids() as u64;
    if volume == 0 {
        return;
    }
    let update = MarketUpdate {
        key: u64::from(category),
        price: outcome.total_paid() / volume,
        volume,
    };
    let target = shard_for(update.key, shards);
    let cmd = EconomicsCommand::MarketUpdate {
        update,
        reply: Reply::Nobody,
    };
    ctx.forward(target, cmd);
}

fn encode_pricing(check: u64, p: &Pricing) -> [u64; PRICING_WORDS] {
    let trend = match p.trend {
        Trend::Flat => 0,
        Trend::Rising => 1,
        Trend::Falling => 2,
    };
    [
        check,
        p.optimal_price.to_bits(),
        p.confidence.to_bits(),
        trend,
        p.dynamic_price.to_bits(),
    ]
}

/// Decodes a cache record if it belongs to the input with this check hash.
pub(crate) fn decode_pricing(check: u64, w: &[u64; PRICING_WORDS]) -> Option<Pricing> {
    if w[0] != check {
        return None;
    }
    Some(Pricing {
        optimal_price: f64::from_bits(w[1]),
        confidence: f64::from_bits(w[2]),
        trend: match w[3] {
            1 => Trend::Rising,
            2 => Trend::Falling,
            _ => Trend::Flat,
        },
        dynamic_price: f64::from_bits(w[4]),
    })
}

/// The Dutch clock price at `now` from a published clock record (the rule of
/// [`dutch_clock_price`]).
pub(crate) fn dutch_price(clock: &[u64; DUTCH_WORDS], created_at: u64, now: u64) -> u64 {
    let [start, step, tick, reserve] = *clock;
    dutch_clock_price(start, step, tick, reserve, created_at, now)
}
