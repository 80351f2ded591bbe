//! What an engine holds and uses now ([`EngineHandle::resources`]): its threads and the
//! core each shard is pinned to, the process's resident memory, each shard's mailbox,
//! lanes and snapshot tables (entries, and bytes of the live and the retired arrays),
//! pending tickets, subscriptions, retained events and their bytes, queued tasks and
//! the capability names in use.
//!
//! Reading it asks each shard for the figures only it knows (its subscriptions index,
//! its event history, the CPU it runs on), like a telemetry snapshot: the answer comes
//! at the end of the shard's batch. Table sizes are read from the published tables.
//!
//! [`EngineHandle::resources`]: crate::EngineHandle::resources

pub use mabeam_shards::table::TableFootprint;

use crate::engine::Inner;
use crate::Error;

/// A snapshot table of a shard: which, and its footprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableResources {
    /// `registry`, `agents`, `auctions`, `dutch_clocks`, `market`, `pricing`,
    /// `coordination`.
    pub name: &'static str,
    /// Entries, and slots and bytes of the live and retired arrays.
    pub footprint: TableFootprint,
}

/// One shard's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardResources {
    /// Shard index.
    pub shard: usize,
    /// False if its thread died.
    pub alive: bool,
    /// The core it was pinned to at start (`None`: pinning off or refused).
    pub pinned_core: Option<usize>,
    /// The CPU its thread ran on when asked (`None` where the platform does not say,
    /// or the shard is dead).
    pub running_on: Option<usize>,
    /// True if it was pinned and still runs on that core.
    pub pinning_held: bool,
    /// Host messages queued in its mailbox.
    pub mailbox_depth: usize,
    /// Control messages queued.
    pub control_depth: usize,
    /// Messages queued in each lane into it, by sending shard.
    pub lane_depths: Vec<usize>,
    /// Its snapshot tables.
    pub tables: Vec<TableResources>,
    /// Subscriptions in its index.
    pub subscriptions: usize,
    /// Events retained in its history.
    pub retained_events: usize,
    /// Host payload bytes of those events.
    pub retained_event_bytes: usize,
}

impl ShardResources {
    /// Bytes of all its tables' arrays, live and retired.
    pub fn table_bytes(&self) -> usize {
        self.tables
            .iter()
            .map(|t| t.footprint.live_bytes + t.footprint.retired_bytes)
            .sum()
    }

    /// The table called `name`.
    pub fn table(&self, name: &str) -> Option<&TableFootprint> {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| &t.footprint)
    }
}

/// What an engine holds and uses; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resources {
    /// Shard threads.
    pub shard_threads: usize,
    /// Task pool threads.
    pub task_threads: usize,
    /// Threads of the whole process (from `/proc/self/status`; `None` elsewhere).
    pub process_threads: Option<usize>,
    /// Resident memory of the process in bytes (from `/proc/self/statm`; `None` where
    /// it does not exist).
    pub resident_bytes: Option<u64>,
    /// Per shard.
    pub shards: Vec<ShardResources>,
    /// Tickets created and not yet dropped, process-wide.
    pub tickets_pending: u64,
    /// Event subscriptions alive.
    pub subscriptions: u64,
    /// Tasks waiting in the pool's queue.
    pub tasks_queued: usize,
    /// Capability names interned, and the most the engine interns.
    pub capabilities_used: usize,
    /// Most capability names the engine interns.
    pub capabilities_budget: usize,
}

impl Resources {
    /// Messages queued in every shard's mailbox (control messages included).
    pub fn mailbox_depth(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.mailbox_depth + s.control_depth)
            .sum()
    }

    /// Entries of table `name` over every shard.
    pub fn entries(&self, name: &str) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.table(name))
            .map(|t| t.entries)
            .sum()
    }

    /// Events retained over every shard, and their host payload bytes.
    pub fn retained_events(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            (n + s.retained_events, b + s.retained_event_bytes)
        })
    }
}

/// The process's resident memory in bytes, from the `VmRSS` line of `/proc/self/status`
/// (the kernel's resident set in KiB: no page size needed, so no `libc`); `None` where it
/// does not exist or cannot be parsed.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The process's thread count, from `/proc/self/status`.
fn process_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// See [`EngineHandle::resources`](crate::EngineHandle::resources).
pub(crate) fn snapshot(inner: &Inner) -> Result<Resources, Error> {
    inner.check_open()?;
    let observed = inner.rt.observe();
    let ports = inner.rt.port_figures();
    let mut shards = Vec::with_capacity(ports.len());
    for (shard, (obs, port)) in observed.iter().zip(ports).enumerate() {
        let p = &inner.ports[shard];
        let tables = vec![
            ("registry", p.registry.footprint()),
            ("agents", p.agents.footprint()),
            ("auctions", p.economics.status.footprint()),
            ("dutch_clocks", p.economics.dutch.footprint()),
            ("market", p.economics.market.footprint()),
            ("pricing", p.economics.pricing.footprint()),
            ("coordination", p.coordination.footprint()),
        ]
        .into_iter()
        .map(|(name, footprint)| TableResources { name, footprint })
        .collect();
        let pinned_core = inner.pinned.get(shard).copied().flatten();
        let running_on = obs.as_ref().ok().and_then(|o| o.cpu);
        let figures = obs.as_ref().map(|o| o.figures).unwrap_or_default();
        shards.push(ShardResources {
            shard,
            alive: obs.is_ok(),
            pinned_core,
            running_on,
            pinning_held: pinned_core.is_some() && pinned_core == running_on,
            mailbox_depth: port.mailbox_depth,
            control_depth: port.control_depth,
            lane_depths: port.lane_depths,
            tables,
            subscriptions: figures.subscriptions,
            retained_events: figures.history,
            retained_event_bytes: figures.history_bytes,
        });
    }
    let stats = inner.tasks.stats();
    Ok(Resources {
        shard_threads: shards.len(),
        task_threads: stats.workers,
        process_threads: process_threads(),
        resident_bytes: resident_bytes(),
        shards,
        tickets_pending: crate::telemetry::host::tickets_pending(),
        subscriptions: inner.events.live(),
        tasks_queued: stats.queued,
        capabilities_used: inner.capabilities.len(),
        capabilities_budget: inner.capabilities.capacity(),
    })
}
