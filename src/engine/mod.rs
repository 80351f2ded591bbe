//! The engine: the services composed on the runtime, the owner that starts and stops
//! them, and the cheap handle that host threads hold.

mod config;
mod shard;

use std::fmt;
use std::sync::Arc;

use mabeam_shards::agents::{AgentShard, RECORD_WORDS as AGENT_WORDS};
use mabeam_shards::coordination::SESSION_STATUS_WORDS;
use mabeam_shards::interner::Interner;
use mabeam_shards::registry::{RegistryShard, RECORD_WORDS as REGISTRY_WORDS};
use mabeam_shards::table::TableReader;

pub use config::{Config, Mode, Reserve, MAX_SHARDS};
pub(crate) use shard::{Command, EngineShard, ServiceCtx};

use crate::agents::Agents;
use crate::auctions::Auctions;
use crate::barriers::{BarrierMap, Barriers};
use crate::batch_writer::BatchWriter;
use crate::coordination::{Coordination, CoordinationShard, CoordinationShared};
use crate::economics::{EconomicsPort, EconomicsShard};
use crate::events::{EventSink, Events, EventsShared};
use crate::market::Market;
use crate::pricing::Pricer;
use crate::registry::Registry;
use crate::runtime::{
    Clock, Reply, Runtime, SendWait, ShardReport, ShardThreads, StartError, StartReport, Ticket,
};
use crate::tasks::{TaskPool, Tasks};
use crate::Error;

/// What [`Engine::shutdown`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// One report per shard, in shard order.
    pub shards: Vec<ShardReport>,
    /// Tasks still running when `Config::shutdown_timeout` ran out: their tickets
    /// resolved with `ShutDown` and their worker threads were left to finish on their
    /// own (detached).
    pub abandoned_tasks: usize,
}

impl ShutdownReport {
    /// Commands applied by all shards together.
    pub fn applied(&self) -> u64 {
        self.shards.iter().map(|s| s.applied).sum()
    }

    /// The shards whose thread died.
    pub fn dead_shards(&self) -> Vec<usize> {
        self.shards
            .iter()
            .filter(|s| s.died)
            .map(|s| s.shard)
            .collect()
    }
}

/// One shard's published tables, as readers see them.
pub(crate) struct Port {
    pub registry: TableReader<REGISTRY_WORDS>,
    pub agents: TableReader<AGENT_WORDS>,
    pub economics: EconomicsPort,
    pub coordination: TableReader<SESSION_STATUS_WORDS>,
}

/// What every handle of an engine shares.
pub(crate) struct Inner {
    pub rt: Runtime<Command>,
    pub ports: Vec<Port>,
    pub mode: Mode,
    pub config: Config,
    pub capabilities: Arc<Interner>,
    pub tasks: TaskPool,
    pub events: EventsShared,
    pub coordination: CoordinationShared,
    pub barriers: BarrierMap,
    next_lease: std::sync::atomic::AtomicU64,
    /// Cores available to this process at start.
    pub cores: usize,
    /// The core each shard was pinned to at start (`StartReport::pinned`).
    pub pinned: Vec<Option<usize>>,
    /// Id sequences carried over from the state this engine was restored from (for id
    /// prefixes and event shards this engine does not have): later exports keep them.
    pub carried_auction_sequences: Vec<u64>,
    pub carried_event_sequences: Vec<u64>,
    /// Auction and session id prefixes that can be this engine's: the shard count, or
    /// more after a restore from an engine with more shards. An id with a prefix beyond
    /// is refused without a message (`NotFound` / unknown session).
    pub id_prefixes: u64,
}

impl Inner {
    /// `Err(ShutDown)` once shutdown has begun.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        self.rt.check_open()
    }

    /// True in the centralized (GenServer) shape.
    #[inline]
    pub(crate) fn centralized(&self) -> bool {
        self.mode == Mode::Centralized
    }

    /// The shard that owns `key` (a stable 64-bit key).
    #[inline]
    pub(crate) fn shard_of(&self, key: u64) -> usize {
        self.rt.shard_of(key)
    }

    /// Sends a fire-and-forget command.
    #[inline]
    pub(crate) fn send(
        &self,
        shard: usize,
        cmd: impl Into<Command>,
        wait: SendWait,
    ) -> Result<(), Error> {
        self.rt.send(shard, cmd.into(), wait)
    }

    /// Sends a command built around a fresh reply; the ticket resolves with its answer
    /// or the refusal.
    #[inline]
    pub(crate) fn call<T, C: Into<Command>>(
        &self,
        shard: usize,
        build: impl FnOnce(Reply<T>) -> C,
    ) -> Ticket<T> {
        self.rt.call(shard, |reply| build(reply).into())
    }

    /// Centralized mode: a synchronous round trip to the single shard.
    pub(crate) fn round_trip<T, C: Into<Command>>(
        &self,
        build: impl FnOnce(Reply<T>) -> C,
    ) -> Result<T, Error> {
        self.call(0, build).wait()
    }

    /// A ticket already resolved with `result`.
    #[inline]
    pub(crate) fn ready<T>(&self, result: Result<T, Error>) -> Ticket<T> {
        self.rt.ready(result)
    }

    /// Counts a snapshot read (telemetry: a per-thread counter).
    #[inline]
    pub(crate) fn read(&self, read: usize) {
        self.rt.host().read(read);
    }

    /// A fresh lease token.
    pub(crate) fn next_lease(&self) -> u64 {
        self.next_lease
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The `Debug` of a service handle named `name` on this engine: its shape and
    /// whether it is shut down (no shard is asked anything).
    pub(crate) fn debug_handle(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("mode", &self.mode)
            .field("shards", &self.ports.len())
            .field("shut_down", &self.check_open().is_err())
            .finish()
    }
}

/// A cheap, cloneable handle to a running engine: `Clone + Send + Sync + 'static`, an
/// `Arc` inside, so host threads hold services without borrowing the [`Engine`].
///
/// Every service is reached through it ([`registry`](Self::registry),
/// [`agents`](Self::agents), …); the [`Engine`] dereferences to its own handle. A handle
/// does not keep the engine running: after [`Engine::shutdown`] (or dropping the engine)
/// every call through any handle returns `ShutDown`.
///
/// ```
/// use mabeam::{Config, Engine};
/// use mabeam::agents::AgentState;
///
/// let engine = Engine::start(Config::default().with_shards(2).with_pin_threads(false))?;
/// let handle = engine.handle();
/// let writer = std::thread::spawn(move || {
///     handle.agents().update_acked(7, AgentState::default()).wait()
/// });
/// assert!(writer.join().unwrap()?.is_ok());
/// let handle = engine.handle();
/// engine.shutdown();
/// assert_eq!(handle.flush(), Err(mabeam::Error::ShutDown));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug_handle("EngineHandle", f)
    }
}

impl EngineHandle {
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
        self.inner.rt.clock()
    }

    /// True once shutdown has begun.
    pub fn is_shut_down(&self) -> bool {
        self.inner.check_open().is_err()
    }

    /// The agent registry.
    pub fn registry(&self) -> Registry<'_> {
        Registry::new(&self.inner)
    }

    /// Agent states.
    pub fn agents(&self) -> Agents<'_> {
        Agents::new(&self.inner)
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
    pub fn pricing(&self) -> Pricer<'_> {
        Pricer::new(&self.inner)
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

    /// A writer that buffers fire-and-forget commands per shard and sends each buffer as
    /// one message when it holds `batch` commands (at most `Config::mailbox_capacity`),
    /// or on [`BatchWriter::flush`]. For host threads that write a lot: one message per
    /// command costs hundreds of nanoseconds, a batch amortises it.
    pub fn batch_writer(&self, batch: usize) -> BatchWriter {
        BatchWriter::new(self.inner.clone(), batch)
    }

    /// Returns once every shard has applied and published everything this thread sent
    /// before the call (read-your-writes), including what those commands made one shard
    /// send to another (a sale's market feed). Commands still held in a [`BatchWriter`]
    /// have not been sent: flush the writer first. A dead shard makes it return
    /// `ShardDown`.
    pub fn flush(&self) -> Result<(), Error> {
        self.inner.rt.flush()
    }

    /// Fault injection for tests (stall a shard, make a handler panic, kill a shard).
    /// Not part of the supported API.
    #[doc(hidden)]
    pub fn testing(&self) -> crate::testing::Testing<'_> {
        crate::testing::Testing { inner: &self.inner }
    }

    /// Telemetry: counters and latency histograms of the shards, the operations and the
    /// callers, and their Prometheus text.
    pub fn telemetry(&self) -> crate::telemetry::Telemetry<'_> {
        crate::telemetry::Telemetry::new(&self.inner)
    }

    /// What the engine holds and uses now: threads and pinning, resident memory,
    /// mailboxes, tables, tickets, subscriptions, retained events, tasks.
    pub fn resources(&self) -> Result<crate::resources::Resources, Error> {
        crate::resources::snapshot(&self.inner)
    }

    /// Messages waiting in each shard's mailbox (control messages included).
    pub fn mailbox_depths(&self) -> Vec<usize> {
        self.inner.rt.mailbox_depths()
    }

    /// Commands applied so far, per shard.
    pub fn applied(&self) -> Vec<u64> {
        self.inner.rt.applied()
    }

    /// The engine's whole observable state, as one consistent cut across the shards: the
    /// state after every write acknowledged before this call (and everything such a
    /// write made one shard send another), prefix-closed per writing thread, and nothing
    /// of a write sent after it returned. See [`crate::state`] for what is in it and
    /// `runtime/export.rs` for the protocol.
    ///
    /// While it runs (a pause of every mailbox, two rounds of markers and a snapshot per
    /// shard) writers wait for room as for a full mailbox (`try_` calls get `Busy`) and
    /// timers fire late by its duration. Barriers are read while the shards are frozen;
    /// barrier arrivals do not go through the shards, so they are not part of the cut.
    ///
    /// Errors: `ShutDown`, `ShardDown`, `Busy` (a marker found no room within
    /// `send_timeout`), `Internal` (a shard's export panicked); the engine runs on
    /// unchanged after any of them.
    pub fn export(&self) -> Result<crate::state::EngineState, Error> {
        let inner = &*self.inner;
        let mut host = None;
        let parts = inner.rt.export_with(|| {
            host = Some(crate::state::restore::HostExport {
                taken_at: inner.rt.clock().now(),
                capabilities: (0..inner.capabilities.capacity())
                    .map(|id| inner.capabilities.name(id))
                    .collect(),
                session_sequence: inner.coordination.next_sequence(),
                barriers: inner.barriers.export(),
                carried_auction_sequences: inner.carried_auction_sequences.clone(),
                carried_event_sequences: inner.carried_event_sequences.clone(),
            });
        })?;
        let host = host.ok_or(Error::Internal("the export took no host state"))?;
        let mut shards = Vec::with_capacity(parts.len());
        for part in parts {
            match part.downcast::<crate::state::restore::ShardExport>() {
                Ok(p) => shards.push(*p),
                Err(_) => return Err(Error::Internal("a shard exported something else")),
            }
        }
        Ok(crate::state::restore::assemble(shards, host))
    }

    /// Each shard's counters so far (commands applied and forwarded, handler panics,
    /// batches, whether its thread died), as [`Engine::shutdown`] reports them at the
    /// end. Each counter is read on its own (`Relaxed`), so the set is not one instant.
    pub fn shard_reports(&self) -> Vec<ShardReport> {
        self.inner.rt.reports()
    }
}

/// A running mabeam engine: the owner of the shard threads, their mailboxes and
/// published snapshots.
///
/// It dereferences to its [`EngineHandle`], so every service is reached from it
/// directly; [`handle`](Self::handle) gives owned handles for other threads. Dropping the
/// engine shuts it down.
///
/// ```
/// use mabeam::{Config, Engine};
/// use mabeam::agents::{AgentState, AgentStatus};
///
/// let engine = Engine::start(Config::default().with_shards(2).with_pin_threads(false))?;
/// engine.agents().update(7, AgentState { status: AgentStatus::Busy, ..AgentState::default() })?;
/// engine.flush()?; // read-your-writes
/// assert_eq!(engine.agents().get(7)?.unwrap().state.status, AgentStatus::Busy);
/// let report = engine.shutdown();
/// assert_eq!(report.applied(), 5); // the update and two flush rounds on two shards
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Engine {
    handle: EngineHandle,
    threads: Option<ShardThreads>,
    start: StartReport,
    /// The `metrics` reporter thread, stopped before the shards.
    #[cfg(feature = "metrics")]
    reporter: Option<crate::telemetry::reporter::Reporter>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.inner.debug_handle("Engine", f)
    }
}

impl std::ops::Deref for Engine {
    type Target = EngineHandle;

    fn deref(&self) -> &EngineHandle {
        &self.handle
    }
}

impl Engine {
    /// Checks `config`, then starts the shard threads `mabeam-shard-{i}` (pinned to their
    /// cores when `config.pin_threads` is set) and the task pool, and returns once every
    /// shard runs.
    pub fn start(config: Config) -> Result<Engine, StartError> {
        Self::launch(config, None).map_err(|e| match e {
            crate::state::RestoreError::Config(e) => e,
            // Only a state can be refused for its contents, and there is none.
            _ => StartError::InvalidConfig {
                field: "state",
                reason: "refused without a state",
            },
        })
    }

    /// Starts an engine from an exported state, with `config`'s shape and shard count
    /// (any: the state is re-partitioned; see [`crate::state`]). Refuses, before any
    /// thread starts, a configuration that [`start`](Self::start) would refuse and a
    /// state that does not fit it ([`RestoreError`](crate::state::RestoreError)).
    ///
    /// Restored registry entries are held by nobody until claimed
    /// ([`Registry::claim`](crate::registry::Registry::claim)). The engine's clock should
    /// read at least `state.taken_at` (deadlines and times in the state are on the
    /// exporting engine's clock): use a manual clock set to it, or a system clock
    /// started that long ago.
    pub fn start_from(
        config: Config,
        state: &crate::state::EngineState,
    ) -> Result<Engine, crate::state::RestoreError> {
        Self::launch(config, Some(state))
    }

    fn launch(
        config: Config,
        restore: Option<&crate::state::EngineState>,
    ) -> Result<Engine, crate::state::RestoreError> {
        config.validate()?;
        let n = config.shard_count();
        let coordination = CoordinationShared::new();
        let capabilities = Arc::new(Interner::new(mabeam_shards::registry::MAX_CAPABILITIES));
        let mut ports = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        for index in 0..n {
            let reserve = config.reserve;
            let registry = RegistryShard::with_reserve(config.registry_capacity, reserve.registry);
            let agents = AgentShard::with_reserve(config.agent_capacity, reserve.agents);
            let (economics, economics_port) =
                EconomicsShard::new(index, n, &config.economics, reserve.auctions).map_err(
                    |_| StartError::InvalidConfig {
                        field: "economics.market",
                        reason: "limits must be at least 1",
                    },
                )?;
            let (coordination_shard, coordination_port) =
                CoordinationShard::new(&config.coordination, &coordination);
            ports.push(Port {
                registry: registry.reader(),
                agents: agents.reader(),
                economics: economics_port,
                coordination: coordination_port,
            });
            states.push(EngineShard {
                registry,
                capabilities: Arc::clone(&capabilities),
                agents,
                economics,
                coordination: coordination_shard,
                events: EventSink::new(index, &config.events),
            });
        }
        let barriers = BarrierMap::default();
        let (mut carried_auction_sequences, mut carried_event_sequences) = (Vec::new(), Vec::new());
        let mut id_prefixes = n as u64;
        if let Some(state) = restore {
            crate::state::restore::check_bounds(&config, state, n)?;
            crate::state::restore::fill(&mut states, &capabilities, state)?;
            barriers.restore(&state.barriers)?;
            coordination.continue_at(state.session_sequence);
            carried_auction_sequences = state.auction_sequences.clone();
            carried_event_sequences = state.event_sequences.clone();
            id_prefixes = crate::state::restore::id_prefixes(state).max(id_prefixes);
        }
        let tasks = TaskPool::start(config.task_workers, config.task_queue)
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let (rt, threads, start) = match Runtime::start(&config.runtime_settings(), states) {
            Ok(started) => started,
            Err(e) => {
                tasks.shutdown(config.shutdown_timeout);
                return Err(e.into());
            }
        };
        let inner = Arc::new(Inner {
            rt,
            ports,
            mode: config.mode,
            capabilities,
            tasks,
            events: EventsShared::new(),
            coordination,
            barriers,
            next_lease: std::sync::atomic::AtomicU64::new(1),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pinned: start.pinned.clone(),
            carried_auction_sequences,
            carried_event_sequences,
            id_prefixes,
            config,
        });
        #[cfg(feature = "metrics")]
        let reporter = crate::telemetry::reporter::Reporter::start(&inner);
        Ok(Engine {
            handle: EngineHandle { inner },
            threads: Some(threads),
            start,
            #[cfg(feature = "metrics")]
            reporter,
        })
    }

    /// An owned handle to this engine, for other threads.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// What [`start`](Self::start) did.
    pub fn start_report(&self) -> &StartReport {
        &self.start
    }

    /// Shuts the engine down and reports what it did:
    ///
    /// 1. every later call on any handle returns `ShutDown`, and barrier waiters are
    ///    woken with it;
    /// 2. the task pool stops taking tasks, drops the queued ones (their tickets resolve
    ///    with `ShutDown`) and waits up to `Config::shutdown_timeout` for the running
    ///    ones, then abandons them (reported);
    /// 3. every shard applies everything it had accepted, then everything those
    ///    commands sent between shards, and its thread is joined.
    ///
    /// So every write whose call returned `Ok` is applied, every call that returned
    /// `ShutDown` was not, and every ticket resolves.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport {
        let Some(threads) = self.threads.take() else {
            return ShutdownReport {
                shards: Vec::new(),
                abandoned_tasks: 0,
            };
        };
        #[cfg(feature = "metrics")]
        if let Some(reporter) = self.reporter.take() {
            reporter.stop();
        }
        let inner = &self.handle.inner;
        inner.rt.begin_shutdown();
        inner.barriers.shutdown();
        let abandoned_tasks = inner.tasks.shutdown(inner.config.shutdown_timeout);
        let shards = inner.rt.stop(threads);
        ShutdownReport {
            shards,
            abandoned_tasks,
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}
