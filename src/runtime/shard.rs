//! A shard thread's loop, generic over what the shard owns ([`ShardState`]).
//!
//! # One turn of the loop
//!
//! 1. Take up to `batch_size` messages from the shard's incoming **lanes** (other shards'
//!    messages come first), then, if nothing this shard sent is still waiting for room
//!    in a lane, host messages: control messages first, then the bounded mailbox.
//! 2. Let the state prefetch what the batch's commands will touch
//!    ([`ShardState::prefetch`]), then apply each command; a handler that panics fails only its own reply (with
//!    `Internal`), and the shard goes on.
//! 3. Run due timers ([`ShardState::advance`]), apply what the batch forwarded to this
//!    shard itself, then publish ([`ShardState::end_batch`]).
//! 4. Hand what the batch forwarded to other shards to their lanes. What does not fit
//!    stays here ("overflow"); while any does, the shard takes no host messages and keeps
//!    draining its own lanes, so two shards whose lanes to each other are full still both
//!    drain: no shard ever waits for another.
//! 5. Give the host messages' weight back to the mailbox (admission), count, and answer
//!    the batch's replies — only once its forwards are all in lanes, so a flush that
//!    returned guarantees they are queued where the next flush round reaches them.
//!
//! # Stopping
//!
//! Once its mailbox is closed and drained, the shard reports itself host-done to the
//! termination detector and stops running timers; it keeps applying lane messages until the
//! shutdown says stop. If the thread panics outside a handler, [`ShardLoop`]'s `Drop`
//! marks the shard dead: its mailbox refuses every later send with `ShardDown`, what was
//! queued resolves with `ShardDown`, its lanes are discarded, and it counts as
//! host-done, so neither callers nor the shutdown wait for it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::Clock;
use super::envelope::{Envelope, Fault};
use super::export::{ExportCtl, SNAPSHOT, THAW};
use super::ticket::{DropScope, Reply};
use super::Shared;
use crate::telemetry::shard::{Observation, ShardFigures, ShardRecorder};
use crate::Error;

/// What a shard owns and how it applies commands: the one thing a service layer
/// implements to run on the runtime.
pub(crate) trait ShardState: Send + 'static {
    /// The commands its mailbox and lanes carry.
    type Command: Send + 'static;

    /// Applies one command. Answers go through [`Ctx::reply`], messages to other shards
    /// through [`Ctx::forward`].
    fn apply(&mut self, cmd: Self::Command, ctx: &mut Ctx<Self::Command>);

    /// Called with the commands of a batch, in order, before the first is applied: a
    /// hint to fetch what applying them will touch (see `TableWriter::prefetch`). It
    /// must not change what any command does, and must not panic (it runs outside the
    /// handlers' panic guard).
    fn prefetch<'a>(&mut self, _cmds: impl Iterator<Item = &'a Self::Command>)
    where
        Self::Command: 'a,
    {
    }

    /// Runs the timers due at `ctx.now()` (once per batch, and when a timer is due).
    fn advance(&mut self, _ctx: &mut Ctx<Self::Command>) {}

    /// The earliest timer, in clock nanoseconds.
    fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// Publishes what the batch changed and is published once per batch.
    fn end_batch(&mut self, _ctx: &mut Ctx<Self::Command>) {}

    /// Number of telemetry operations ([`op_of`](Self::op_of) is below it).
    const OPS: usize = 1;

    /// The telemetry operation `cmd` is (an index below [`OPS`](Self::OPS)).
    fn op_of(_cmd: &Self::Command) -> usize {
        0
    }

    /// What the state reports of itself when telemetry observes the shard.
    fn figures(&self) -> ShardFigures {
        ShardFigures::default()
    }

    /// The shard's whole state as plain data, for an export (see
    /// [`export`](super::export)): called on a frozen shard with empty lanes, at engine
    /// time `now`.
    fn export(&self, _now: u64) -> Box<dyn std::any::Any + Send> {
        Box::new(())
    }
}

/// A deferred answer, run once the batch is published.
type Answer = Box<dyn FnOnce() + Send>;

/// What a batch accumulates besides state changes: its time, the answers to send once it
/// is published, and its messages to other shards.
pub(crate) struct Ctx<C> {
    now: u64,
    shards: usize,
    answers: Vec<Answer>,
    outbox: Vec<(usize, C)>,
    /// The shard's telemetry, owned by its thread.
    tele: ShardRecorder,
}

impl<C> Ctx<C> {
    /// Clock time at the start of the batch, in nanoseconds.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// The number of shards.
    #[inline]
    pub(crate) fn shards(&self) -> usize {
        self.shards
    }

    /// Queues `reply` to be answered with `value` once the batch is published.
    pub(crate) fn reply<T: Send + 'static>(&mut self, reply: Reply<T>, value: T) {
        if !reply.is_nobody() {
            self.answers.push(Box::new(move || reply.send(Ok(value))));
        }
    }

    /// The handler refused its command by the service's rule with `e` (telemetry counts
    /// it by `e`'s variant name).
    #[inline]
    pub(crate) fn refused(&mut self, e: &dyn std::fmt::Debug) {
        self.tele.error(e);
    }

    /// Sends `cmd` to shard `shard` after this batch, on the lane from this shard to it
    /// (applied in this very batch if `shard` is this one). Never refused, never dropped.
    pub(crate) fn forward(&mut self, shard: usize, cmd: impl Into<C>) {
        self.outbox.push((shard, cmd.into()));
    }
}

/// A message taken for this batch.
enum Item<C> {
    /// From another shard's lane.
    Lane(C),
    /// From the host mailbox.
    Host(Envelope<C>),
}

/// A shard's batching, idling and admission pace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Most messages one batch takes.
    pub batch_size: usize,
    /// How long an idle shard polls (yielding between checks) before it sleeps.
    pub idle_spin: Duration,
    /// The queueing delay the fire-and-forget backlog may represent: the mailbox's
    /// backlog is this divided by the shard's measured cost per command.
    pub write_delay: Duration,
}

impl Pace {
    /// The cost per command assumed before the first measurement, in nanoseconds (a
    /// single-message write on the 2-core development machine).
    pub(crate) const INITIAL_COST_NS: u64 = 250;
    /// The smallest backlog set from measurements.
    const MIN_BACKLOG: u64 = 8;
    /// Batches of fewer commands are not measured (their cost is mostly per batch).
    const MIN_MEASURED: u64 = 16;
    /// Measured batches per window of the cost estimate.
    const WINDOW: u32 = 64;

    /// The backlog that `delay` of work at `cost_ns` per command makes.
    pub(crate) fn backlog_for(delay: Duration, cost_ns: u64) -> u64 {
        let delay = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        (delay / cost_ns.max(1)).max(Self::MIN_BACKLOG)
    }
}

/// A shard thread's state; see the [module docs](self).
pub(crate) struct ShardLoop<S: ShardState> {
    index: usize,
    state: S,
    shared: Arc<Shared<S::Command>>,
    clock: Clock,
    pace: Pace,
    ctx: Ctx<S::Command>,
    items: Vec<Item<S::Command>>,
    /// Observe messages of this batch, answered at its end.
    observers: Vec<Reply<Box<Observation>>>,
    /// Forwards not yet in their target's lane, by target.
    overflow: Vec<VecDeque<S::Command>>,
    overflow_len: usize,
    /// Answers held until `overflow` is empty.
    held: Vec<Answer>,
    /// Host weight taken and not yet given back (non-zero only inside a batch).
    host_weight: u64,
    /// Lane messages taken and not yet counted consumed (non-zero only inside a batch).
    lane_msgs: u64,
    /// Forwarded messages applied in this batch (from lanes or to itself).
    forwarded: u64,
    host_done: bool,
    lane_cursor: usize,
    /// The estimated nanoseconds a command costs, batch overhead included (see
    /// `measure`).
    cost_ns: u64,
    /// The least cost seen in the current window, and the window's measured batches.
    window_min: u64,
    window_len: u32,
    /// Set while an export holds this shard frozen (no host input, no timers).
    frozen: Option<Arc<ExportCtl>>,
    /// True once this shard delivered its snapshot to the export holding it frozen.
    snapshotted: bool,
}

impl<S: ShardState> ShardLoop<S> {
    pub(crate) fn new(
        index: usize,
        state: S,
        shared: Arc<Shared<S::Command>>,
        clock: Clock,
        pace: Pace,
        tele: ShardRecorder,
    ) -> Self {
        let shards = shared.ports.len();
        let batch_size = pace.batch_size.max(1);
        Self {
            index,
            state,
            clock,
            pace: Pace { batch_size, ..pace },
            ctx: Ctx {
                now: 0,
                shards,
                answers: Vec::with_capacity(batch_size),
                outbox: Vec::new(),
                tele,
            },
            items: Vec::with_capacity(batch_size),
            observers: Vec::new(),
            overflow: (0..shards).map(|_| VecDeque::new()).collect(),
            overflow_len: 0,
            held: Vec::new(),
            host_weight: 0,
            lane_msgs: 0,
            forwarded: 0,
            host_done: false,
            lane_cursor: 0,
            cost_ns: Pace::INITIAL_COST_NS,
            window_min: u64::MAX,
            window_len: 0,
            frozen: None,
            snapshotted: false,
            shared,
        }
    }

    /// Runs until the shutdown says stop; returns the shard's counters.
    pub(crate) fn run(mut self) -> super::ShardReport {
        // A reply this thread drops outside a handler means the shard is dying.
        let _scope = DropScope::new(Error::ShardDown(self.index));
        loop {
            self.take_lanes();
            let frozen = self.export_turn();
            if self.overflow_len == 0 && !self.host_done && !frozen {
                self.take_host();
            }
            let now = self.clock.now();
            let timers_due =
                !self.host_done && !frozen && self.state.next_deadline().is_some_and(|d| d <= now);
            if !self.items.is_empty() || timers_due {
                self.run_batch(now);
                continue;
            }
            if self.overflow_len > 0 {
                self.hand_off();
                if self.overflow_len == 0 {
                    self.answer_held();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            if frozen {
                self.idle_frozen();
                continue;
            }
            let port = &self.shared.ports[self.index];
            if !self.host_done && port.mailbox.is_drained() {
                self.host_done = true;
                self.shared.term.host_done();
                continue;
            }
            if self.host_done && self.shared.term.is_stopped() {
                break;
            }
            self.idle();
        }
        self.shared.ports[self.index].stats.report(self.index)
    }

    fn take_lanes(&mut self) {
        let port = &self.shared.ports[self.index];
        let items = &mut self.items;
        let n = port
            .incoming
            .pop_into(self.lane_cursor, self.pace.batch_size, |c| {
                items.push(Item::Lane(c));
            });
        if n > 0 {
            self.lane_msgs += n as u64;
            self.lane_cursor = self.lane_cursor.wrapping_add(1);
        }
    }

    fn take_host(&mut self) {
        let mailbox = &self.shared.ports[self.index].mailbox;
        while self.items.len() < self.pace.batch_size {
            let Some(env) = mailbox.pop_control() else {
                break;
            };
            self.host_weight += 1;
            self.items.push(Item::Host(env));
        }
        while self.items.len() < self.pace.batch_size {
            let Some(env) = mailbox.pop() else {
                break;
            };
            self.host_weight += env.weight();
            self.items.push(Item::Host(env));
        }
    }

    fn run_batch(&mut self, now: u64) {
        let began = Instant::now();
        self.ctx.now = now;
        let mut applied = 0u64;
        let mut panics = 0u64;
        let mut items = std::mem::take(&mut self.items);
        self.state
            .prefetch(items.iter().flat_map(|item| match item {
                Item::Lane(cmd) | Item::Host(Envelope::One(cmd)) => core::slice::from_ref(cmd),
                Item::Host(Envelope::Batch(cmds)) => cmds.as_slice(),
                _ => &[],
            }));
        for item in items.drain(..) {
            match item {
                Item::Lane(cmd) => {
                    applied += 1;
                    self.forwarded += 1;
                    panics += self.apply(cmd);
                }
                Item::Host(Envelope::One(cmd)) => {
                    applied += 1;
                    panics += self.apply(cmd);
                }
                Item::Host(Envelope::Batch(cmds)) => {
                    for cmd in cmds {
                        applied += 1;
                        panics += self.apply(cmd);
                    }
                }
                Item::Host(Envelope::Flush(reply)) => {
                    applied += 1;
                    self.ctx.reply(reply, ());
                }
                Item::Host(Envelope::Fault(fault)) => {
                    applied += 1;
                    panics += self.fault(fault);
                }
                Item::Host(Envelope::Observe(reply)) => self.observers.push(reply),
                Item::Host(Envelope::Export { ctl, frozen }) => {
                    applied += 1;
                    if ctl.phase() != THAW {
                        self.frozen = Some(ctl);
                        self.snapshotted = false;
                    }
                    self.ctx.reply(frozen, ());
                }
            }
        }
        self.items = items;
        if !self.host_done && self.frozen.is_none() {
            let (state, ctx) = (&mut self.state, &mut self.ctx);
            panics += guarded(|| state.advance(ctx));
        }
        self.route(&mut applied, &mut panics);
        let (state, ctx) = (&mut self.state, &mut self.ctx);
        panics += guarded(|| state.end_batch(ctx));
        self.route(&mut applied, &mut panics);
        self.hand_off();
        let lane_msgs = std::mem::take(&mut self.lane_msgs);
        self.shared.term.consumed(lane_msgs);
        let port = &self.shared.ports[self.index];
        port.mailbox.release(std::mem::take(&mut self.host_weight));
        // Counted before answering, so a caller that got its answer sees its command in
        // the counters.
        port.stats
            .batch(applied, std::mem::take(&mut self.forwarded), panics);
        let elapsed = began.elapsed();
        if self.ctx.tele.enabled() {
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            self.ctx.tele.batch(applied, nanos);
        }
        if !self.observers.is_empty() {
            self.answer_observers();
        }
        if self.overflow_len == 0 {
            self.answer_held();
            for answer in self.ctx.answers.drain(..) {
                answer();
            }
        } else {
            self.held.append(&mut self.ctx.answers);
        }
        self.measure(applied, elapsed);
    }

    /// Answers the batch's observe messages with a copy of the shard's telemetry.
    #[cold]
    fn answer_observers(&mut self) {
        let report = self.shared.ports[self.index].stats.report(self.index);
        let figures = self.state.figures();
        for reply in std::mem::take(&mut self.observers) {
            let observation = Box::new(self.ctx.tele.observe(report, figures));
            self.ctx.reply(reply, observation);
        }
    }

    /// Folds a batch's cost per command into the estimate and, when the backlog it
    /// implies moved by more than an eighth, sets the mailbox's backlog: fire-and-forget
    /// work is admitted up to `write_delay` of it, in time rather than in commands (a
    /// batched command costs a fraction of a single message).
    ///
    /// The estimate is the least cost seen over a window of batches, taken at once when
    /// lower and adopted at the end of each window otherwise: a batch's wall time only
    /// grows when the shard is preempted, so the minimum is the cost of the work, and a
    /// busy machine does not shrink the backlog into writers blocking on each other.
    fn measure(&mut self, applied: u64, elapsed: Duration) {
        if applied < Pace::MIN_MEASURED {
            return;
        }
        let sample = (u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX) / applied).max(1);
        self.window_min = self.window_min.min(sample);
        self.window_len += 1;
        if sample < self.cost_ns {
            self.cost_ns = sample;
        } else if self.window_len >= Pace::WINDOW {
            self.cost_ns = self.window_min;
        }
        if self.window_len >= Pace::WINDOW {
            self.window_len = 0;
            self.window_min = u64::MAX;
        }
        let mailbox = &self.shared.ports[self.index].mailbox;
        let backlog = Pace::backlog_for(self.pace.write_delay, self.cost_ns);
        let now = mailbox.backlog();
        if backlog.abs_diff(now) > now / 8 {
            mailbox.set_backlog(backlog);
        }
    }

    /// Applies one command under a panic guard; returns 1 if it panicked.
    #[inline]
    fn apply(&mut self, cmd: S::Command) -> u64 {
        let sample = self.ctx.tele.begin(S::op_of(&cmd));
        let (state, ctx) = (&mut self.state, &mut self.ctx);
        let panicked = guarded(|| state.apply(cmd, ctx));
        self.ctx.tele.end(sample, panicked != 0);
        panicked
    }

    fn fault(&mut self, fault: Fault) -> u64 {
        match fault {
            Fault::Stall { stalled, release } => {
                let _ = stalled.send(());
                let _ = release.recv();
                0
            }
            Fault::Panic(reply) => guarded(move || {
                let _reply = reply;
                panic!("fault injection: a handler panics (mabeam::testing)");
            }),
            Fault::Kill => panic!("fault injection: the shard thread dies (mabeam::testing)"),
        }
    }

    /// Applies the forwards addressed to this shard (which may forward more) and moves
    /// the others to `overflow`, counting them produced.
    fn route(&mut self, applied: &mut u64, panics: &mut u64) {
        let mut produced = 0u64;
        while !self.ctx.outbox.is_empty() {
            let outbox = std::mem::take(&mut self.ctx.outbox);
            for (target, cmd) in outbox {
                if target == self.index {
                    *applied += 1;
                    self.forwarded += 1;
                    *panics += self.apply(cmd);
                } else {
                    self.overflow[target].push_back(cmd);
                    produced += 1;
                }
            }
        }
        self.overflow_len += produced as usize;
        self.shared.term.produced(produced);
    }

    /// Pushes overflow into the lanes as far as they have room. Forwards to a dead shard
    /// are discarded (and counted consumed).
    fn hand_off(&mut self) {
        if self.overflow_len == 0 {
            return;
        }
        for target in 0..self.overflow.len() {
            let queue = &mut self.overflow[target];
            if queue.is_empty() {
                continue;
            }
            let port = &self.shared.ports[target];
            let before = queue.len();
            if port.mailbox.is_dead() {
                queue.clear();
                self.shared.term.consumed(before as u64);
            } else {
                port.incoming.push_from(self.index, queue);
            }
            self.overflow_len -= before - queue.len();
        }
    }

    /// While an export holds the shard frozen: delivers the snapshot once asked (with
    /// nothing taken and nothing waiting for a lane), unfreezes at the thaw. Returns
    /// true while still frozen.
    fn export_turn(&mut self) -> bool {
        let Some(ctl) = &self.frozen else {
            return false;
        };
        match ctl.phase() {
            THAW => {
                self.frozen = None;
                self.snapshotted = false;
                false
            }
            SNAPSHOT if !self.snapshotted && self.items.is_empty() && self.overflow_len == 0 => {
                let now = self.clock.now();
                let state = &self.state;
                let snapshot = {
                    let _scope = DropScope::handler();
                    catch_unwind(AssertUnwindSafe(|| state.export(now))).map_err(|_| ())
                };
                ctl.deliver(self.index, snapshot);
                self.snapshotted = true;
                true
            }
            _ => true,
        }
    }

    /// A frozen shard with nothing to do sleeps until a lane message, a phase it acts
    /// on, or the stop.
    fn idle_frozen(&self) {
        let Some(ctl) = &self.frozen else {
            return;
        };
        let port = &self.shared.ports[self.index];
        let snapshotted = self.snapshotted;
        let has_work = || {
            let phase = ctl.phase();
            port.incoming.pending() > 0
                || phase == THAW
                || (phase == SNAPSHOT && !snapshotted)
                || self.shared.term.is_stopped()
        };
        port.bell.sleep(has_work, None);
    }

    fn answer_held(&mut self) {
        for answer in self.held.drain(..) {
            answer();
        }
    }

    /// Waits for work: polls for `idle_spin` (yielding the core between checks: a host
    /// thread waiting for this shard may share it), then sleeps on the doorbell until a
    /// message, a timer or the shutdown.
    fn idle(&mut self) {
        let shared = &*self.shared;
        let port = &shared.ports[self.index];
        let host_done = self.host_done;
        // Every condition the loop acts on, each read `SeqCst` (see `Doorbell`): accepted
        // host work, lane messages, a close to report host-done on, the stop.
        let has_work = || {
            port.mailbox.reserved() > 0
                || port.incoming.pending() > 0
                || (!host_done && port.mailbox.is_closed())
                || shared.term.is_stopped()
        };
        if !self.pace.idle_spin.is_zero() {
            // Poll often (a `pause` is tens of nanoseconds on this kind of core: the old
            // 64 of them between checks made the shard notice work about 1.5 µs late),
            // and give the core away about once a microsecond (a `yield_now` is a
            // system call: one per check made each poll cost as much again).
            let start = Instant::now();
            let mut last_yield = start;
            loop {
                for _ in 0..IDLE_POLL_PAUSES {
                    std::hint::spin_loop();
                }
                if has_work() {
                    return;
                }
                let now = Instant::now();
                if now.duration_since(start) >= self.pace.idle_spin {
                    break;
                }
                if now.duration_since(last_yield) >= IDLE_YIELD_EVERY {
                    std::thread::yield_now();
                    last_yield = Instant::now();
                }
            }
        }
        let timeout = if self.host_done {
            None
        } else {
            self.state.next_deadline().and_then(|d| self.clock.until(d))
        };
        port.bell.sleep(has_work, timeout);
    }
}

/// `pause` instructions between two checks of an idle shard's mailbox.
const IDLE_POLL_PAUSES: u32 = 4;
/// How often an idle, polling shard gives its core away (`yield_now`).
const IDLE_YIELD_EVERY: Duration = Duration::from_micros(1);

/// Runs `f` under a panic guard in which dropped replies mean "the handler panicked".
/// Returns 1 if it panicked.
#[inline]
fn guarded(f: impl FnOnce()) -> u64 {
    let scope = DropScope::handler();
    let result = catch_unwind(AssertUnwindSafe(f));
    drop(scope);
    u64::from(result.is_err())
}

impl<S: ShardState> Drop for ShardLoop<S> {
    /// The death path: runs only when the shard thread unwinds outside a handler.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let _scope = DropScope::new(Error::ShardDown(self.index));
        self.shared.mark_dead(self.index);
        let port = &self.shared.ports[self.index];
        port.stats.died();
        // Give back what the dying batch took, so `kill` can wait for the rest.
        port.mailbox.release(std::mem::take(&mut self.host_weight));
        port.mailbox.kill(drop, Envelope::weight);
        self.items.clear();
        self.observers.clear();
        self.held.clear();
        self.ctx.answers.clear();
        self.ctx.outbox.clear();
        let term = &self.shared.term;
        term.consumed(std::mem::take(&mut self.lane_msgs));
        for queue in &mut self.overflow {
            queue.clear();
        }
        term.consumed(std::mem::take(&mut self.overflow_len) as u64);
        let discarded = port.incoming.pop_into(0, usize::MAX, drop);
        term.consumed(discarded as u64);
        if !self.host_done {
            self.host_done = true;
            term.host_done();
        }
    }
}
