//! The engine: starts the shard threads, routes commands, flushes and shuts down.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use flume::{Receiver, SendTimeoutError, Sender, TrySendError};
use mabeam_shards::agents::{AgentShard, RECORD_WORDS as AGENT_WORDS};
use mabeam_shards::registry::{mix64, RegistryShard, RECORD_WORDS as REGISTRY_WORDS};
use mabeam_shards::table::TableReader;

use crate::agents::Agents;
use crate::auctions::Auctions;
use crate::barriers::{BarrierMap, Barriers};
use crate::batch::BatchWriter;
use crate::clock::Clock;
use crate::command::Command;
use crate::config::{Config, Mode};
use crate::coordination::{Coordination, CoordinationShard, CoordinationShared};
use crate::economics::{EconomicsPort, EconomicsShard};
use crate::events::{EventSink, Events, EventsShared};
use crate::market::Market;
use crate::pricing::PricingService;
use crate::registry::Registry;
use crate::shard::{Shard, ShardReport, ShardStats};
use crate::tasks::{TaskPool, Tasks};
use crate::ticket::{DropScope, Reply, Ticket};
use crate::Error;
use mabeam_shards::coordination::SESSION_STATUS_WORDS;
use mabeam_shards::interner::Interner;

/// Most shards an engine may have.
pub const MAX_SHARDS: usize = 1024;

/// Why [`Engine::start`] refused a configuration or could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// A configuration field is out of range; the message names it.
    InvalidConfig(&'static str),
    /// The operating system refused to start a shard thread.
    Spawn(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Self::Spawn(e) => write!(f, "could not start a shard thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// What [`Engine::start`] did: shard count and which shards it pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartReport {
    /// Number of shard threads.
    pub shards: usize,
    /// For each shard, the core it was pinned to, or `None` if pinning was off or failed.
    pub pinned: Vec<Option<usize>>,
    /// Why pinning failed, if it did (not fatal: the shards run unpinned).
    pub pin_errors: Vec<String>,
}

/// What [`Engine::shutdown`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// One report per shard, in shard order.
    pub shards: Vec<ShardReport>,
}

impl ShutdownReport {
    /// Commands applied by all shards together.
    pub fn applied(&self) -> u64 {
        self.shards.iter().map(|s| s.applied).sum()
    }
}

/// How a send waits for mailbox space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendMode {
    /// Up to `Config::send_timeout`, then `Busy`.
    Timeout,
    /// `Busy` at once if the mailbox is full.
    Try,
    /// Until there is space (lease release on drop: it must not be lost).
    Block,
}

/// One shard as the rest of the engine sees it: its mailbox and its published tables.
pub(crate) struct Port {
    pub tx: Sender<Command>,
    /// Kept to drain commands that race shutdown (see [`Inner::send`]).
    rx: Receiver<Command>,
    pub registry: TableReader<REGISTRY_WORDS>,
    pub agents: TableReader<AGENT_WORDS>,
    pub economics: EconomicsPort,
    pub coordination: TableReader<SESSION_STATUS_WORDS>,
    pub stats: Arc<ShardStats>,
}

/// What every handle of an engine shares.
pub(crate) struct Inner {
    pub ports: Vec<Port>,
    pub mode: Mode,
    pub config: Config,
    shut: AtomicBool,
    /// Set once every shard thread has been joined (see [`Inner::send`]).
    stopped: AtomicBool,
    next_lease: AtomicU64,
    pub capabilities: Interner,
    pub tasks: TaskPool,
    pub events: EventsShared,
    pub coordination: CoordinationShared,
    pub barriers: BarrierMap,
    /// Cores available to this process at start.
    pub cores: usize,
}

/// The shard of `n` that owns `key` (a stable 64-bit key): multiply-shift range
/// reduction of the mixed key.
#[inline]
pub(crate) fn shard_for(key: u64, n: usize) -> usize {
    ((u128::from(mix64(key)) * n as u128) >> 64) as usize
}

impl Inner {
    /// True once shutdown has begun.
    #[inline]
    pub(crate) fn is_shut(&self) -> bool {
        self.shut.load(Ordering::Relaxed)
    }

    /// `Err(ShutDown)` once shutdown has begun.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.is_shut() {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// True in the centralized (GenServer) shape.
    #[inline]
    pub(crate) fn centralized(&self) -> bool {
        self.mode == Mode::Centralized
    }

    /// The shard that owns `key` (a stable 64-bit key).
    #[inline]
    pub(crate) fn shard_of(&self, key: u64) -> usize {
        shard_for(key, self.ports.len())
    }

    /// Sends `cmd` to shard `shard`.
    ///
    /// A send that races shutdown. Shutdown sets `shut` (no new sends), lets every shard
    /// apply everything queued before and after its `Shutdown` marker until its mailbox
    /// is empty, joins the shards, sets `stopped`, then drains every mailbox once more
    /// (dropping a command resolves its reply with `ShutDown`). A sender that passed the
    /// `shut` check enqueues, then loads `stopped` (both `SeqCst`): if the shards are
    /// gone, it drains the mailbox itself and reports `ShutDown`; if not, its command was
    /// enqueued before shutdown's final drain, which applies or resolves it. So no
    /// command is ever stranded, and no sender ever drains a mailbox a shard still reads
    /// (that would drop commands already accepted, or the `Shutdown` marker itself).
    pub(crate) fn send(&self, shard: usize, cmd: Command, mode: SendMode) -> Result<(), Error> {
        if self.shut.load(Ordering::SeqCst) {
            return Err(Error::ShutDown);
        }
        let port = &self.ports[shard];
        let refused = match mode {
            SendMode::Try => match port.tx.try_send(cmd) {
                Ok(()) => None,
                Err(TrySendError::Full(cmd)) => Some((cmd, Error::Busy)),
                Err(TrySendError::Disconnected(cmd)) => Some((cmd, Error::ShutDown)),
            },
            SendMode::Timeout => match port.tx.send_timeout(cmd, self.config.send_timeout) {
                Ok(()) => None,
                Err(SendTimeoutError::Timeout(cmd)) => Some((cmd, Error::Busy)),
                Err(SendTimeoutError::Disconnected(cmd)) => Some((cmd, Error::ShutDown)),
            },
            SendMode::Block => match port.tx.send(cmd) {
                Ok(()) => None,
                Err(e) => Some((e.into_inner(), Error::ShutDown)),
            },
        };
        if let Some((cmd, error)) = refused {
            let _scope = (error == Error::Busy).then(DropScope::busy);
            drop(cmd);
            return Err(error);
        }
        if self.stopped.load(Ordering::SeqCst) {
            self.drain(shard);
            return Err(Error::ShutDown);
        }
        Ok(())
    }

    /// Sends a command built around a fresh reply and returns the ticket for it; a
    /// refused send resolves the ticket with the refusal.
    pub(crate) fn call<T>(
        &self,
        shard: usize,
        mode: SendMode,
        build: impl FnOnce(Reply<T>) -> Command,
    ) -> Ticket<T> {
        let (ticket, reply) = Ticket::new(self.config.ticket_spin);
        // On refusal the command (and its reply) is dropped inside `send`, which
        // resolves the ticket with the reason.
        let _ = self.send(shard, build(reply), mode);
        ticket
    }

    /// Centralized mode: a synchronous round trip to the single shard.
    pub(crate) fn round_trip<T>(
        &self,
        build: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, Error> {
        self.call(0, SendMode::Timeout, build).wait()
    }

    /// A fresh lease token.
    pub(crate) fn next_lease(&self) -> u64 {
        self.next_lease.fetch_add(1, Ordering::Relaxed)
    }

    fn drain(&self, shard: usize) {
        while self.ports[shard].rx.try_recv().is_ok() {}
    }
}

/// A running mabeam engine: shard threads, their mailboxes and published snapshots.
///
/// ```
/// use mabeam::{Config, Engine};
/// use mabeam::agents::{AgentState, AgentStatus};
///
/// let engine = Engine::start(Config { shards: 2, pin_threads: false, ..Config::default() })?;
/// engine.agents().update(7, AgentState { status: AgentStatus::Busy, ..AgentState::default() })?;
/// engine.flush()?; // read-your-writes
/// assert_eq!(engine.agents().get(7)?.unwrap().state.status, AgentStatus::Busy);
/// let report = engine.shutdown();
/// assert_eq!(report.applied(), 5); // the update and two flush rounds on two shards
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Engine {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<ShardReport>>,
    start: StartReport,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("mode", &self.inner.mode)
            .field("shards", &self.inner.ports.len())
            .field("shut", &self.inner.is_shut())
            .finish()
    }
}

impl Engine {
    /// Starts the shard threads `mabeam-shard-{i}`, pinned to their cores when
    /// `config.pin_threads` is set.
    pub fn start(config: Config) -> Result<Engine, StartError> {
        validate(&config)?;
        let n = config.shard_count();
        let cores = if config.pin_threads {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mailboxes: Vec<_> = (0..n)
            .map(|_| flume::bounded(config.mailbox_capacity))
            .collect();
        let peers: Arc<[Sender<Command>]> = mailboxes.iter().map(|(tx, _)| tx.clone()).collect();
        let coordination_shared = CoordinationShared::new();
        let mut ports = Vec::with_capacity(n);
        let mut shards = Vec::with_capacity(n);
        for (index, (tx, rx)) in mailboxes.into_iter().enumerate() {
            let registry = RegistryShard::new(config.registry_capacity);
            let agents = AgentShard::new(config.agent_capacity);
            let (economics, economics_port) = EconomicsShard::new(index, n, &config.economics)
                .map_err(|_| {
                    StartError::InvalidConfig("economics.market limits must be at least 1")
                })?;
            let (coordination, coordination_port) =
                CoordinationShard::new(n, &config.coordination, &coordination_shared);
            let stats = Arc::new(ShardStats::default());
            ports.push(Port {
                tx,
                rx: rx.clone(),
                registry: registry.reader(),
                agents: agents.reader(),
                economics: economics_port,
                coordination: coordination_port,
                stats: stats.clone(),
            });
            shards.push(Shard {
                index,
                rx,
                clock: config.clock.clone(),
                stats,
                batch_size: config.batch_size,
                idle_spin: config.idle_spin,
                registry,
                agents,
                economics,
                coordination,
                events: Some(EventSink::new(index, &config.events)),
                peers: peers.clone(),
                retry: Default::default(),
            });
        }
        let tasks = TaskPool::start(config.task_workers, config.task_queue)
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let inner = Arc::new(Inner {
            ports,
            mode: config.mode,
            config,
            shut: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            next_lease: AtomicU64::new(1),
            capabilities: Interner::new(mabeam_shards::registry::MAX_CAPABILITIES),
            tasks,
            events: EventsShared::new(),
            coordination: coordination_shared,
            barriers: BarrierMap::default(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        });
        let (pin_tx, pin_rx) = flume::bounded(n);
        let mut threads = Vec::with_capacity(n);
        for shard in shards {
            let core = (!cores.is_empty()).then(|| cores[shard.index % cores.len()]);
            let pin_tx = pin_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mabeam-shard-{}", shard.index))
                .spawn(move || {
                    let pinned = core.map(|c| (c.id, core_affinity::set_for_current(c)));
                    let _ = pin_tx.send((shard.index, pinned));
                    shard.run()
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let mut engine = Engine {
                        inner,
                        threads,
                        start: StartReport {
                            shards: 0,
                            pinned: Vec::new(),
                            pin_errors: Vec::new(),
                        },
                    };
                    engine.stop();
                    return Err(StartError::Spawn(e.to_string()));
                }
            }
        }
        drop(pin_tx);
        let mut pinned = vec![None; n];
        let mut pin_errors = Vec::new();
        for (index, result) in pin_rx.iter().take(n) {
            match result {
                Some((core, true)) => pinned[index] = Some(core),
                Some((core, false)) => {
                    pin_errors.push(format!("shard {index}: could not pin to core {core}"))
                }
                None => {}
            }
        }
        if inner.config.pin_threads && cores.is_empty() {
            pin_errors.push("core_affinity reported no cores; shards run unpinned".into());
        }
        Ok(Engine {
            inner,
            threads,
            start: StartReport {
                shards: n,
                pinned,
                pin_errors,
            },
        })
    }

    /// What [`start`](Self::start) did.
    pub fn start_report(&self) -> &StartReport {
        &self.start
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.inner.ports.len()
    }

    /// Sharded or centralized.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.config.clock
    }

    /// The agent registry.
    pub fn registry(&self) -> Registry<'_> {
        Registry::new(&self.inner)
    }

    /// Agent states.
    pub fn agents(&self) -> Agents<'_> {
        Agents::new(&self.inner)
    }

    /// A writer that buffers fire-and-forget commands per shard and sends each buffer as
    /// one message when it holds `batch` commands, on [`BatchWriter::flush`] and on drop.
    /// For host threads that write a lot: one message per command costs hundreds of
    /// nanoseconds, a batch amortises it.
    pub fn batch_writer(&self, batch: usize) -> BatchWriter {
        BatchWriter::new(self.inner.clone(), batch)
    }

    /// Returns once every shard has applied and published everything this thread sent
    /// before the call (read-your-writes), including what those commands made one shard
    /// send to another (a sale's market feed): the flush runs in two rounds, and a shard
    /// hands its shard-to-shard messages over before it answers the first. (A message
    /// held back by a full target mailbox is the exception: it is retried, not awaited.)
    /// Commands still buffered in a [`BatchWriter`] have not been sent: flush the writer
    /// first.
    pub fn flush(&self) -> Result<(), Error> {
        for _round in 0..2 {
            let tickets: Vec<Ticket<()>> = (0..self.inner.ports.len())
                .map(|s| self.inner.call(s, SendMode::Timeout, Command::Flush))
                .collect();
            for t in tickets {
                t.wait()?;
            }
        }
        Ok(())
    }

    /// Auctions.
    pub fn auctions(&self) -> Auctions<'_> {
        Auctions::new(&self.inner)
    }

    /// Market data.
    pub fn market(&self) -> Market<'_> {
        Market::new(&self.inner)
    }

    /// Pricing, computed on the task pool and cached.
    pub fn pricing(&self) -> PricingService<'_> {
        PricingService::new(&self.inner)
    }

    /// The task pool.
    pub fn tasks(&self) -> Tasks<'_> {
        Tasks::new(&self.inner)
    }

    /// Events: subscriptions, host events, history.
    pub fn events(&self) -> Events<'_> {
        Events::new(&self.inner)
    }

    /// Coordination sessions.
    pub fn coordination(&self) -> Coordination<'_> {
        Coordination::new(&self.inner)
    }

    /// Barriers.
    pub fn barriers(&self) -> Barriers<'_> {
        Barriers::new(&self.inner)
    }

    /// Fault injection for tests (stall a shard, make a handler panic). Not part of the
    /// supported API.
    #[doc(hidden)]
    pub fn testing(&self) -> crate::testing::Testing<'_> {
        crate::testing::Testing { inner: &self.inner }
    }

    /// Mailbox depth of each shard (messages waiting).
    pub fn mailbox_depths(&self) -> Vec<usize> {
        self.inner.ports.iter().map(|p| p.tx.len()).collect()
    }

    /// Commands applied so far, per shard.
    pub fn applied(&self) -> Vec<u64> {
        self.inner
            .ports
            .iter()
            .map(|p| p.stats.applied.load(Ordering::Relaxed))
            .collect()
    }

    /// Stops accepting calls, lets every shard apply everything already in its mailbox,
    /// resolves every ticket, joins the threads and reports what each shard did. Every
    /// later call on any handle of this engine returns `ShutDown`.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport {
        let mut report = ShutdownReport { shards: Vec::new() };
        if self.threads.is_empty() {
            return report;
        }
        self.inner.shut.store(true, Ordering::SeqCst);
        self.inner.barriers.shutdown();
        for port in &self.inner.ports {
            // The shard keeps draining, so a blocking send gets in.
            let _ = port.tx.send(Command::Shutdown);
        }
        for (index, handle) in self.threads.drain(..).enumerate() {
            match handle.join() {
                Ok(r) => report.shards.push(r),
                // A shard thread only panics outside a handler if the engine has a bug;
                // report what its counters say.
                Err(_) => {
                    let mut r = self.inner.ports[index].stats.report(index);
                    r.panics += 1;
                    report.shards.push(r);
                }
            }
        }
        self.inner.stopped.store(true, Ordering::SeqCst);
        for shard in 0..self.inner.ports.len() {
            self.inner.drain(shard);
        }
        self.inner.tasks.shutdown();
        report
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn validate(config: &Config) -> Result<(), StartError> {
    let invalid = |what| Err(StartError::InvalidConfig(what));
    if config.shard_count() > MAX_SHARDS {
        return invalid("shards must be at most 1024");
    }
    if config.mailbox_capacity == 0 {
        return invalid("mailbox_capacity must be at least 1");
    }
    if config.batch_size == 0 {
        return invalid("batch_size must be at least 1");
    }
    if config.task_workers == 0 || config.task_queue == 0 {
        return invalid("task_workers and task_queue must be at least 1");
    }
    if config.registry_capacity == 0 || config.agent_capacity == 0 {
        return invalid("registry_capacity and agent_capacity must be at least 1");
    }
    Ok(())
}
