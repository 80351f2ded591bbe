//! The shard runtime: pinned shard threads, their mailboxes and lanes, the batching loop,
//! tickets, routing, flush and shutdown — generic over what a shard owns, and knowing no
//! service.
//!
//! A service layer implements [`ShardState`] for its shard type, whose `Command` is the
//! message its mailbox carries, and gets a [`Runtime`] to send with:
//!
//! - [`Runtime::send`]: fire-and-forget (admitted while the shard's queued work is below
//!   its backlog, which the shard sets to `write_delay` of work at its measured cost per
//!   command, so acknowledged calls never wait behind more than that; a writer finding no room waits up to
//!   `send_timeout`, then gets `Busy`);
//! - [`Runtime::call`]: a command whose answer a [`Ticket`] waits for (admitted up to the
//!   mailbox's capacity);
//! - [`Runtime::control`]: a command that must never be refused for room (a lease's
//!   release), bounded by what its service owns;
//! - [`Ctx::forward`], from inside a shard: a message to another shard, on the lane of
//!   that ordered pair, never refused and never dropped.
//!
//! Guarantees, whatever races what:
//!
//! - every send that returned `Ok` is applied before [`Runtime::stop`] returns, and every
//!   send that returned `Err(ShutDown)` was not applied; every ticket resolves;
//! - a shard whose thread dies turns into [`Error::ShardDown`] for every later call that
//!   needs it, for its queued and unanswered calls, for `flush`, and in the stop report;
//! - [`Runtime::flush`] returns once every shard has applied what the calling thread
//!   sent before it, including what those commands made shards send each other (two
//!   rounds; handlers of lane messages forward nothing further in this engine).

mod batch;
pub(crate) mod clock;
mod envelope;
mod export;
mod shard;
mod start;
mod stats;
pub(crate) mod ticket;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mabeam_shards::doorbell::Doorbell;
use mabeam_shards::hash::mix64;
use mabeam_shards::lane::Incoming;
use mabeam_shards::mailbox::{Class, Mailbox, Refused, Wait};
use mabeam_shards::termination::Termination;

pub(crate) use batch::Batcher;
pub use batch::Buffered;
pub(crate) use clock::Clock;
use envelope::Envelope;
pub(crate) use envelope::Fault;
pub(crate) use shard::{Ctx, ShardState};
pub(crate) use start::{Settings, ShardThreads};
pub use start::{StartError, StartReport};
pub use stats::ShardReport;
use stats::ShardStats;
pub(crate) use ticket::{DropScope, Reply};
pub use ticket::{TaggedResult, Ticket};

use crate::telemetry::host::HostTelemetry;
use crate::telemetry::ops::engine_kind;
use crate::telemetry::shard::Observation;
use crate::Error;

/// How a fire-and-forget send waits for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendWait {
    /// Up to the configured send timeout, then `Busy`.
    Timeout,
    /// `Busy` at once if there is no room.
    Try,
}

/// One shard as everyone else sees it.
pub(crate) struct ShardPort<C> {
    /// Host messages to the shard.
    mailbox: Mailbox<Envelope<C>>,
    /// Messages from the other shards.
    incoming: Incoming<C>,
    /// What the shard sleeps on.
    bell: Arc<Doorbell>,
    stats: ShardStats,
    /// Set once the shard's thread died (read on the snapshot read path, so it lives
    /// apart from the mailbox's busy admission word).
    dead: AtomicBool,
    /// Sends refused with `Busy` (telemetry): written only on the refusal path, on a
    /// line of its own.
    refusals: crossbeam::utils::CachePadded<std::sync::atomic::AtomicU64>,
}

/// What telemetry reads of a shard's port.
#[derive(Debug, Clone)]
pub(crate) struct PortFigures {
    pub busy_refusals: u64,
    pub mailbox_depth: usize,
    pub control_depth: usize,
    pub mailbox_capacity: u64,
    pub mailbox_backlog: u64,
    pub lane_depths: Vec<usize>,
    pub lane_capacity: usize,
}

/// `Shared::status` bit: shutdown has begun.
const SHUT: u8 = 1;
/// `Shared::status` bit: some shard is dead (readers then check which).
const ANY_DEAD: u8 = 2;

/// What the runtime and its shard threads share.
pub(crate) struct Shared<C> {
    ports: Box<[ShardPort<C>]>,
    term: Termination,
    /// [`SHUT`] and [`ANY_DEAD`]: read by every call, written twice in a lifetime.
    status: crossbeam::utils::CachePadded<AtomicU8>,
}

impl<C> Shared<C> {
    fn mark_dead(&self, shard: usize) {
        self.ports[shard].dead.store(true, Ordering::Relaxed);
        self.status.fetch_or(ANY_DEAD, Ordering::Relaxed);
    }
}

/// The running shards of an engine and the ways to reach them; see the
/// [module docs](self).
pub(crate) struct Runtime<C> {
    shared: Arc<Shared<C>>,
    /// Held by the one export running (exports are serialised).
    exporting: parking_lot::Mutex<()>,
    send_timeout: Duration,
    ticket_spin: Duration,
    clock: Clock,
    /// The telemetry operation of a command (`ShardState::op_of`).
    op_of: fn(&C) -> usize,
    /// What host threads record.
    host: HostTelemetry,
}

/// The error a refusal by shard `shard`'s mailbox means.
fn refusal(shard: usize, refused: Refused) -> Error {
    match refused {
        Refused::Full => Error::Busy,
        Refused::Closed => Error::ShutDown,
        Refused::Dead => Error::ShardDown(shard),
    }
}

/// The shard of `n` that owns `key` (a stable 64-bit key): multiply-shift range
/// reduction of the mixed key.
#[inline]
pub(crate) fn shard_for(key: u64, n: usize) -> usize {
    ((u128::from(mix64(key)) * n as u128) >> 64) as usize
}

/// Waits for every ticket (so none is left behind) and returns the first error.
pub(crate) fn wait_all(tickets: Vec<Ticket<()>>) -> Result<(), Error> {
    let mut first = Ok(());
    for t in tickets {
        let r = t.wait();
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// The shard of `n` that owns an id whose top bits are `prefix` (auction and session
/// ids: the creating shard). A prefix at or above `n` (an id restored from an engine with
/// more shards) owns shard `prefix % n`, where the restore put it; the remainder is
/// computed only then, so the common case is one predicted branch.
#[inline]
pub(crate) fn shard_for_prefix(prefix: u64, n: usize) -> usize {
    let n64 = n as u64;
    if prefix < n64 {
        prefix as usize
    } else {
        (prefix % n64.max(1)) as usize
    }
}

impl<C: Send + 'static> Runtime<C> {
    /// Number of shards.
    #[inline]
    pub(crate) fn shards(&self) -> usize {
        self.shared.ports.len()
    }

    /// The shard that owns `key` (a stable 64-bit key).
    #[inline]
    pub(crate) fn shard_of(&self, key: u64) -> usize {
        shard_for(key, self.shards())
    }

    /// The clock the shards run on.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// `Err(ShutDown)` once shutdown has begun.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.shared.status.load(Ordering::Relaxed) & SHUT != 0 {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// For a snapshot read of shard `shard`: `Err(ShutDown)` once shutdown has begun,
    /// `Err(ShardDown)` if the shard is dead. One `Relaxed` load of a line that is
    /// written twice in the engine's life.
    #[inline]
    pub(crate) fn check_readable(&self, shard: usize) -> Result<(), Error> {
        let status = self.shared.status.load(Ordering::Relaxed);
        if status == 0 {
            return Ok(());
        }
        if status & SHUT != 0 {
            return Err(Error::ShutDown);
        }
        if self.shared.ports[shard].dead.load(Ordering::Relaxed) {
            return Err(Error::ShardDown(shard));
        }
        Ok(())
    }

    /// For a read of every shard: as [`check_readable`](Self::check_readable) for each.
    #[inline]
    pub(crate) fn check_all_readable(&self) -> Result<(), Error> {
        if self.shared.status.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        (0..self.shards()).try_for_each(|shard| self.check_readable(shard))
    }

    /// Begins shutdown for callers: every later [`check_open`](Self::check_open) fails.
    /// Sends already under way (and those of the engine's own workers) still go through
    /// until [`stop`](Self::stop) closes the mailboxes.
    pub(crate) fn begin_shutdown(&self) {
        self.shared.status.fetch_or(SHUT, Ordering::SeqCst);
    }

    fn wait(&self, wait: SendWait) -> Wait {
        match wait {
            SendWait::Timeout => Wait::for_at_most(self.send_timeout),
            SendWait::Try => Wait::No,
        }
    }

    fn post(&self, shard: usize, env: Envelope<C>, class: Class, wait: Wait) -> Result<(), Error> {
        let weight = env.weight();
        match self.shared.ports[shard]
            .mailbox
            .send(env, weight, class, wait)
        {
            Ok(()) => Ok(()),
            Err((env, refused)) => {
                if refused == Refused::Full {
                    self.count_busy(shard);
                }
                let error = refusal(shard, refused);
                let _scope = DropScope::new(error);
                drop(env);
                Err(error)
            }
        }
    }

    #[cold]
    fn count_busy(&self, shard: usize) {
        self.shared.ports[shard]
            .refusals
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused command of operation `op` (telemetry).
    #[cold]
    fn count_refused(&self, op: Option<usize>, error: Error) {
        if let Some(op) = op {
            self.host.refused(op, engine_kind(&error));
        }
    }

    /// What host threads record (telemetry).
    pub(crate) fn host(&self) -> &HostTelemetry {
        &self.host
    }

    /// Sends a fire-and-forget command. `Ok` means it will be applied (unless its shard
    /// dies first); `Err(ShutDown)` means it never will.
    #[inline]
    pub(crate) fn send(&self, shard: usize, cmd: C, wait: SendWait) -> Result<(), Error> {
        let op = self.host.enabled().then(|| (self.op_of)(&cmd));
        let r = self.post(shard, Envelope::One(cmd), Class::Write, self.wait(wait));
        if let Err(e) = r {
            self.count_refused(op, e);
        }
        r
    }

    /// Sends `cmds` as one fire-and-forget message; on refusal they come back with the
    /// reason, so a batching writer can keep them.
    pub(crate) fn send_batch(&self, shard: usize, cmds: Vec<C>) -> Result<usize, (Vec<C>, Error)> {
        let n = cmds.len();
        let weight = n as u64;
        let mailbox = &self.shared.ports[shard].mailbox;
        match mailbox.send(
            Envelope::Batch(cmds),
            weight,
            Class::Write,
            self.wait(SendWait::Timeout),
        ) {
            Ok(()) => Ok(n),
            Err((Envelope::Batch(cmds), refused)) => {
                if refused == Refused::Full {
                    self.count_busy(shard);
                }
                Err((cmds, refusal(shard, refused)))
            }
            Err((_, _)) => unreachable!("a refused batch comes back as the batch it was"),
        }
    }

    /// A fresh ticket and the reply that resolves it.
    pub(crate) fn ticket<T>(&self) -> (Ticket<T>, Reply<T>) {
        Ticket::new(self.ticket_spin)
    }

    /// Times `ticket` as an acknowledged call of telemetry operation `op` (sampled like
    /// [`call`](Self::call)'s), for a ticket that does not come from `call`: pricing's,
    /// which runs on the task pool before its shard caches the result.
    pub(crate) fn time_ticket<T>(&self, ticket: &mut Ticket<T>, op: usize) {
        if self.host.enabled() {
            ticket.set_timing(self.host.time_call(op));
        }
    }

    /// A ticket already resolved with `result`.
    pub(crate) fn ready<T>(&self, result: Result<T, Error>) -> Ticket<T> {
        Ticket::ready(result, self.ticket_spin)
    }

    /// Sends a command built around a fresh reply, as a call (admitted up to the
    /// mailbox's capacity, waiting up to the send timeout), and returns the ticket for
    /// it; a refused send resolves the ticket with the refusal.
    pub(crate) fn call<T>(&self, shard: usize, build: impl FnOnce(Reply<T>) -> C) -> Ticket<T> {
        let (mut ticket, reply) = self.ticket();
        let cmd = build(reply);
        let op = self.host.enabled().then(|| (self.op_of)(&cmd));
        if let Some(op) = op {
            ticket.set_timing(self.host.time_call(op));
        }
        // On refusal the command (and its reply) is dropped inside `post`, which resolves
        // the ticket with the reason.
        let r = self.post(
            shard,
            Envelope::One(cmd),
            Class::Call,
            self.wait(SendWait::Timeout),
        );
        if let Err(e) = r {
            self.count_refused(op, e);
        }
        ticket
    }

    /// Sends a command that already holds its reply, as a call (admitted up to the
    /// mailbox's capacity, waiting up to the send timeout). A refused command is dropped,
    /// resolving its reply with the refusal.
    pub(crate) fn send_call(&self, shard: usize, cmd: C) -> Result<(), Error> {
        self.post(
            shard,
            Envelope::One(cmd),
            Class::Call,
            self.wait(SendWait::Timeout),
        )
    }

    /// Sends a command on the shard's control queue, which is never refused for room.
    /// For commands whose number its service bounds (one release per lease, one
    /// unsubscribe per subscription and shard). Refused only by shutdown or a dead
    /// shard.
    pub(crate) fn control(&self, shard: usize, cmd: C) -> Result<(), Error> {
        match self.shared.ports[shard]
            .mailbox
            .send_control(Envelope::One(cmd))
        {
            Ok(()) => Ok(()),
            Err((env, refused)) => {
                let error = refusal(shard, refused);
                let _scope = DropScope::new(error);
                drop(env);
                Err(error)
            }
        }
    }

    /// Sends a fault-injection message to shard `shard`.
    pub(crate) fn fault(&self, shard: usize, fault: Fault) -> Result<(), Error> {
        self.post(
            shard,
            Envelope::Fault(fault),
            Class::Call,
            self.wait(SendWait::Timeout),
        )
    }

    /// Returns once every shard has applied and published everything this thread sent
    /// before the call, and everything those commands sent to other shards: two rounds
    /// of a flush message to every shard; a shard answers the first only once its
    /// forwards are in their lanes, and drains its lanes before the second.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        self.check_open()?;
        for _round in 0..2 {
            let tickets: Vec<Ticket<()>> = (0..self.shards())
                .map(|shard| {
                    let (ticket, reply) = self.ticket();
                    let _ = self.post(
                        shard,
                        Envelope::Flush(reply),
                        Class::Call,
                        self.wait(SendWait::Timeout),
                    );
                    ticket
                })
                .collect();
            wait_all(tickets)?;
        }
        Ok(())
    }

    /// Messages waiting in each shard's mailbox (control messages included).
    pub(crate) fn mailbox_depths(&self) -> Vec<usize> {
        self.shared
            .ports
            .iter()
            .map(|p| p.mailbox.queued() + p.mailbox.control_queued())
            .collect()
    }

    /// Asks every shard for a copy of its telemetry (answered at the end of its batch,
    /// after everything this thread sent before); a dead or refusing shard gives its
    /// error.
    pub(crate) fn observe(&self) -> Vec<Result<Box<Observation>, Error>> {
        let tickets: Vec<Ticket<Box<Observation>>> = (0..self.shards())
            .map(|shard| {
                let (ticket, reply) = self.ticket();
                let _ = self.post(
                    shard,
                    Envelope::Observe(reply),
                    Class::Call,
                    self.wait(SendWait::Timeout),
                );
                ticket
            })
            .collect();
        tickets.into_iter().map(Ticket::wait).collect()
    }

    /// Each shard's mailbox and lane figures now (telemetry and resources).
    pub(crate) fn port_figures(&self) -> Vec<PortFigures> {
        self.shared
            .ports
            .iter()
            .map(|p| PortFigures {
                busy_refusals: p.refusals.load(Ordering::Relaxed),
                mailbox_depth: p.mailbox.queued(),
                control_depth: p.mailbox.control_queued(),
                mailbox_capacity: p.mailbox.limits().capacity,
                mailbox_backlog: p.mailbox.backlog(),
                lane_depths: p.incoming.lane_depths(),
                lane_capacity: p.incoming.capacity(),
            })
            .collect()
    }

    /// Commands applied so far, per shard.
    pub(crate) fn applied(&self) -> Vec<u64> {
        self.shared
            .ports
            .iter()
            .map(|p| p.stats.applied())
            .collect()
    }

    /// Each shard's counters now (applied, forwarded, panics, batches, died).
    pub(crate) fn reports(&self) -> Vec<ShardReport> {
        self.shared
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| p.stats.report(i))
            .collect()
    }

    /// Stops the shards: closes every mailbox (later sends get `ShutDown`; senders
    /// waiting for room are woken and refused), lets each shard apply everything it had
    /// accepted, waits until everything those commands sent between shards is applied
    /// too, then stops and joins the threads. Returns each shard's report.
    pub(crate) fn stop(&self, threads: ShardThreads) -> Vec<ShardReport> {
        self.begin_shutdown();
        let shared = &*self.shared;
        for port in shared.ports.iter() {
            port.mailbox.close();
        }
        shared.term.wait_quiet(|| {
            for (index, port) in shared.ports.iter().enumerate() {
                if port.dead.load(Ordering::Relaxed) {
                    let _scope = DropScope::new(Error::ShardDown(index));
                    let n = port.incoming.pop_into(0, usize::MAX, drop);
                    shared.term.consumed(n as u64);
                }
            }
        });
        shared.term.stop();
        for port in shared.ports.iter() {
            port.bell.ring();
        }
        threads.join(shared)
    }
}

impl<C> std::fmt::Debug for Runtime<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.shared.ports.len())
            .field("status", &self.shared.status.load(Ordering::Relaxed))
            .finish()
    }
}
