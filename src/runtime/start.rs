//! Starting the shard threads: one per shard, named `mabeam-shard-{i}`, pinned to core
//! `i mod cores` when asked, each confirming it runs before `start` returns.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mabeam_shards::doorbell::Doorbell;
use mabeam_shards::lane::Incoming;
use mabeam_shards::mailbox::{Limits, Mailbox};
use mabeam_shards::termination::Termination;

use super::clock::Clock;
use super::shard::{Pace, ShardLoop, ShardState};
use super::stats::{ShardReport, ShardStats};
use super::{Runtime, ShardPort, Shared};
use crate::telemetry::host::HostTelemetry;
use crate::telemetry::shard::ShardRecorder;

/// What the runtime needs to know; the engine derives it from its `Config`, which has
/// validated every field.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Pin shard `i` to core `i mod cores`.
    pub pin_threads: bool,
    /// Most commands a shard's mailbox holds (calls are admitted up to here).
    pub mailbox_capacity: usize,
    /// The queueing delay a shard's fire-and-forget backlog may represent.
    pub write_delay: Duration,
    /// Most messages one shard-to-shard lane holds.
    pub lane_capacity: usize,
    /// How long a send waits for room before `Busy`.
    pub send_timeout: Duration,
    /// Most messages one batch takes.
    pub batch_size: usize,
    /// How long an idle shard polls before it sleeps.
    pub idle_spin: Duration,
    /// How long a ticket waiter spins before it parks.
    pub ticket_spin: Duration,
    /// The shards' clock.
    pub clock: Clock,
    /// Record telemetry.
    pub telemetry: bool,
    /// Time one command and call in this many.
    pub sample_every: u32,
}

/// Why [`Engine::start`](crate::Engine::start) refused a configuration or could not
/// start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration field is out of range.
    InvalidConfig {
        /// The field, as a path from `Config` (`economics.market.max_keys`).
        field: &'static str,
        /// What it must be.
        reason: &'static str,
    },
    /// The operating system refused to start a thread.
    Spawn(String),
    /// Shard `shard`'s thread died before it started running.
    ShardDied {
        /// The shard.
        shard: usize,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig { field, reason } => {
                write!(f, "invalid configuration: `{field}` {reason}")
            }
            Self::Spawn(e) => write!(f, "could not start a thread: {e}"),
            Self::ShardDied { shard } => write!(f, "shard {shard} died while starting"),
        }
    }
}

impl std::error::Error for StartError {}

/// What [`Engine::start`](crate::Engine::start) did: shard count and which shards it
/// pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartReport {
    /// Number of shard threads.
    pub shards: usize,
    /// For each shard, the core it was pinned to, or `None` if pinning was off or failed.
    pub pinned: Vec<Option<usize>>,
    /// Why pinning failed, if it did (not fatal: the shards run unpinned).
    pub pin_errors: Vec<String>,
}

/// The shard threads, joined by [`Runtime::stop`].
pub(crate) struct ShardThreads {
    handles: Vec<Option<JoinHandle<ShardReport>>>,
}

impl ShardThreads {
    /// Joins every thread; a thread that panicked reports its counters (marked dead).
    pub(crate) fn join<C>(self, shared: &Shared<C>) -> Vec<ShardReport> {
        self.handles
            .into_iter()
            .enumerate()
            .map(|(index, handle)| {
                let joined = handle.map(JoinHandle::join);
                match joined {
                    Some(Ok(report)) => report,
                    Some(Err(_)) | None => {
                        let mut report = shared.ports[index].stats.report(index);
                        report.died = true;
                        report
                    }
                }
            })
            .collect()
    }
}

impl<C: Send + 'static> Runtime<C> {
    /// Starts one thread per state in `states` (shard `i` owns `states[i]`) and returns
    /// once every thread runs. If a thread cannot be spawned or dies before it runs,
    /// the others are stopped and the error returned.
    pub(crate) fn start<S>(
        settings: &Settings,
        states: Vec<S>,
    ) -> Result<(Runtime<C>, ShardThreads, StartReport), StartError>
    where
        S: ShardState<Command = C>,
    {
        let n = states.len();
        let ports: Box<[ShardPort<C>]> = (0..n)
            .map(|_| {
                let bell = Arc::new(Doorbell::new());
                ShardPort {
                    mailbox: Mailbox::new(
                        Limits {
                            capacity: settings.mailbox_capacity as u64,
                            backlog: Pace::backlog_for(settings.write_delay, Pace::INITIAL_COST_NS),
                        },
                        bell.clone(),
                    ),
                    incoming: Incoming::new(n, settings.lane_capacity, bell.clone()),
                    bell,
                    stats: ShardStats::default(),
                    dead: AtomicBool::new(false),
                    refusals: Default::default(),
                }
            })
            .collect();
        let shared = Arc::new(Shared {
            ports,
            term: Termination::new(n),
            status: crossbeam::utils::CachePadded::new(AtomicU8::new(0)),
        });
        let runtime = Runtime {
            shared: shared.clone(),
            exporting: parking_lot::Mutex::new(()),
            send_timeout: settings.send_timeout,
            ticket_spin: settings.ticket_spin,
            clock: settings.clock.clone(),
            op_of: S::op_of,
            host: HostTelemetry::new(settings.telemetry, settings.sample_every),
        };
        let cores = if settings.pin_threads {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let pace = Pace {
            batch_size: settings.batch_size,
            idle_spin: settings.idle_spin,
            write_delay: settings.write_delay,
        };
        let (ready_tx, ready_rx) = flume::bounded(n.max(1));
        let mut handles = Vec::with_capacity(n);
        let mut spawn_error = None;
        for (index, state) in states.into_iter().enumerate() {
            if spawn_error.is_some() {
                // Never started: it counts as dead and done, so the stop below finishes.
                shared.mark_dead(index);
                shared.ports[index].mailbox.kill(drop, |e| e.weight());
                shared.term.host_done();
                handles.push(None);
                continue;
            }
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let ready_tx = ready_tx.clone();
            let theirs = shared.clone();
            let clock = settings.clock.clone();
            let recorder = ShardRecorder::new(settings.telemetry, S::OPS, settings.sample_every);
            let spawned = std::thread::Builder::new()
                .name(format!("mabeam-shard-{index}"))
                .spawn(move || {
                    let shard = ShardLoop::new(index, state, theirs, clock, pace, recorder);
                    let pinned = core.map(|c| (c.id, core_affinity::set_for_current(c)));
                    let _ = ready_tx.send((index, pinned));
                    drop(ready_tx);
                    shard.run()
                });
            match spawned {
                Ok(handle) => handles.push(Some(handle)),
                Err(e) => {
                    spawn_error = Some(StartError::Spawn(e.to_string()));
                    shared.mark_dead(index);
                    shared.ports[index].mailbox.kill(drop, |e| e.weight());
                    shared.term.host_done();
                    handles.push(None);
                }
            }
        }
        drop(ready_tx);
        let threads = ShardThreads { handles };
        let mut pinned = vec![None; n];
        let mut pin_errors = Vec::new();
        let mut started = vec![false; n];
        for (index, result) in ready_rx.iter() {
            started[index] = true;
            match result {
                Some((core, true)) => pinned[index] = Some(core),
                Some((core, false)) => {
                    pin_errors.push(format!("shard {index}: could not pin to core {core}"))
                }
                None => {}
            }
        }
        let error = spawn_error.or_else(|| {
            started
                .iter()
                .position(|s| !s)
                .map(|shard| StartError::ShardDied { shard })
        });
        if let Some(error) = error {
            runtime.stop(threads);
            return Err(error);
        }
        if settings.pin_threads && cores.is_empty() {
            pin_errors.push("core_affinity reported no cores; shards run unpinned".into());
        }
        Ok((
            runtime,
            threads,
            StartReport {
                shards: n,
                pinned,
                pin_errors,
            },
        ))
    }
}
