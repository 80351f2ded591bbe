//! Engine configuration.

use std::time::Duration;

use crate::clock::Clock;
use crate::coordination::CoordinationConfig;
use crate::economics::EconomicsConfig;
use crate::events::EventsConfig;

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
/// ```
/// use mabeam::Config;
/// let config = Config { shards: 2, pin_threads: false, ..Config::default() };
/// assert_eq!(config.shard_count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of shard threads; 0 means one per core that `core_affinity` reports (at
    /// least one). Ignored in [`Mode::Centralized`], which always has one.
    pub shards: usize,
    /// Pin shard `i` to core `i mod cores`. A failure to pin is reported in
    /// [`StartReport`](crate::StartReport), not fatal.
    pub pin_threads: bool,
    /// Sharded or centralized.
    pub mode: Mode,
    /// Capacity of each shard's mailbox, in messages (a batch from a
    /// [`BatchWriter`](crate::BatchWriter) is one message). When it is full, `try_` calls
    /// return `Busy` at once and blocking calls wait up to `send_timeout`.
    pub mailbox_capacity: usize,
    /// How long a blocking send waits for mailbox space before returning `Busy`.
    pub send_timeout: Duration,
    /// Most messages a shard drains before it publishes and replies.
    pub batch_size: usize,
    /// How long an idle shard spins on its mailbox before it blocks (a wake from a
    /// blocked `recv` costs several microseconds here). The spin yields the core between
    /// checks, so host threads sharing the core still run.
    pub idle_spin: Duration,
    /// How long a ticket waiter spins before it parks (a park/unpark wake costs several
    /// microseconds here; a shard usually answers in about one). The spin yields the core
    /// between checks, and at most one waiter per core spins at once, process-wide; the
    /// others park at once, so many waiting clients never starve the shard threads. Zero
    /// parks at once.
    pub ticket_spin: Duration,
    /// Most registry entries per shard (`RegistryError::Full` beyond).
    pub registry_capacity: usize,
    /// Most agents per shard (`AgentError::Full` beyond).
    pub agent_capacity: usize,
    /// Auction, market and pricing-cache bounds per shard.
    pub economics: EconomicsConfig,
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
    /// Spin iterations a barrier waiter makes before it parks, for barriers with no more
    /// parties than cores. A barrier with more parties than cores does not spin: a
    /// spinning waiter would hold the core a missing party needs.
    pub barrier_spin: u32,
    /// The engine's clock.
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shards: 0,
            pin_threads: true,
            mode: Mode::Sharded,
            mailbox_capacity: 4096,
            send_timeout: Duration::from_secs(1),
            batch_size: 256,
            idle_spin: Duration::from_micros(5),
            ticket_spin: Duration::from_micros(20),
            registry_capacity: 1 << 20,
            agent_capacity: 1 << 20,
            economics: EconomicsConfig::default(),
            task_workers: 2,
            task_queue: 4096,
            events: EventsConfig::default(),
            coordination: CoordinationConfig::default(),
            max_barriers: 65_536,
            barrier_spin: 4_000,
            clock: Clock::default(),
        }
    }
}

impl Config {
    /// The centralized shape: one shard, every call a synchronous round trip.
    pub fn centralized() -> Self {
        Self {
            mode: Mode::Centralized,
            shards: 1,
            ..Self::default()
        }
    }

    /// The number of shard threads this configuration starts.
    pub fn shard_count(&self) -> usize {
        match self.mode {
            Mode::Centralized => 1,
            Mode::Sharded if self.shards > 0 => self.shards,
            Mode::Sharded => core_affinity::get_core_ids()
                .map(|c| c.len())
                .unwrap_or(1)
                .max(1),
        }
    }
}
