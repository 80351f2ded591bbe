//! All the auctions of one shard ([`AuctionBook`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;

use super::{
    Amount, Auction, AuctionError, AuctionId, AuctionSpec, AuctionState, AuctionStatus, Bid,
    BidReceipt, KindTag, Outcome,
};

/// Bounds of an [`AuctionBook`] (`#[non_exhaustive]`: start from
/// [`BookLimits::default()`] and use the `with_*` setters or assign fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BookLimits {
    /// Most open auctions; a create beyond is refused with
    /// [`AuctionError::TooManyAuctions`]. 0 refuses every create.
    pub max_open: usize,
    /// Most ended auctions kept for status reads; when an auction ends beyond this, the
    /// oldest-ended one (smallest `closed_at`, which may be the auction that just ended
    /// if its deadline was applied late) is evicted at once. 0 evicts every auction as it
    /// ends.
    pub max_retained: usize,
    /// How long an ended auction is kept, from its end (its `closed_at`: for a deadline
    /// expiry, the deadline itself, however late it was applied);
    /// [`AuctionBook::advance`] evicts older ones.
    pub retention_nanos: u64,
}

impl BookLimits {
    /// Sets [`max_open`](Self::max_open).
    #[must_use]
    pub fn with_max_open(mut self, value: usize) -> Self {
        self.max_open = value;
        self
    }

    /// Sets [`max_retained`](Self::max_retained).
    #[must_use]
    pub fn with_max_retained(mut self, value: usize) -> Self {
        self.max_retained = value;
        self
    }

    /// Sets [`retention_nanos`](Self::retention_nanos).
    #[must_use]
    pub fn with_retention_nanos(mut self, value: u64) -> Self {
        self.retention_nanos = value;
        self
    }
}

impl Default for BookLimits {
    /// 65 536 open auctions, 4 096 retained ended ones, kept for 60 s.
    fn default() -> Self {
        BookLimits {
            max_open: 1 << 16,
            max_retained: 4096,
            retention_nanos: 60_000_000_000,
        }
    }
}

/// Something that happened in a book, in the order it happened, for the engine to
/// publish (snapshot records and the `auction.*` events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuctionEvent {
    /// An auction was created (its status at creation).
    Created(AuctionStatus),
    /// A bid was accepted.
    Bid {
        /// The auction.
        id: AuctionId,
        /// The bidder.
        bidder: u64,
        /// The amount, `None` for sealed kinds (hidden until close).
        amount: Option<Amount>,
    },
    /// An auction ended with an outcome: closed, closed by a bid, or at its deadline
    /// (with a winner, or expired without one: see [`Outcome::cause`]).
    Closed {
        /// The auction.
        id: AuctionId,
        /// How it ended.
        outcome: Outcome,
        /// Its status as it ended. Retention may evict the auction in the same call (an
        /// `Evicted` event follows), so a consumer takes the final status and the
        /// category from here, not from the book.
        status: AuctionStatus,
    },
    /// An auction was cancelled.
    Cancelled {
        /// The auction.
        id: AuctionId,
        /// Its status as it ended (taken from here for the reason given at
        /// [`AuctionEvent::Closed`]).
        status: AuctionStatus,
    },
    /// An ended auction was dropped by retention; its id is unknown from now on (the
    /// engine removes its snapshot record).
    Evicted {
        /// The auction.
        id: AuctionId,
    },
}

/// The auctions one shard owns: a map by id, a deadline heap and a bounded retention of
/// ended auctions.
///
/// Every mutating call takes `now` (non-decreasing) and an `out` vector it appends
/// [`AuctionEvent`]s to, in order — also when it returns an error, since a call first
/// applies a due deadline (a bid after the deadline pushes the `Closed` event of the
/// expiry, then fails with [`AuctionError::NotOpen`]).
///
/// Invariants:
/// - at most `max_open` open auctions and at most `max_retained` ended ones; ended
///   auctions are evicted oldest-ended first, by their `closed_at` (by count at once, by
///   age in [`advance`](Self::advance)), so memory is bounded by the limits. A deadline
///   expiry's `closed_at` is the deadline, also when it is applied late, after younger
///   auctions ended: it is then evicted before them, possibly in the call that ends it
///   (its `Closed` event carries its final status for that reason);
/// - the deadline heap holds an entry for every open auction with a deadline, plus stale
///   entries (auctions that ended early) that are skipped when popped; its top is never
///   stale (so [`next_deadline`](Self::next_deadline) is exact), and it is compacted when
///   stale entries outnumber live ones, so it stays within `2 * max_open + 64` entries.
///
/// ```
/// use mabeam_shards::auction::{
///     AuctionBook, AuctionEvent, AuctionId, AuctionKind, AuctionSpec, Bid, BookLimits,
/// };
///
/// const ID: AuctionId = AuctionId::new(0, 7);
/// let mut book = AuctionBook::new(BookLimits::default());
/// let mut events = Vec::new();
/// let spec = AuctionSpec {
///     kind: AuctionKind::SealedFirstPrice { reserve: 10 },
///     seller: 1, category: 0, deadline: Some(500), buy_now: None,
/// };
/// book.create(ID, spec, 0, &mut events)?;
/// book.bid(ID, Bid { bidder: 2, amount: 12, bundle: 0 }, 100, &mut events)?;
/// assert_eq!(book.next_deadline(), Some(500));
/// book.advance(500, &mut events);
/// assert!(matches!(events.last(), Some(AuctionEvent::Closed { id: ID, .. })));
/// # Ok::<(), mabeam_shards::auction::AuctionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct AuctionBook {
    limits: BookLimits,
    /// Boxed: an `Auction` is 264 bytes, and a growing map moves every value it holds on
    /// each rehash, on the shard thread, with every command behind it waiting. Boxed, a
    /// rehash moves 16-byte entries (BENCHMARKS.md, "create_auction latency").
    auctions: HashMap<AuctionId, Box<Auction>>,
    deadlines: BinaryHeap<Reverse<(u64, AuctionId)>>,
    /// The retained ended auctions: a min-heap of `(closed_at, id)` with exactly one
    /// entry per ended auction in `auctions`, at most `max_retained` after every call.
    /// Its top is the oldest-ended auction by the documented end time (`closed_at`, the
    /// deadline for a deadline expiry; the smaller id among equal times), which is the
    /// next one retention evicts — not the one whose end was applied first.
    ended: BinaryHeap<Reverse<(u64, AuctionId)>>,
    open: usize,
}

impl AuctionBook {
    /// An empty book with these bounds.
    pub fn new(limits: BookLimits) -> Self {
        Self::with_reserve(limits, 0)
    }

    /// An empty book with these bounds and the room for its first `reserve` auctions
    /// (at most `max_open + max_retained`) allocated now: its map does not grow, and so
    /// does not stop the shard to move its entries, until more are held; its deadline and
    /// retention heaps get the same room. An auction itself is still allocated when it is
    /// created.
    pub fn with_reserve(limits: BookLimits, reserve: usize) -> Self {
        let reserve = reserve.min(limits.max_open.saturating_add(limits.max_retained));
        AuctionBook {
            limits,
            auctions: HashMap::with_capacity(reserve),
            deadlines: BinaryHeap::with_capacity(reserve.min(limits.max_open)),
            ended: BinaryHeap::with_capacity(reserve.min(limits.max_retained)),
            open: 0,
        }
    }

    /// Entries the map holds before it grows (for the reserve's test).
    #[cfg(test)]
    pub(super) fn map_capacity(&self) -> usize {
        self.auctions.capacity()
    }

    /// The bounds of this book.
    pub fn limits(&self) -> BookLimits {
        self.limits
    }

    /// Creates auction `id` at `now`. Refused if the id is present (open or retained),
    /// the spec is invalid, or `max_open` auctions are open. Pushes `Created`.
    pub fn create(
        &mut self,
        id: AuctionId,
        spec: AuctionSpec,
        now: u64,
        out: &mut Vec<AuctionEvent>,
    ) -> Result<AuctionStatus, AuctionError> {
        if self.auctions.contains_key(&id) {
            return Err(AuctionError::DuplicateId { id });
        }
        if self.open >= self.limits.max_open {
            return Err(AuctionError::TooManyAuctions {
                limit: self.limits.max_open,
            });
        }
        let auction = Auction::new(id, spec, now)?;
        let status = auction.status(now);
        self.insert_open(auction);
        out.push(AuctionEvent::Created(status));
        Ok(status)
    }

    /// Places a bid (see [`Auction::bid`]). Pushes `Bid` and, if the bid ended the
    /// auction, `Closed` (and `Evicted` if retention drops an auction).
    pub fn bid(
        &mut self,
        id: AuctionId,
        bid: Bid,
        now: u64,
        out: &mut Vec<AuctionEvent>,
    ) -> Result<BidReceipt, AuctionError> {
        let auction = self
            .auctions
            .get_mut(&id)
            .ok_or(AuctionError::NotFound { id })?;
        let was_open = auction.state() == AuctionState::Open;
        let sealed = auction.spec().kind.tag().is_sealed();
        let result = auction.bid(bid, now);
        if result.is_ok() {
            out.push(AuctionEvent::Bid {
                id,
                bidder: bid.bidder,
                amount: (!sealed).then_some(bid.amount),
            });
        }
        self.after_call(id, was_open, out);
        result
    }

    /// Closes an auction (see [`Auction::close`]). Pushes `Closed`.
    pub fn close(
        &mut self,
        id: AuctionId,
        now: u64,
        out: &mut Vec<AuctionEvent>,
    ) -> Result<Outcome, AuctionError> {
        let auction = self
            .auctions
            .get_mut(&id)
            .ok_or(AuctionError::NotFound { id })?;
        let was_open = auction.state() == AuctionState::Open;
        let result = auction.close(now);
        self.after_call(id, was_open, out);
        result
    }

    /// Cancels an auction (see [`Auction::cancel`]). Pushes `Cancelled`.
    pub fn cancel(
        &mut self,
        id: AuctionId,
        now: u64,
        out: &mut Vec<AuctionEvent>,
    ) -> Result<(), AuctionError> {
        let auction = self
            .auctions
            .get_mut(&id)
            .ok_or(AuctionError::NotFound { id })?;
        let was_open = auction.state() == AuctionState::Open;
        let result = auction.cancel(now);
        self.after_call(id, was_open, out);
        result
    }

    /// Applies every deadline `<= now` (in deadline order, pushing `Closed`), then evicts
    /// ended auctions older than `retention_nanos` (pushing `Evicted`).
    pub fn advance(&mut self, now: u64, out: &mut Vec<AuctionEvent>) {
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(auction) = self.auctions.get_mut(&id) {
                if auction.next_deadline() == Some(deadline) {
                    auction.expire_if_due(now);
                    self.after_call(id, true, out);
                }
            }
        }
        while let Some(&Reverse((ended_at, id))) = self.ended.peek() {
            if ended_at.saturating_add(self.limits.retention_nanos) > now {
                break;
            }
            self.ended.pop();
            self.evict(id, out);
        }
        self.prune_deadline_top();
    }

    /// The public view of an auction at `now` ([`AuctionError::NotFound`] if unknown or
    /// evicted). Does not apply a due deadline: [`advance`](Self::advance) does.
    pub fn status(&self, id: AuctionId, now: u64) -> Result<AuctionStatus, AuctionError> {
        self.auctions
            .get(&id)
            .map(|a| a.status(now))
            .ok_or(AuctionError::NotFound { id })
    }

    /// The auction itself, if present.
    pub fn get(&self, id: AuctionId) -> Option<&Auction> {
        self.auctions.get(&id).map(|a| &**a)
    }

    /// Every auction present (open and retained), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Auction> + '_ {
        self.auctions.values().map(|a| &**a)
    }

    /// Statuses of the open auctions at `now`, optionally of one kind or category, in no
    /// particular order (the `list_active` of the engine).
    pub fn list_open(
        &self,
        now: u64,
        kind: Option<KindTag>,
        category: Option<u32>,
    ) -> impl Iterator<Item = AuctionStatus> + '_ {
        self.auctions
            .values()
            .filter(move |a| {
                a.state() == AuctionState::Open
                    && kind.map_or(true, |k| a.spec().kind.tag() == k)
                    && category.map_or(true, |c| a.spec().category == c)
            })
            .map(move |a| a.status(now))
    }

    /// The earliest deadline of an open auction (exact: the heap's top is never stale).
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines
            .peek()
            .map(|Reverse((deadline, _))| *deadline)
    }

    /// Number of auctions present (open and retained).
    pub fn len(&self) -> usize {
        self.auctions.len()
    }

    /// True if no auction is present.
    pub fn is_empty(&self) -> bool {
        self.auctions.is_empty()
    }

    /// Number of open auctions.
    pub fn open_count(&self) -> usize {
        self.open
    }

    /// Number of ended auctions retained.
    pub fn retained_count(&self) -> usize {
        self.ended.len()
    }

    /// Number of entries in the deadline heap, stale ones included (for resource gauges).
    pub fn deadline_entries(&self) -> usize {
        self.deadlines.len()
    }

    /// Puts an auction built elsewhere into the book (restoring an export, moving
    /// auctions between shards), open or ended, under the same bounds as
    /// [`create`](Self::create). An ended auction joins the retention by its
    /// `closed_at` (in any order) and may evict the oldest-ended one, itself included
    /// (pushing `Evicted`).
    pub fn adopt(
        &mut self,
        auction: Auction,
        out: &mut Vec<AuctionEvent>,
    ) -> Result<(), AuctionError> {
        let id = auction.id();
        if self.auctions.contains_key(&id) {
            return Err(AuctionError::DuplicateId { id });
        }
        match auction.ended_at() {
            None => {
                if self.open >= self.limits.max_open {
                    return Err(AuctionError::TooManyAuctions {
                        limit: self.limits.max_open,
                    });
                }
                self.insert_open(auction);
            }
            Some(ended_at) => {
                self.auctions.insert(id, Box::new(auction));
                self.ended.push(Reverse((ended_at, id)));
                self.evict_by_count(out);
            }
        }
        Ok(())
    }

    fn insert_open(&mut self, auction: Auction) {
        let id = auction.id();
        if let Some(deadline) = auction.next_deadline() {
            self.deadlines.push(Reverse((deadline, id)));
        }
        self.auctions.insert(id, Box::new(auction));
        self.open += 1;
        self.compact_deadlines();
    }

    /// After a call on `id`: if it ended the auction, push its event, retire it and keep
    /// the bounds.
    fn after_call(&mut self, id: AuctionId, was_open: bool, out: &mut Vec<AuctionEvent>) {
        let Some(auction) = self.auctions.get(&id) else {
            return;
        };
        if !was_open || auction.state() == AuctionState::Open {
            return;
        }
        let ended_at = auction.ended_at().unwrap_or(0);
        let status = auction.status(ended_at);
        out.push(match auction.outcome() {
            Some(outcome) => AuctionEvent::Closed {
                id,
                outcome: outcome.clone(),
                status,
            },
            None => AuctionEvent::Cancelled { id, status },
        });
        self.open -= 1;
        self.ended.push(Reverse((ended_at, id)));
        self.evict_by_count(out);
        self.prune_deadline_top();
        self.compact_deadlines();
    }

    fn evict_by_count(&mut self, out: &mut Vec<AuctionEvent>) {
        while self.ended.len() > self.limits.max_retained {
            if let Some(Reverse((_, id))) = self.ended.pop() {
                self.evict(id, out);
            }
        }
    }

    fn evict(&mut self, id: AuctionId, out: &mut Vec<AuctionEvent>) {
        if self.auctions.remove(&id).is_some() {
            out.push(AuctionEvent::Evicted { id });
        }
    }

    fn is_live(&self, deadline: u64, id: AuctionId) -> bool {
        self.auctions
            .get(&id)
            .is_some_and(|a| a.next_deadline() == Some(deadline))
    }

    /// Pops stale entries off the top of the deadline heap.
    fn prune_deadline_top(&mut self) {
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if self.is_live(deadline, id) {
                break;
            }
            self.deadlines.pop();
        }
    }

    /// Rebuilds the heap without stale entries once they outnumber the open auctions
    /// (amortised O(1) per entry).
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() > 2 * self.open + 64 {
            let auctions = &self.auctions;
            self.deadlines.retain(|Reverse((deadline, id))| {
                auctions
                    .get(id)
                    .is_some_and(|a| a.next_deadline() == Some(*deadline))
            });
        }
    }
}
