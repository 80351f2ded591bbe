//! Engine configuration and its validation.

use std::time::Duration;

use crate::coordination::CoordinationConfig;
use crate::economics::EconomicsConfig;
use crate::events::EventsConfig;
use crate::runtime::{Clock, Settings, StartError};
use crate::telemetry::TelemetryConfig;

/// Most shards an engine may have.
pub const MAX_SHARDS: usize = 1024;

/// How the engine is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Several pinned shards; reads from published snapshots, writes as messages.
    Sharded,
    /// The "before" shape, the original GenServer: one shard, and every read and write a
    /// synchronous round trip through its mailbox. Kept for comparison and as the
    /// rollback path.
    Centralized,
}

/// Everything [`Engine::start`](crate::Engine::start) needs to know.
///
/// Every field is checked at start; a value that would make a service unusable or a
/// thread fail later is refused with [`StartError::InvalidConfig`] naming the field.
/// Durations are accepted over their whole range (`Duration::MAX` waits as long as the
/// platform's clock can express).
///
/// `Config` is `#[non_exhaustive]`, so that adding a field is not a breaking change:
/// build one from [`Config::default()`] (or [`Config::centralized()`]) with the
/// `with_*` setters, or assign its public fields on a mutable value.
///
/// ```
/// use std::time::Duration;
/// use mabeam::Config;
///
/// let config = Config::default()
///     .with_shards(2)
///     .with_pin_threads(false)
///     .with_send_timeout(Duration::from_millis(100));
/// assert_eq!(config.shard_count(), 2);
///
/// let mut config = Config::default(); // the same, field by field
/// config.shards = 2;
/// config.economics.pricing_cache = 1024; // sub-configurations too
/// assert_eq!(config.shard_count(), 2);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Number of shard threads; 0 chooses one per core that `core_affinity` reports, less
    /// `host_cores` (at least one). Ignored in [`Mode::Centralized`], which always has
    /// one.
    pub shards: usize,
    /// Cores left for the host's own threads when `shards` is 0. A shard that shares its
    /// core with a busy host thread answers only when the scheduler lets it; see the
    /// sizing rule in the crate docs.
    pub host_cores: usize,
    /// Pin shard `i` to core `i mod cores`. A failure to pin is reported in
    /// [`StartReport`](crate::StartReport), not fatal.
    pub pin_threads: bool,
    /// Sharded or centralized.
    pub mode: Mode,
    /// Most commands each shard holds admitted and not yet applied — queued, or in the
    /// batch being applied (a batch from a [`BatchWriter`](crate::BatchWriter) counts
    /// one per command). Acknowledged calls are admitted up to here; when it is full,
    /// `try_` calls return `Busy` at once and blocking calls wait up to `send_timeout`.
    pub mailbox_capacity: usize,
    /// How long the fire-and-forget work queued at a shard may take to apply: a
    /// fire-and-forget write is admitted only while the queued work is below that
    /// (writes beyond wait for room, up to `send_timeout`, then `Busy`). This bounds how
    /// long an acknowledged call waits behind fire-and-forget backlog. The shard turns it
    /// into a number of commands with its measured cost per command (a batched command
    /// costs a fraction of a single message), at least 8 and at most
    /// `mailbox_capacity`; `Duration::MAX` admits writes up to `mailbox_capacity`.
    pub write_delay: Duration,
    /// Most messages each shard-to-shard lane holds. A full lane never drops: the
    /// sending shard keeps the rest and takes no host commands until they fit.
    pub lane_capacity: usize,
    /// How long a blocking send waits for mailbox room before returning `Busy`.
    pub send_timeout: Duration,
    /// Most messages a shard takes into one batch before it publishes and replies.
    pub batch_size: usize,
    /// How long an idle shard polls its mailbox before it sleeps (a wake from sleep costs
    /// several microseconds here). The poll yields the core between checks, so host
    /// threads sharing the core still run.
    pub idle_spin: Duration,
    /// How long a ticket waiter spins before it parks (a park/unpark wake costs several
    /// microseconds here; a shard usually answers in about one). The spin yields the core
    /// between checks, and at most one waiter per core spins at once, process-wide; the
    /// others park at once, so many waiting clients never starve the shard threads. Zero
    /// parks at once.
    pub ticket_spin: Duration,
    /// How long [`Engine::shutdown`](crate::Engine::shutdown) waits for running tasks
    /// before it abandons them (and reports so); shards are always drained in full.
    pub shutdown_timeout: Duration,
    /// Most registry entries per shard (`RegistryError::Full` beyond).
    pub registry_capacity: usize,
    /// Most agents per shard (`AgentError::Full` beyond).
    pub agent_capacity: usize,
    /// Auction, market and pricing-cache bounds per shard.
    pub economics: EconomicsConfig,
    /// Room each shard allocates at start for the entries it will hold (none by
    /// default: tables start small and grow on demand); see [`Reserve`].
    pub reserve: Reserve,
    /// Worker threads of the task pool (pricing and host tasks); at least 1.
    pub task_workers: usize,
    /// Jobs the task pool queues; a spawn beyond it resolves with `Busy`.
    pub task_queue: usize,
    /// Event history and subscription bounds.
    pub events: EventsConfig,
    /// Coordination-session bounds.
    pub coordination: CoordinationConfig,
    /// Most barriers at once.
    pub max_barriers: usize,
    /// Spin iterations a barrier waiter makes before it yields, for barriers with no more
    /// parties than cores. A barrier with more parties than cores does not spin: a
    /// spinning waiter would hold the core a missing party needs.
    pub barrier_spin: u32,
    /// `yield_now` calls a barrier waiter makes (checking its generation between them)
    /// after spinning and before it parks. A yield hands the core to another runnable
    /// thread (with more parties than cores, usually a party that has yet to arrive), and
    /// a waiter that comes back to a completed generation needs no wake-up: on 2 cores a
    /// 16-party round then costs about one context switch per party instead of a futex
    /// wait and a wake-up call each. 0 parks right after the spins.
    pub barrier_yields: u32,
    /// The engine's clock.
    pub clock: Clock,
    /// Telemetry: on by default; see [`TelemetryConfig`].
    pub telemetry: TelemetryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shards: 0,
            host_cores: 1,
            pin_threads: true,
            mode: Mode::Sharded,
            mailbox_capacity: 4096,
            write_delay: Duration::from_micros(50),
            lane_capacity: 1024,
            send_timeout: Duration::from_secs(1),
            batch_size: 256,
            idle_spin: Duration::from_micros(5),
            ticket_spin: Duration::from_micros(20),
            shutdown_timeout: Duration::from_secs(5),
            registry_capacity: 1 << 20,
            agent_capacity: 1 << 20,
            economics: EconomicsConfig::default(),
            reserve: Reserve::default(),
            task_workers: 2,
            task_queue: 4096,
            events: EventsConfig::default(),
            coordination: CoordinationConfig::default(),
            max_barriers: 65_536,
            barrier_spin: 4_000,
            barrier_yields: 64,
            clock: Clock::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

setters!(Config {
    with_shards => shards: usize,
    with_host_cores => host_cores: usize,
    with_pin_threads => pin_threads: bool,
    with_mode => mode: Mode,
    with_mailbox_capacity => mailbox_capacity: usize,
    with_write_delay => write_delay: Duration,
    with_lane_capacity => lane_capacity: usize,
    with_send_timeout => send_timeout: Duration,
    with_batch_size => batch_size: usize,
    with_idle_spin => idle_spin: Duration,
    with_ticket_spin => ticket_spin: Duration,
    with_shutdown_timeout => shutdown_timeout: Duration,
    with_registry_capacity => registry_capacity: usize,
    with_agent_capacity => agent_capacity: usize,
    with_economics => economics: EconomicsConfig,
    with_reserve => reserve: Reserve,
    with_task_workers => task_workers: usize,
    with_task_queue => task_queue: usize,
    with_events => events: EventsConfig,
    with_coordination => coordination: CoordinationConfig,
    with_max_barriers => max_barriers: usize,
    with_barrier_spin => barrier_spin: u32,
    with_barrier_yields => barrier_yields: u32,
    with_clock => clock: Clock,
    with_telemetry => telemetry: TelemetryConfig,
});

/// How many entries of each kind every shard makes room for at start.
///
/// A shard's snapshot tables and maps start small and double as they fill. A doubling
/// copies the whole table on the shard thread, into memory touched for the first time,
/// and every command queued at that shard waits for it: about 15 ms for an auction
/// status table going from 65,536 to 131,072 slots on the machine `BENCHMARKS.md` was
/// measured on ("create_auction latency"). A host that knows its counts reserves them
/// here and pays that once, in [`Engine::start`](crate::Engine::start), instead of on its
/// hot path; beyond a reserve a table grows as before.
///
/// Counts are per shard, like the capacities: for `n` entries spread by hash over `s`
/// shards, `n / s` plus a margin (three times `√(n / s)` covers the spread of a good
/// hash). Each must be at most the matching capacity. The memory is allocated and
/// written at start, per shard: 1⅓ to 2⅔ table slots per reserved entry, of 152 bytes
/// (registry), 112 bytes (agents) and 112 bytes (auction status), plus the maps' room.
/// The Dutch clock table is not reserved: it holds only Dutch auctions.
///
/// ```
/// use mabeam::{Config, Reserve};
///
/// // A host that runs about 100,000 auctions on 4 shards at once.
/// let config = Config::default()
///     .with_shards(4)
///     .with_reserve(Reserve::default().with_auctions(25_000 + 500));
/// assert_eq!(config.reserve.auctions, 25_500);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reserve {
    /// Registry entries per shard; at most [`Config::registry_capacity`].
    pub registry: usize,
    /// Agents per shard; at most [`Config::agent_capacity`].
    pub agents: usize,
    /// Auctions per shard, open and retained; at most `economics.auctions.max_open +
    /// economics.auctions.max_retained`.
    pub auctions: usize,
}

setters!(Reserve {
    with_registry => registry: usize,
    with_agents => agents: usize,
    with_auctions => auctions: usize,
});

impl Config {
    /// The centralized shape: one shard, every call a synchronous round trip.
    pub fn centralized() -> Self {
        Self {
            mode: Mode::Centralized,
            shards: 1,
            ..Self::default()
        }
    }

    /// Starts an engine of this configuration from an exported state:
    /// [`Engine::start_from`](crate::Engine::start_from) (the original's rollback is
    /// `Config::centralized().restore(&state)`).
    pub fn restore(
        self,
        state: &crate::state::EngineState,
    ) -> Result<crate::Engine, crate::state::RestoreError> {
        crate::Engine::start_from(self, state)
    }

    /// The number of shard threads this configuration starts.
    pub fn shard_count(&self) -> usize {
        match self.mode {
            Mode::Centralized => 1,
            Mode::Sharded if self.shards > 0 => self.shards,
            Mode::Sharded => core_affinity::get_core_ids()
                .map_or(1, |c| c.len())
                .saturating_sub(self.host_cores)
                .max(1),
        }
    }

    /// Checks every field; the first one out of range is the error.
    pub(crate) fn validate(&self) -> Result<(), StartError> {
        let invalid = |field, reason| Err(StartError::InvalidConfig { field, reason });
        if self.shard_count() > MAX_SHARDS {
            return invalid("shards", "must be at most 1024 (MAX_SHARDS)");
        }
        let at_least_one: [(&'static str, usize); 12] = [
            ("mailbox_capacity", self.mailbox_capacity),
            ("lane_capacity", self.lane_capacity),
            ("batch_size", self.batch_size),
            ("registry_capacity", self.registry_capacity),
            ("agent_capacity", self.agent_capacity),
            ("task_workers", self.task_workers),
            ("task_queue", self.task_queue),
            ("max_barriers", self.max_barriers),
            ("economics.pricing_cache", self.economics.pricing_cache),
            ("events.max_subscriptions", self.events.max_subscriptions),
            ("events.max_queue", self.events.max_queue),
            ("coordination.max_open", self.coordination.max_open),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
        }
        if self.telemetry.sample_every == 0 {
            return invalid("telemetry.sample_every", "must be at least 1");
        }
        if self.telemetry.report_interval < std::time::Duration::from_millis(1) {
            return invalid("telemetry.report_interval", "must be at least 1 ms");
        }
        let book = &self.economics.auctions;
        let reserves = [
            (
                "reserve.registry",
                self.reserve.registry,
                self.registry_capacity,
                "must be at most registry_capacity",
            ),
            (
                "reserve.agents",
                self.reserve.agents,
                self.agent_capacity,
                "must be at most agent_capacity",
            ),
            (
                "reserve.auctions",
                self.reserve.auctions,
                book.max_open.saturating_add(book.max_retained),
                "must be at most economics.auctions.max_open + max_retained",
            ),
        ];
        for (field, reserve, capacity, reason) in reserves {
            if reserve > capacity {
                return invalid(field, reason);
            }
        }
        if let Some((field, reason)) = self.events.invalid() {
            return invalid(field, reason);
        }
        let market = &self.economics.market;
        if market.max_keys == 0 {
            return invalid("economics.market.max_keys", "must be at least 1");
        }
        if market.window_nanos == 0 {
            return invalid("economics.market.window_nanos", "must be at least 1");
        }
        if market.max_window_points == 0 {
            return invalid("economics.market.max_window_points", "must be at least 1");
        }
        Ok(())
    }

    /// What the runtime needs of this configuration.
    pub(crate) fn runtime_settings(&self) -> Settings {
        Settings {
            pin_threads: self.pin_threads,
            mailbox_capacity: self.mailbox_capacity,
            write_delay: self.write_delay,
            lane_capacity: self.lane_capacity,
            send_timeout: self.send_timeout,
            batch_size: self.batch_size,
            idle_spin: self.idle_spin,
            ticket_spin: self.ticket_spin,
            clock: self.clock.clone(),
            telemetry: self.telemetry.enabled,
            sample_every: self.telemetry.sample_every.max(1),
        }
    }
}
