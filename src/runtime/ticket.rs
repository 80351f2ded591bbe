//! Results of commands: [`Ticket`]s the caller waits on, or messages into a channel the
//! caller owns.
//!
//! A shard answers a command through a [`Reply`]. A reply that is dropped unanswered
//! still resolves its ticket: with [`Error::Internal`] when the drop happens inside a
//! shard handler (the handler panicked), with the refusal ([`Error::Busy`],
//! [`Error::ShutDown`], [`Error::ShardDown`]) when its send was refused, with
//! [`Error::ShardDown`] when its shard died holding it, and with [`Error::ShutDown`]
//! anywhere else. So no ticket ever waits forever.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mabeam_shards::oneshot::{self, Canceled, Completer, WaitError, Waiter};

use crate::telemetry::host::{ticket_created, ticket_dropped, Timing};
use crate::Error;

/// The pending result of a command sent to a shard.
///
/// Wait for it ([`wait`](Self::wait), [`wait_timeout`](Self::wait_timeout)) or poll it
/// ([`try_take`](Self::try_take)). The waiter spins briefly (`Config::ticket_spin`)
/// before it parks, because a park/unpark wake costs several microseconds on a small
/// machine while a shard usually answers in about one. Dropping a ticket does not cancel
/// its command.
///
/// # Two levels of errors: `wait()??`
///
/// A service call that can be refused by its rule returns
/// `Ticket<Result<T, ServiceError>>`, so waiting gives `Result<Result<T, ServiceError>,
/// Error>`:
///
/// - the **outer** `Err(`[`Error`]`)` is the engine's verdict on the *call*: it was not
///   carried out, or its answer cannot be known — [`Error::ShutDown`], [`Error::Busy`]
///   (refused for room), [`Error::ShardDown`], [`Error::Internal`] (the handler
///   panicked), [`Error::Timeout`] (from [`wait_timeout`](Self::wait_timeout), the
///   ticket stays usable), [`Error::AlreadyTaken`];
/// - the **inner** `Err(ServiceError)` is the service's answer to a call it *did*
///   carry out: a bid under the minimum, an unknown auction, a duplicate name. It never
///   holds an engine failure (no `ServiceError::Engine` comes through a ticket).
///
/// So `ticket.wait()??` in a function returning `Result<_, Box<dyn std::error::Error>>`
/// (or any error type with `From<Error>` and `From<ServiceError>`) propagates both; and
/// because every service error converts `From<Error>`, a function returning the
/// service's error type can also write `ticket.wait()??`. Match the two levels apart when
/// they call for different handling — retry on `Busy`, report a refused bid:
///
/// ```
/// use mabeam::auctions::{AuctionError, AuctionKind, AuctionSpec, Bid};
/// use mabeam::{Config, Engine, Error};
///
/// let engine = Engine::start(Config::default().with_shards(1).with_pin_threads(false))?;
/// let spec = AuctionSpec {
///     kind: AuctionKind::English { reserve: 100, min_increment: 5 },
///     seller: 1, category: 3, deadline: None, buy_now: None,
/// };
/// let id = engine.auctions().create(spec).wait()??; // both levels at once
/// match engine.auctions().bid(id, Bid { bidder: 2, amount: 50, bundle: 0 }).wait() {
///     Ok(Ok(receipt)) => println!("accepted: {receipt:?}"),
///     Ok(Err(AuctionError::BidTooLow { minimum })) => assert_eq!(minimum, 100), // the rule
///     Ok(Err(other)) => return Err(other.into()),
///     Err(Error::Busy) => { /* the engine: retry later */ }
///     Err(engine_error) => return Err(engine_error.into()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Calls that answer at once (snapshot reads, fire-and-forget writes) have one level:
/// `Result<T, ServiceError>` with engine failures as `ServiceError::Engine(e)`, or
/// `Result<T, Error>` for reads that no rule can refuse. See the crate docs, "Errors: one
/// path per call".
#[must_use = "a ticket holds the command's result; drop it explicitly to ignore it"]
pub struct Ticket<T> {
    waiter: Option<Waiter<Result<T, Error>>>,
    spin: Duration,
    /// The round trip being timed, if this call is sampled (telemetry).
    timing: Option<Timing>,
}

/// Waiters spinning now, process-wide.
static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Most waiters that spin at once: one per core. Spinning waiters yield between checks,
/// so a shard that shares a core with one still runs; more spinners than cores would only
/// take turns.
fn max_spinners() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A spinning slot, released on drop.
struct SpinSlot(());

impl SpinSlot {
    fn acquire() -> Option<Self> {
        let max = max_spinners();
        SPINNERS
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| SpinSlot(()))
    }
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        SPINNERS.fetch_sub(1, Ordering::Release);
    }
}

impl<T> std::fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("ready", &self.is_ready())
            .finish()
    }
}

fn canceled<T>(_: Canceled) -> Result<T, Error> {
    // `Reply`'s Drop always completes, so a bare cancel means the completer was
    // dropped without running `Reply::drop` (only possible during engine teardown).
    Err(Error::ShutDown)
}

impl<T> Ticket<T> {
    /// A ticket and the reply that resolves it.
    pub(crate) fn new(spin: Duration) -> (Self, Reply<T>) {
        let (completer, waiter) = oneshot::oneshot();
        ticket_created();
        (
            Self {
                waiter: Some(waiter),
                spin,
                timing: None,
            },
            Reply(Target::Ticket(completer)),
        )
    }

    /// A ticket already resolved with `result`.
    pub(crate) fn ready(result: Result<T, Error>, spin: Duration) -> Self {
        let (ticket, reply) = Self::new(spin);
        reply.send(result);
        ticket
    }

    /// Times this ticket's round trip (telemetry): recorded when its result is taken.
    pub(crate) fn set_timing(&mut self, timing: Option<Timing>) {
        self.timing = timing;
    }

    /// The result was taken: ends the round trip's timing.
    #[inline]
    fn taken(&mut self) {
        if let Some(t) = self.timing.take() {
            t.done();
        }
    }

    /// Spins up to `self.spin` for the result if a spinning slot is free.
    fn spin_for_result(&mut self) -> Option<Result<T, Error>> {
        if self.spin.is_zero() || self.waiter.is_none() {
            return None;
        }
        let _slot = SpinSlot::acquire()?;
        // A spin beyond the clock's range spins until the result comes.
        let deadline = Instant::now().checked_add(self.spin);
        loop {
            for _ in 0..32 {
                if let Some(r) = self.try_take() {
                    return Some(r);
                }
                std::hint::spin_loop();
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            // Give the core away between checks: the shard that owes the answer may be
            // pinned to this very core, and a pure spin would keep it off until the
            // spin budget runs out.
            std::thread::yield_now();
        }
    }

    /// Blocks until the result arrives.
    pub fn wait(mut self) -> Result<T, Error> {
        if let Some(r) = self.spin_for_result() {
            return r;
        }
        let r = match self.waiter.take() {
            Some(w) => w.wait(0).unwrap_or_else(canceled),
            None => Err(Error::AlreadyTaken),
        };
        self.taken();
        r
    }

    /// Blocks until the result arrives or `timeout` passes. On [`Error::Timeout`] the
    /// ticket stays usable; after a result was taken it returns [`Error::AlreadyTaken`].
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<T, Error> {
        if let Some(r) = self.spin_for_result() {
            return r;
        }
        let Some(w) = self.waiter.as_mut() else {
            return Err(Error::AlreadyTaken);
        };
        let result = match w.wait_timeout(0, timeout) {
            Ok(r) => r,
            Err(WaitError::Timeout) => return Err(Error::Timeout),
            Err(WaitError::Canceled) => canceled(Canceled),
        };
        self.waiter = None;
        self.taken();
        result
    }

    /// The result if it has arrived, without blocking; `None` while it is pending (and
    /// after it was taken).
    pub fn try_take(&mut self) -> Option<Result<T, Error>> {
        let result = match self.waiter.as_mut()?.try_take()? {
            Ok(r) => r,
            Err(c) => canceled(c),
        };
        self.waiter = None;
        self.taken();
        Some(result)
    }

    /// True once the result has arrived (and not yet been taken).
    pub fn is_ready(&self) -> bool {
        self.waiter.as_ref().is_some_and(|w| w.is_ready())
    }
}

impl<T> Drop for Ticket<T> {
    fn drop(&mut self) {
        ticket_dropped();
    }
}

/// A result delivered into a channel the caller owns (the original's
/// `send(caller, {:done, id, result})`), tagged with the caller's own id: what the `_to`
/// forms (such as [`Agents::update_to`](crate::agents::Agents::update_to)) send instead
/// of resolving a [`Ticket`]. (Not to be confused with
/// [`coordination::Completion`](crate::coordination::Completion), how a coordination
/// session ended.) `result` has the same two levels as a ticket's: the outer `Err` is the
/// engine's, the inner `Result` the service's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedResult<T> {
    /// The tag the caller gave when it sent the command.
    pub tag: u64,
    /// The command's result.
    pub result: Result<T, Error>,
}

thread_local! {
    /// The error an unanswered reply dropped on this thread right now resolves with.
    static DROP_REASON: Cell<Error> = const { Cell::new(Error::ShutDown) };
}

/// While the guard lives, unanswered replies dropped on this thread resolve with the
/// guard's error; outside every guard they resolve with [`Error::ShutDown`] (a command
/// still queued when its mailbox was torn down).
pub(crate) struct DropScope(Error);

impl DropScope {
    /// Unanswered replies dropped while the guard lives resolve with `error`.
    pub(crate) fn new(error: Error) -> Self {
        Self(DROP_REASON.with(|f| f.replace(error)))
    }

    /// A shard handler is running: a reply it drops means it panicked.
    pub(crate) fn handler() -> Self {
        Self::new(Error::Internal(
            "the shard handler panicked while applying this command",
        ))
    }
}

impl Drop for DropScope {
    fn drop(&mut self) {
        DROP_REASON.with(|f| f.set(self.0));
    }
}

/// Where a command's result goes. Dropping an unanswered reply resolves it with an
/// error (see the module docs).
pub(crate) struct Reply<T>(Target<T>);

enum Target<T> {
    /// Nobody waits (fire-and-forget).
    Nobody,
    /// A [`Ticket`] waits.
    Ticket(Completer<Result<T, Error>>),
    /// The caller's channel, with the caller's tag.
    Channel(flume::Sender<TaggedResult<T>>, u64),
}

impl<T> Reply<T> {
    /// Nobody waits for the result (fire-and-forget).
    #[allow(non_upper_case_globals)]
    pub(crate) const Nobody: Self = Reply(Target::Nobody);

    /// The result goes to `tx`, tagged `tag`.
    pub(crate) fn channel(tx: flume::Sender<TaggedResult<T>>, tag: u64) -> Self {
        Reply(Target::Channel(tx, tag))
    }

    /// Delivers `result`. A full or disconnected caller channel drops it: the caller
    /// chose the channel's bound, and a shard never blocks on it.
    pub(crate) fn send(mut self, result: Result<T, Error>) {
        match std::mem::replace(&mut self.0, Target::Nobody) {
            Target::Nobody => {}
            Target::Ticket(c) => c.complete(result),
            Target::Channel(tx, tag) => {
                let _ = tx.try_send(TaggedResult { tag, result });
            }
        }
    }

    /// True if nobody waits for the result.
    pub(crate) fn is_nobody(&self) -> bool {
        matches!(self.0, Target::Nobody)
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if self.is_nobody() {
            return;
        }
        let error = DROP_REASON.with(|f| f.get());
        match std::mem::replace(&mut self.0, Target::Nobody) {
            Target::Nobody => {}
            Target::Ticket(c) => c.complete(Err(error)),
            Target::Channel(tx, tag) => {
                let _ = tx.try_send(TaggedResult {
                    tag,
                    result: Err(error),
                });
            }
        }
    }
}
