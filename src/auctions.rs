//! Auctions: English, Dutch, sealed first-price, Vickrey and combinatorial, each with
//! its real rule (see [`mabeam_shards::auction`] for the rules and the choices made
//! where auction theory leaves room).
//!
//! An auction lives on one shard, chosen round-robin per calling thread; its id carries
//! that shard, so bids and status reads route without hashing. Status reads and listings
//! come from published snapshots; a Dutch auction's current clock price is computed at
//! read time from its published clock, so it is exact without a message. Deadlines are
//! timers in the shard loop. Ended auctions are kept for `Config::economics.auctions`
//! retention (count and age), then evicted: their ids become unknown.

use std::cell::Cell;
use std::sync::Arc;

pub use mabeam_shards::auction::{
    Amount, AuctionError, AuctionId, AuctionKind, AuctionSpec, AuctionState, AuctionStatus, Award,
    Bid, BidReceipt, BookLimits, CloseCause, KindTag, NoWinnerReason, Outcome, Settlement,
    SpecError, MAX_BIDS_PER_AUCTION, MAX_COMBINATORIAL_BIDS,
};

pub use crate::economics::AuctionFilter;
use crate::economics::{dutch_price, EconomicsCommand};
use crate::engine::Inner;
use crate::runtime::{Reply, SendWait, Ticket};
use crate::telemetry::ops::read;
use crate::Error;

thread_local! {
    /// Round-robin position of this thread's auction creates.
    static NEXT_SHARD: Cell<usize> = Cell::new(thread_seed());
}

/// The shard of this thread's next auction create: round-robin from a per-thread start.
pub(crate) fn next_create_shard(shards: usize) -> usize {
    NEXT_SHARD.with(|c| {
        let s = c.get();
        c.set(s.wrapping_add(1));
        s % shards
    })
}

fn thread_seed() -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(0);
    h.finish() as usize
}

/// The auctions of an engine; get it with [`Engine::auctions`](crate::EngineHandle::auctions).
///
/// ```
/// use mabeam::auctions::{AuctionKind, AuctionSpec, Bid};
/// let engine = mabeam::Engine::start(mabeam::Config::default().with_shards(2).with_pin_threads(false))?;
/// let auctions = engine.auctions();
/// let spec = AuctionSpec {
///     kind: AuctionKind::English { reserve: 100, min_increment: 5 },
///     seller: 1, category: 3, deadline: None, buy_now: None,
/// };
/// let id = auctions.create(spec).wait()??;
/// auctions.bid(id, Bid { bidder: 2, amount: 120, bundle: 0 }).wait()??;
/// let outcome = auctions.close(id).wait()??;
/// assert_eq!(outcome.winner(), Some(2));
/// assert_eq!(auctions.status(id)?.unwrap().price, Some(120));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Auctions<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Auctions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Auctions", f)
    }
}

impl<'e> Auctions<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The shard of auction `id`: its prefix, taken modulo the shard count when the
    /// auction was restored from an engine with more shards (see [`crate::state`]); `None`
    /// for a prefix that cannot be one of this engine's.
    #[inline]
    fn shard(&self, id: AuctionId) -> Option<usize> {
        let prefix = id.shard() as u64;
        (prefix < self.inner.id_prefixes)
            .then(|| crate::runtime::shard_for_prefix(prefix, self.inner.ports.len()))
    }

    fn call<T>(
        &self,
        id: AuctionId,
        build: impl FnOnce(Reply<Result<T, AuctionError>>) -> EconomicsCommand,
    ) -> Ticket<Result<T, AuctionError>> {
        match self.shard(id) {
            Some(shard) => self.inner.call(shard, build),
            None => self.inner.ready(Ok(Err(AuctionError::NotFound { id }))),
        }
    }

    /// Creates an auction; the ticket resolves with its id or the reason for refusal
    /// (`InvalidSpec`, `TooManyAuctions`). The spec is checked on the calling thread
    /// first, so a bad spec costs no message.
    pub fn create(&self, spec: AuctionSpec) -> Ticket<Result<AuctionId, AuctionError>> {
        if let Err(e) = spec.validate(self.inner.config.clock.now()) {
            return self.inner.ready(Ok(Err(AuctionError::InvalidSpec(e))));
        }
        let shard = next_create_shard(self.inner.ports.len());
        self.inner
            .call(shard, |reply| EconomicsCommand::Create { spec, reply })
    }

    /// Places a bid; the ticket resolves with the receipt (which says if the bid closed
    /// the auction: Dutch, buy-now) or the reason for refusal.
    pub fn bid(&self, id: AuctionId, bid: Bid) -> Ticket<Result<BidReceipt, AuctionError>> {
        self.call(id, |reply| EconomicsCommand::Bid { id, bid, reply })
    }

    /// Places a bid without waiting for the answer (the original's `place_bid_async`).
    /// The shard applies it like any bid — a refusal by the auction's rule is an answer
    /// (the bid count does not move) — but the answer is not reported back; the errors returned are an id that cannot exist (`NotFound`)
    /// and engine failures. Waits up to `Config::send_timeout` for mailbox space.
    pub fn bid_nowait(&self, id: AuctionId, bid: Bid) -> Result<(), AuctionError> {
        let shard = self.shard(id).ok_or(AuctionError::NotFound { id })?;
        if self.inner.centralized() {
            // The round trip of the GenServer shape; like the sharded form, the rule's
            // answer is not reported.
            let _rule_answer = self.bid(id, bid).wait()?;
            return Ok(());
        }
        let cmd = EconomicsCommand::Bid {
            id,
            bid,
            reply: Reply::Nobody,
        };
        Ok(self.inner.send(shard, cmd, SendWait::Timeout)?)
    }

    /// Closes the auction now; the ticket resolves with the outcome (winner and price,
    /// or no winner and why).
    pub fn close(&self, id: AuctionId) -> Ticket<Result<Outcome, AuctionError>> {
        self.call(id, |reply| EconomicsCommand::Close { id, reply })
    }

    /// Cancels the auction; refused with `HasBids` once it has a bid.
    pub fn cancel(&self, id: AuctionId) -> Ticket<Result<(), AuctionError>> {
        self.call(id, |reply| EconomicsCommand::Cancel { id, reply })
    }

    /// The auction's published status: `None` if the id is unknown (never created, or
    /// evicted). Sealed kinds show no amount and no leader while open. A snapshot read:
    /// no message, no lock, no allocation.
    #[inline]
    pub fn status(&self, id: AuctionId) -> Result<Option<AuctionStatus>, Error> {
        let Some(shard) = self.shard(id) else {
            self.inner.check_open()?;
            return Ok(None);
        };
        self.inner.rt.check_readable(shard)?;
        self.inner.read(read::AUCTIONS_STATUS);
        if self.inner.centralized() {
            return self
                .inner
                .round_trip(|reply| EconomicsCommand::Status { id, reply });
        }
        let port = &self.inner.ports[shard].economics;
        let Some(status) = port
            .status
            .get(id.to_raw())
            .and_then(|w| AuctionStatus::from_words(&w))
        else {
            return Ok(None);
        };
        Ok(Some(self.with_clock_price(status)))
    }

    /// For an open Dutch auction, the clock price at this moment.
    fn with_clock_price(&self, mut status: AuctionStatus) -> AuctionStatus {
        if status.kind == KindTag::Dutch && status.state == AuctionState::Open {
            let shard =
                crate::runtime::shard_for_prefix(status.id.shard() as u64, self.inner.ports.len());
            let dutch = &self.inner.ports[shard].economics.dutch;
            if let Some(clock) = dutch.get(status.id.to_raw()) {
                let price = dutch_price(&clock, status.created_at, self.inner.config.clock.now());
                status.price = Some(price);
                status.min_bid = Some(price.max(1));
            }
        }
        status
    }

    /// The open auctions that pass `filter`, read from every shard's snapshot.
    pub fn list_active(&self, filter: AuctionFilter) -> Result<Vec<AuctionStatus>, Error> {
        self.inner.rt.check_all_readable()?;
        self.inner.read(read::AUCTIONS_LIST);
        if self.inner.centralized() {
            return self
                .inner
                .round_trip(|reply| EconomicsCommand::ListActive { filter, reply });
        }
        let mut out = Vec::new();
        let mut words = Vec::new();
        for port in &self.inner.ports {
            port.economics.status.scan_into(&mut words);
            out.extend(
                words
                    .iter()
                    .filter_map(|(_, w)| AuctionStatus::from_words(w))
                    .filter(|s| filter.matches(s))
                    .map(|s| self.with_clock_price(s)),
            );
        }
        Ok(out)
    }
}
