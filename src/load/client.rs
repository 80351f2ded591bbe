//! One client thread of a load run: picks operations by the mix, times each call, and
//! keeps what it needs to check the engine's work afterwards.
//!
//! Closed loop (no rate): the next operation starts when the last one returned, and a
//! latency runs from the call. Open loop ([`RunShared::rate`]): the client's `k`-th
//! operation is due at a fixed time ([`Schedule::due`]); the client sleeps until then
//! (waiting on its oldest pending create meanwhile, so a create's answer is seen when it
//! arrives) and the latency runs from the due time, not from the call: a stalled engine
//! delays every operation due during the stall, and each of them counts the delay
//! (coordinated omission corrected). A client behind its schedule sends at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mabeam::auctions::{AuctionError, AuctionId, AuctionKind, AuctionSpec, Bid};
use mabeam::pricing::PricingInput;
use mabeam::{EngineHandle, Error, Mode, Ticket};

use super::args::RunLength;
use super::cpu;
use super::histogram::Histogram;
use super::mix::{Mix, Op};
use super::rng::SplitMix64;

/// Market categories (market keys and auction categories `0..CATEGORIES`).
pub const CATEGORIES: u64 = 16;
/// Reserve of every load auction.
pub const RESERVE: u64 = 100;
/// Minimum increment of every load auction.
pub const INCREMENT: u64 = 5;
/// How many of its most recent auctions a client bids on.
pub const WINDOW: usize = 8;
/// One bid in this many is deliberately below the minimum (a refusal by the rule).
pub const LOW_BID_ONE_IN: u64 = 16;
/// Most creates a client keeps in flight (sent, answer not yet taken): a client sends a
/// create and goes on with its mix, taking answers as they arrive; the next create
/// beyond this many waits for the oldest answer.
pub const CREATES_IN_FLIGHT: usize = 32;
/// Open loop: a client waits for a due time this far away or more by sleeping; for a
/// nearer one it yields the core until then (a sleep and its wake cost several µs).
pub const SLEEP_AT_LEAST: Duration = Duration::from_micros(20);
/// A client publishes its progress every this many operations.
const PROGRESS_EVERY: u64 = 64;

/// The seller id of client `client` (never equal to a bidder id).
pub fn seller_id(client: usize) -> u64 {
    client as u64 + 1
}

/// The bidder id of client `client`: bidders and sellers are disjoint, so no bid is
/// refused as the seller's own.
pub fn bidder_id(client: usize) -> u64 {
    (1 << 32) + client as u64
}

/// The spec of a load auction: English, sold by `client`, in `category`, no deadline
/// (so it stays open and is still there to be counted after the run).
pub fn auction_spec(client: usize, category: u64) -> AuctionSpec {
    AuctionSpec {
        kind: AuctionKind::English {
            reserve: RESERVE,
            min_increment: INCREMENT,
        },
        seller: seller_id(client),
        category: category as u32,
        deadline: None,
        buy_now: None,
    }
}

/// Why an operation did not succeed (the discriminant indexes [`Failures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The engine's mailbox stayed full for the whole send timeout.
    Busy,
    /// The engine had shut down.
    ShutDown,
    /// Another engine error (a handler failure, a timeout).
    Engine,
    /// A create refused by the engine's rules (e.g. too many open auctions).
    Refused,
    /// A bid refused before it reached its auction (an id the engine does not know).
    BidRefused,
    /// An acknowledged create or sent bid that the check after the run did not find
    /// applied (lost, or applied other than the rule says).
    Unconfirmed,
    /// A read that found nothing, though its key was written before the clock started.
    Missing,
}

impl Failure {
    /// Every kind, in report order.
    pub const ALL: [Failure; 7] = [
        Failure::Busy,
        Failure::ShutDown,
        Failure::Engine,
        Failure::Refused,
        Failure::BidRefused,
        Failure::Unconfirmed,
        Failure::Missing,
    ];

    /// A short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Busy => "busy",
            Failure::ShutDown => "shut down",
            Failure::Engine => "engine error",
            Failure::Refused => "create refused",
            Failure::BidRefused => "bid refused (unknown auction)",
            Failure::Unconfirmed => "not found applied by the check",
            Failure::Missing => "read missed",
        }
    }

    /// The key in the JSON's `failures` object.
    pub fn key(self) -> &'static str {
        match self {
            Failure::Busy => "busy",
            Failure::ShutDown => "shut_down",
            Failure::Engine => "engine_error",
            Failure::Refused => "create_refused",
            Failure::BidRefused => "bid_refused",
            Failure::Unconfirmed => "unconfirmed",
            Failure::Missing => "read_missed",
        }
    }

    fn of_engine(e: Error) -> Failure {
        match e {
            Error::Busy => Failure::Busy,
            Error::ShutDown => Failure::ShutDown,
            _ => Failure::Engine,
        }
    }
}

/// Commands a call that failed with engine error `e` made a shard apply: a handler
/// failure (`Internal`) was applied and counted; a refused send or a shutdown was not.
fn applied_despite(e: Error) -> u64 {
    u64::from(matches!(e, Error::Internal(_)))
}

/// Counts of failures by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures([u64; Failure::ALL.len()]);

impl Failures {
    /// Counts one failure of `kind`.
    pub fn add(&mut self, kind: Failure, n: u64) {
        self.0[kind as usize] += n;
    }

    /// The count of `kind`.
    pub fn get(&self, kind: Failure) -> u64 {
        self.0[kind as usize]
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Failures) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// What one client did.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// Latency of every operation, by [`Op::index`].
    pub latency: [Histogram; 4],
    /// Operations that succeeded as far as the client can tell, by [`Op::index`]. A
    /// sharded bid counts here once sent; the check after the run confirms it.
    pub succeeded: [u64; 4],
    /// Operations that failed, by reason.
    pub failures: Failures,
    /// Commands this client made the engine apply (each create, each bid sent, and in
    /// the centralized shape each read, which is a round trip there).
    pub commands: u64,
    /// Auctions this client created (including its setup auction).
    pub auctions: u64,
    /// Bids sent.
    pub bids: u64,
    /// Bids the auctions' rule had to accept (the client's own auctions only get its own
    /// bids, so it knows each auction's minimum exactly).
    pub bids_to_accept: u64,
    /// When the client started its first operation (right after the start barrier).
    pub started: Instant,
    /// When the client finished its last operation and had every create's answer.
    pub finished: Instant,
    /// CPU time the client's thread used from `started` to `finished` (`None`: this
    /// platform has no thread CPU clock).
    pub cpu: Option<Duration>,
}

/// What every client of a run shares.
pub struct RunShared<'a> {
    /// The engine under test (a handle, so the soak can shut the engine down while
    /// the clients run).
    pub engine: &'a EngineHandle,
    /// The operation mix.
    pub mix: Mix,
    /// How long each client runs.
    pub length: RunLength,
    /// The run's seed.
    pub seed: u64,
    /// Pricing inputs calculated before the clock started.
    pub pricing: &'a [PricingInput],
    /// Every client and the coordinator wait here, so they all start together.
    pub start: &'a Barrier,
    /// `None` (the load tool): auctions have no deadline and stay open. `Some(ns)` (the
    /// soak): each auction's deadline is `ns` after its create on the engine's clock,
    /// so it ends, is retained and evicted, and memory stays bounded.
    pub auction_ttl: Option<u64>,
    /// `None`: closed loop. `Some(n)`: open loop, `n` operations per second offered by
    /// all `clients` together.
    pub rate: Option<u64>,
    /// Client threads of the run (the open loop's rate is spread over them).
    pub clients: usize,
}

/// The open loop's send times of one client: every `interval`, shifted by the client's
/// share of one interval so the clients' sends interleave.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// When operation 0 is due.
    first: Instant,
    /// Nanoseconds between two operations of this client.
    interval_ns: f64,
}

impl Schedule {
    /// The schedule of client `index` of `clients` offering `rate` operations per
    /// second together, from `start`.
    pub fn new(rate: u64, clients: usize, index: usize, start: Instant) -> Schedule {
        let interval_ns = clients as f64 * 1e9 / rate.max(1) as f64;
        let phase = interval_ns * index as f64 / clients.max(1) as f64;
        Schedule {
            first: start + Duration::from_nanos(phase as u64),
            interval_ns,
        }
    }

    /// When operation `k` is due.
    pub fn due(&self, k: u64) -> Instant {
        let offset = k as f64 * self.interval_ns;
        // Beyond the clock's range only after centuries of schedule: saturate.
        self.first
            .checked_add(Duration::from_nanos(offset.min(u64::MAX as f64) as u64))
            .unwrap_or(self.first)
    }
}

/// Lowers the calling thread's timer slack to 1 ns (Linux; elsewhere nothing), so an
/// open-loop client's sleep ends close to the due time instead of up to the default
/// 50 µs after it (that lateness would count in every latency).
fn fine_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_TIMERSLACK, n) takes plain integers, changes only the
    // calling thread's timer slack and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// One of the client's recent auctions and the least amount its rule accepts next.
#[derive(Debug, Clone, Copy)]
struct Recent {
    id: AuctionId,
    minimum: u64,
}

/// A create whose answer has not been taken yet.
struct PendingCreate {
    ticket: Ticket<Result<AuctionId, AuctionError>>,
    sent: Instant,
}

/// A client's state during the run.
struct Client<'a> {
    index: usize,
    centralized: bool,
    shared: &'a RunShared<'a>,
    rng: SplitMix64,
    /// Up to [`WINDOW`] recent auctions; `oldest` is the next to replace when full.
    recent: Vec<Recent>,
    oldest: usize,
    /// Creates sent and not yet answered, at most [`CREATES_IN_FLIGHT`].
    pending: VecDeque<PendingCreate>,
    report: ClientReport,
}

/// Runs client `index` to the end of the run, or until the engine shuts down (the
/// soak's end). `first_auction` was created for it
/// before the clock started, so it can bid from its first operation. `progress` gets
/// the client's completed operation count now and then.
pub fn run_client(
    shared: &RunShared<'_>,
    index: usize,
    first_auction: AuctionId,
    progress: &AtomicU64,
) -> ClientReport {
    let mut client = Client {
        index,
        centralized: shared.engine.mode() == Mode::Centralized,
        shared,
        rng: SplitMix64::for_client(shared.seed, index),
        recent: Vec::with_capacity(WINDOW),
        oldest: 0,
        pending: VecDeque::with_capacity(CREATES_IN_FLIGHT + 1),
        report: ClientReport {
            latency: Default::default(),
            succeeded: [0; 4],
            failures: Failures::default(),
            commands: 0,
            auctions: 1,
            bids: 0,
            bids_to_accept: 0,
            started: Instant::now(),
            finished: Instant::now(),
            cpu: None,
        },
    };
    client.recent.push(Recent {
        id: first_auction,
        minimum: RESERVE,
    });

    if shared.rate.is_some() {
        fine_timer_slack();
    }
    shared.start.wait();
    client.report.started = Instant::now();
    let cpu_at_start = cpu::this_thread();
    let schedule = shared
        .rate
        .map(|rate| Schedule::new(rate, shared.clients, index, client.report.started));
    let deadline = match shared.length {
        RunLength::Duration(d) => Some(client.report.started + d),
        RunLength::Ops(_) => None,
    };
    let limit = match shared.length {
        RunLength::Ops(n) => n,
        RunLength::Duration(_) => u64::MAX,
    };
    let mut done = 0u64;
    while done < limit {
        let due = match &schedule {
            Some(schedule) => {
                let due = schedule.due(done);
                if deadline.is_some_and(|d| due >= d) {
                    break;
                }
                client.pace_until(due);
                Some(due)
            }
            None => None,
        };
        let op = shared.mix.pick(client.rng.next_u64());
        let ended = match op {
            Op::CreateAuction => client.create(due),
            Op::PlaceBid => client.bid(due),
            Op::GetMarketState => client.read_market(due),
            Op::GetCachedPricing => client.read_pricing(due),
        };
        client.take_answers(ended);
        done += 1;
        if done % PROGRESS_EVERY == 0 {
            progress.store(done, Ordering::Relaxed);
        }
        if deadline.is_some_and(|d| ended >= d) || shared.engine.is_shut_down() {
            break;
        }
    }
    while !client.pending.is_empty() {
        client.wait_oldest();
    }
    progress.store(done, Ordering::Relaxed);
    client.report.finished = Instant::now();
    client.report.cpu = cpu::this_thread()
        .zip(cpu_at_start)
        .map(|(end, start)| end.saturating_sub(start));
    client.report
}

impl Client<'_> {
    /// Records one operation's latency and outcome.
    fn record(&mut self, op: Op, began: Instant, ended: Instant, outcome: Result<(), Failure>) {
        let nanos = u64::try_from((ended - began).as_nanos()).unwrap_or(u64::MAX);
        self.report.latency[op.index()].record(nanos);
        match outcome {
            Ok(()) => self.report.succeeded[op.index()] += 1,
            Err(kind) => self.report.failures.add(kind, 1),
        }
    }

    /// Open loop: waits until `due`, taking the answers of pending creates as they
    /// arrive meanwhile (or sleeping when none is pending).
    fn pace_until(&mut self, due: Instant) {
        loop {
            let now = Instant::now();
            if now >= due {
                return;
            }
            let left = due - now;
            match self.pending.front_mut() {
                Some(oldest) => match oldest.ticket.wait_timeout(left) {
                    // Not answered by `due`: the ticket stays pending.
                    Err(Error::Timeout) => {}
                    result => {
                        let sent = oldest.sent;
                        self.pending.pop_front();
                        self.created(sent, Instant::now(), result);
                    }
                },
                // A sleep costs a context switch and a wake (several µs here); for a
                // shorter wait the client yields the core until the due time instead.
                None if left >= SLEEP_AT_LEAST => std::thread::sleep(left),
                None => std::thread::yield_now(),
            }
        }
    }

    /// Sends a create; waits for the oldest create's answer if more than
    /// [`CREATES_IN_FLIGHT`] are pending. Returns when the client is done with it.
    /// `due`: the open loop's due time, from which the latency runs.
    fn create(&mut self, due: Option<Instant>) -> Instant {
        let mut spec = auction_spec(self.index, self.rng.below(CATEGORIES));
        if let Some(ttl) = self.shared.auction_ttl {
            spec.deadline = Some(self.shared.engine.clock().now().saturating_add(ttl));
        }
        let sent = due.unwrap_or_else(Instant::now);
        let ticket = self.shared.engine.auctions().create(spec);
        self.pending.push_back(PendingCreate { ticket, sent });
        if self.pending.len() > CREATES_IN_FLIGHT {
            self.wait_oldest()
        } else {
            Instant::now()
        }
    }

    /// Takes every create answer that has arrived, as seen at `now`.
    fn take_answers(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            if let Some(result) = self.pending[i].ticket.try_take() {
                let sent = self.pending[i].sent;
                self.pending.remove(i);
                self.created(sent, now, result);
            } else {
                i += 1;
            }
        }
    }

    /// Blocks until the oldest pending create is answered and takes the answer.
    fn wait_oldest(&mut self) -> Instant {
        let Some(PendingCreate { ticket, sent }) = self.pending.pop_front() else {
            return Instant::now();
        };
        let result = ticket.wait();
        let now = Instant::now();
        self.created(sent, now, result);
        now
    }

    /// Accounts for a create sent at `sent` and answered by `now`.
    fn created(
        &mut self,
        sent: Instant,
        now: Instant,
        result: Result<Result<AuctionId, AuctionError>, Error>,
    ) {
        let outcome = match result {
            Ok(Ok(id)) => {
                self.report.commands += 1;
                self.report.auctions += 1;
                let entry = Recent {
                    id,
                    minimum: RESERVE,
                };
                if self.recent.len() < WINDOW {
                    self.recent.push(entry);
                } else {
                    self.recent[self.oldest] = entry;
                    self.oldest = (self.oldest + 1) % WINDOW;
                }
                Ok(())
            }
            Err(e) => {
                self.report.commands += applied_despite(e);
                Err(Failure::of_engine(e))
            }
            Ok(Err(_refused)) => {
                self.report.commands += 1;
                Err(Failure::Refused)
            }
        };
        self.record(Op::CreateAuction, sent, now, outcome);
    }

    /// Bids on one of the recent auctions without waiting. In both shapes the rule's
    /// verdict is not reported (centralized makes it a round trip, but fire-and-forget
    /// all the same); the check after the run confirms every bid was applied and that
    /// the rule accepted exactly the bids it had to.
    fn bid(&mut self, due: Option<Instant>) -> Instant {
        let slot = self.rng.below(self.recent.len() as u64) as usize;
        let low = self.rng.below(LOW_BID_ONE_IN) == 0;
        let target = self.recent[slot];
        let amount = if low {
            target.minimum - 1
        } else {
            target.minimum + self.rng.below(INCREMENT + 3)
        };
        let bid = Bid {
            bidder: bidder_id(self.index),
            amount,
            bundle: 0,
        };
        let began = due.unwrap_or_else(Instant::now);
        let result = self.shared.engine.auctions().bid_nowait(target.id, bid);
        let ended = Instant::now();
        let outcome = match result {
            Ok(()) => {
                self.report.commands += 1;
                self.report.bids += 1;
                if !low {
                    self.report.bids_to_accept += 1;
                    self.recent[slot].minimum = amount + INCREMENT;
                }
                Ok(())
            }
            Err(AuctionError::Engine(e)) => {
                self.report.commands += applied_despite(e);
                Err(Failure::of_engine(e))
            }
            Err(_) => Err(Failure::BidRefused),
        };
        self.record(Op::PlaceBid, began, ended, outcome);
        ended
    }

    /// Reads the market state of a random category (a snapshot read when sharded).
    fn read_market(&mut self, due: Option<Instant>) -> Instant {
        let key = self.rng.below(CATEGORIES);
        let began = due.unwrap_or_else(Instant::now);
        let result = self.shared.engine.market().state(key);
        let ended = Instant::now();
        let outcome = self.read_outcome(result.map(|s| s.is_some()));
        self.record(Op::GetMarketState, began, ended, outcome);
        ended
    }

    /// Reads the cached pricing of a random input (a snapshot read when sharded).
    fn read_pricing(&mut self, due: Option<Instant>) -> Instant {
        let inputs = self.shared.pricing;
        let input = &inputs[self.rng.below(inputs.len() as u64) as usize];
        let began = due.unwrap_or_else(Instant::now);
        let result = self.shared.engine.pricing().cached(input);
        let ended = Instant::now();
        let outcome = self.read_outcome(result.map(|p| p.is_some()));
        self.record(Op::GetCachedPricing, began, ended, outcome);
        ended
    }

    /// The outcome of a read that found (`Ok(true)`) or missed (`Ok(false)`) its key.
    fn read_outcome(&mut self, result: Result<bool, Error>) -> Result<(), Failure> {
        match result {
            Ok(found) => {
                // In the centralized shape a read is a round trip: one command.
                self.report.commands += u64::from(self.centralized);
                if found {
                    Ok(())
                } else {
                    Err(Failure::Missing)
                }
            }
            Err(e) => {
                if self.centralized {
                    self.report.commands += applied_despite(e);
                }
                Err(Failure::of_engine(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sellers_and_bidders_are_disjoint() {
        for c in [0, 1, 49, 4095] {
            for d in [0, 1, 49, 4095] {
                assert_ne!(seller_id(c), bidder_id(d));
            }
        }
    }

    #[test]
    fn failure_discriminants_index_all() {
        for (i, kind) in Failure::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i);
        }
    }

    #[test]
    fn failures_count_by_kind() {
        let mut f = Failures::default();
        f.add(Failure::Busy, 2);
        f.add(Failure::Missing, 1);
        let mut g = Failures::default();
        g.add(Failure::Busy, 1);
        g.merge(&f);
        assert_eq!(g.get(Failure::Busy), 3);
        assert_eq!(g.get(Failure::Missing), 1);
        assert_eq!(g.get(Failure::Refused), 0);
        assert_eq!(g.total(), 4);
    }

    #[test]
    fn the_schedule_spreads_the_rate_over_the_clients() {
        let start = Instant::now();
        // 4 clients offering 1000 ops/s: each every 4 ms, client 1 a quarter later.
        let s0 = Schedule::new(1000, 4, 0, start);
        let s1 = Schedule::new(1000, 4, 1, start);
        assert_eq!(s0.due(0), start);
        assert_eq!(s0.due(3) - start, Duration::from_millis(12));
        assert_eq!(s1.due(0) - start, Duration::from_millis(1));
        assert_eq!(s1.due(2) - start, Duration::from_millis(9));
        // Over the clients, one operation per millisecond.
        let mut dues: Vec<Duration> = (0..4)
            .flat_map(|i| {
                let s = Schedule::new(1000, 4, i, start);
                (0..3).map(move |k| s.due(k) - start)
            })
            .collect();
        dues.sort();
        let expected: Vec<Duration> = (0..12).map(Duration::from_millis).collect();
        assert_eq!(dues, expected);
    }

    #[test]
    fn the_load_spec_is_valid() {
        assert_eq!(auction_spec(3, 15).validate(0), Ok(()));
        assert_eq!(auction_spec(3, 15).category, 15);
    }
}
