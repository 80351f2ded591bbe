//! A shard thread: owns its part of the state, drains its mailbox in batches, applies,
//! publishes, then answers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use std::collections::VecDeque;

use flume::{Receiver, Sender, TryRecvError, TrySendError};
use mabeam_shards::agents::AgentShard;
use mabeam_shards::registry::RegistryShard;

use crate::clock::Clock;
use crate::command::{AgentCommand, Command, RegistryCommand};
use crate::coordination::CoordinationShard;
use crate::economics::EconomicsShard;
use crate::events::{EventSink, Payload};
use crate::ticket::{DropScope, Reply};

/// How long a shard waits before retrying shard-to-shard messages a full mailbox refused.
const RETRY_NANOS: u64 = 50_000;

/// Counters a shard updates once per batch and anyone may read (one cache line per
/// shard, written by its owner only).
#[derive(Debug, Default)]
pub(crate) struct ShardStats {
    pub applied: CachePadded<AtomicU64>,
    pub panics: AtomicU64,
    pub batches: AtomicU64,
    pub forward_dropped: AtomicU64,
}

impl ShardStats {
    /// The counters as a report for shard `shard`.
    pub(crate) fn report(&self, shard: usize) -> ShardReport {
        ShardReport {
            shard,
            applied: self.applied.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            forward_dropped: self.forward_dropped.load(Ordering::Relaxed),
        }
    }
}

/// What one shard did, reported by [`Engine::shutdown`](crate::Engine::shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardReport {
    /// Shard index.
    pub shard: usize,
    /// Commands applied (each command of a batch counts).
    pub applied: u64,
    /// Commands whose handler panicked (each failed its own ticket only).
    pub panics: u64,
    /// Batches drained from the mailbox.
    pub batches: u64,
    /// Shard-to-shard messages dropped because their target's mailbox stayed full
    /// beyond the retry bound, or had stopped.
    pub forward_dropped: u64,
}

/// Most shard-to-shard messages a shard holds back while their target's mailbox is
/// full; beyond it they are dropped and counted (`ShardStats::forward_dropped`).
pub(crate) const MAX_RETRY: usize = 65_536;

/// What a batch accumulates besides state changes: answers (run after the batch is
/// published), events, and messages to other shards.
pub(crate) struct Ctx {
    /// Engine time at the start of the batch.
    pub now: u64,
    deferred: Vec<Box<dyn FnOnce() + Send>>,
    /// Where services report events.
    pub events: EventSink,
    outbox: Vec<(usize, Command)>,
}

impl Ctx {
    /// Sends `cmd` to shard `shard` after this batch (applied at once if it is this
    /// shard). A shard never blocks on another's mailbox: see [`MAX_RETRY`].
    pub(crate) fn forward(&mut self, shard: usize, cmd: Command) {
        self.outbox.push((shard, cmd));
    }

    /// Queues `reply` to be answered with `value` once the batch is published.
    pub(crate) fn reply<T: Send + 'static>(&mut self, reply: Reply<T>, value: T) {
        if !reply.is_nobody() {
            self.deferred.push(Box::new(move || reply.send(Ok(value))));
        }
    }
}

/// The state a shard owns.
pub(crate) struct Shard {
    pub index: usize,
    pub rx: Receiver<Command>,
    pub clock: Clock,
    pub stats: Arc<ShardStats>,
    pub batch_size: usize,
    pub idle_spin: Duration,
    pub registry: RegistryShard,
    pub agents: AgentShard,
    pub economics: EconomicsShard,
    pub coordination: CoordinationShard,
    /// This shard's event sink (moved into the batch context while running).
    pub events: Option<EventSink>,
    /// Every shard's mailbox, for shard-to-shard messages.
    pub peers: Arc<[Sender<Command>]>,
    /// Shard-to-shard messages whose target mailbox was full.
    pub retry: VecDeque<(usize, Command)>,
}

impl Shard {
    /// The shard loop; returns when a `Shutdown` command has been applied and the mailbox
    /// is empty.
    pub(crate) fn run(mut self) -> ShardReport {
        let mut batch: Vec<Command> = Vec::with_capacity(self.batch_size);
        let mut ctx = Ctx {
            now: 0,
            deferred: Vec::with_capacity(self.batch_size),
            events: self
                .events
                .take()
                .expect("a shard's event sink is set at start and taken once by run"),
            outbox: Vec::new(),
        };
        let mut stopping = false;
        loop {
            if batch.is_empty() {
                match self.next_command(stopping) {
                    Some(cmd) => batch.push(cmd),
                    None if stopping => break,
                    None => {}
                }
            }
            while batch.len() < self.batch_size {
                match self.rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            ctx.now = self.clock.now();
            let mut applied = 0u64;
            for cmd in batch.drain(..) {
                applied += self.apply_guarded(cmd, &mut ctx, &mut stopping);
            }
            self.economics.advance(&mut ctx);
            self.coordination.advance(&mut ctx);
            applied += self.deliver(&mut ctx, &mut stopping);
            self.publish(&mut ctx);
            // Counted before answering, so a caller that got its answer sees its command
            // in `Engine::applied`.
            self.stats.applied.fetch_add(applied, Ordering::Relaxed);
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            for answer in ctx.deferred.drain(..) {
                answer();
            }
        }
        self.stats.report(self.index)
    }

    /// Waits for the next command: spins for `idle_spin`, then blocks (up to the next
    /// timer). When stopping, returns `None` as soon as the mailbox is empty.
    fn next_command(&mut self, stopping: bool) -> Option<Command> {
        match self.rx.try_recv() {
            Ok(cmd) => return Some(cmd),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if stopping => return None,
            Err(TryRecvError::Empty) => {}
        }
        let spin_until = Instant::now() + self.idle_spin;
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            // A host thread waiting for this shard's answer may share this core: let it
            // run between checks.
            std::thread::yield_now();
            match self.rx.try_recv() {
                Ok(cmd) => return Some(cmd),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if Instant::now() < spin_until => {}
                Err(TryRecvError::Empty) => break,
            }
        }
        let deadline = match (
            self.economics.next_deadline(),
            self.coordination.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timer = deadline.and_then(|t| self.clock.until(t));
        let retry = (!self.retry.is_empty()).then_some(Duration::from_nanos(RETRY_NANOS));
        match timer.into_iter().chain(retry).min() {
            Some(timeout) => self.rx.recv_timeout(timeout).ok(),
            None => self.rx.recv().ok(),
        }
    }

    /// Delivers the batch's shard-to-shard messages: to itself by applying them at once
    /// (they may produce more), to others by `try_send`, holding back what a full
    /// mailbox refuses. Returns the number of commands applied here.
    fn deliver(&mut self, ctx: &mut Ctx, stopping: &mut bool) -> u64 {
        let mut applied = 0;
        let mut pending = std::mem::take(&mut self.retry);
        loop {
            pending.extend(ctx.outbox.drain(..));
            let Some((target, cmd)) = pending.pop_front() else {
                break;
            };
            if target == self.index {
                applied += self.apply_guarded(cmd, ctx, stopping);
                continue;
            }
            match self.peers[target].try_send(cmd) {
                Ok(()) => {}
                Err(TrySendError::Full(cmd)) => {
                    if self.retry.len() < MAX_RETRY {
                        self.retry.push_back((target, cmd));
                    } else {
                        self.stats.forward_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // The target has stopped: the engine is shutting down.
                Err(TrySendError::Disconnected(_)) => {
                    self.stats.forward_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        applied
    }

    /// Applies one command, turning a handler panic into an `Internal` error for that
    /// command alone. Returns the number of commands applied.
    fn apply_guarded(&mut self, cmd: Command, ctx: &mut Ctx, stopping: &mut bool) -> u64 {
        match cmd {
            Command::Batch(cmds) => cmds
                .into_iter()
                .map(|c| self.apply_guarded(c, ctx, stopping))
                .sum(),
            Command::Shutdown => {
                *stopping = true;
                0
            }
            cmd => {
                let scope = DropScope::handler();
                let result = catch_unwind(AssertUnwindSafe(|| self.apply(cmd, ctx)));
                drop(scope);
                if result.is_err() {
                    self.stats.panics.fetch_add(1, Ordering::Relaxed);
                }
                1
            }
        }
    }

    fn apply(&mut self, cmd: Command, ctx: &mut Ctx) {
        match cmd {
            Command::Batch(_) | Command::Shutdown => {
                unreachable!("batches and shutdown are handled by apply_guarded")
            }
            Command::Flush(reply) => ctx.reply(reply, ()),
            Command::Stall { stalled, release } => {
                let _ = stalled.send(());
                let _ = release.recv();
            }
            Command::Panic(reply) => {
                let _reply = reply;
                panic!("fault injection: a handler panics (mabeam::testing)");
            }
            Command::Registry(c) => self.apply_registry(*c, ctx),
            Command::Agent(c) => self.apply_agent(c, ctx),
            Command::Economics(c) => self.economics.apply(c, ctx),
            Command::Coordination(c) => self.coordination.apply(c, ctx),
            Command::Events(c) => {
                if let Some((reply, found)) = ctx.events.apply(*c, ctx.now) {
                    ctx.reply(reply, found);
                }
            }
        }
    }

    fn apply_registry(&mut self, cmd: RegistryCommand, ctx: &mut Ctx) {
        match cmd {
            RegistryCommand::Register {
                entry,
                lease,
                reply,
            } => {
                let r = self.registry.register(entry, lease);
                if r.is_ok() {
                    let (name, handle) = (entry.name, entry.handle);
                    ctx.events.service(
                        "registry.registered",
                        || Payload::Registered { name, handle },
                        Some(handle),
                        ctx.now,
                    );
                }
                ctx.reply(reply, r);
            }
            RegistryCommand::UpdateMetadata {
                name,
                lease,
                metadata,
                reply,
            } => {
                let r = self.registry.update_metadata(&name, lease, metadata);
                ctx.reply(reply, r);
            }
            RegistryCommand::Unregister { name, lease, reply } => {
                let r = self.registry.unregister(&name, lease);
                if let Ok(entry) = &r {
                    let handle = entry.handle;
                    ctx.events.service(
                        "registry.unregistered",
                        || Payload::Unregistered { name, handle },
                        Some(handle),
                        ctx.now,
                    );
                }
                ctx.reply(reply, r);
            }
            RegistryCommand::Lookup { name, reply } => {
                let r = self.registry.get(&name);
                ctx.reply(reply, r);
            }
            RegistryCommand::Scan { reply } => {
                let r = self.registry.entries().map(|(e, _)| e).collect();
                ctx.reply(reply, r);
            }
        }
    }

    fn apply_agent(&mut self, cmd: AgentCommand, ctx: &mut Ctx) {
        match cmd {
            AgentCommand::Update { id, state, reply } => {
                let r = self.agents.update(id, state, ctx.now);
                ctx.reply(reply, r);
            }
            AgentCommand::Remove { id, reply } => {
                let r = self.agents.remove(id);
                ctx.reply(reply, r);
            }
            AgentCommand::Get { id, reply } => {
                let r = self.agents.get(id);
                ctx.reply(reply, r);
            }
            AgentCommand::JoinSession { id, session } => {
                // A full agent shard leaves the agent out of the marking; the session
                // itself goes on.
                let _ = self.agents.join_session(id, session, ctx.now);
            }
            AgentCommand::LeaveSession { id, session } => {
                self.agents.leave_session(id, session, ctx.now);
            }
        }
    }

    /// Publishes what the batch changed that is published per batch: each agent written
    /// in the batch once, with one `agent.state.updated` event.
    fn publish(&mut self, ctx: &mut Ctx) {
        let events = &mut ctx.events;
        let now = ctx.now;
        self.agents.publish_each(|snapshot| {
            events.service(
                "agent.state.updated",
                || Payload::AgentUpdated(*snapshot),
                Some(snapshot.id),
                now,
            );
        });
    }
}
