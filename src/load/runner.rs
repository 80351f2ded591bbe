//! One preset's run: start the engine, set up before the clock, run the clients (closed
//! loop, or open loop at a rate), stop the clock once every accepted write is applied,
//! then check what the engine did.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use mabeam::auctions::{AuctionFilter, AuctionId, BookLimits};
use mabeam::market::MarketUpdate;
use mabeam::pricing::PricingInput;
use mabeam::{Config, Engine, EngineHandle, StartError};

use super::args::{LoadArgs, Preset, RunLength};
use super::client::{auction_spec, run_client, ClientReport, Failure, Failures, RunShared};
use super::client::{CATEGORIES, RESERVE};
use super::cpu::{self, CpuUse};
use super::gauges::{with_preset, Gauges};
use super::histogram::Histogram;
use super::mix::Op;
use super::progress::{Progress, Sample};

/// Pricing inputs calculated before the clock starts (reads pick among them).
pub const PRICING_INPUTS: usize = 16;
/// Most open auctions per shard in a load run. The engine's default (65 536) is less
/// than a long run creates, and load auctions never end (no deadline), so an `--ops`
/// run gets room for every create it could make, and a `--duration` run this many. A
/// create beyond it is refused and reported as a failure ("create refused"). An open
/// auction costs about 1 KB here (book entry, status record, table growth; measured
/// with 72 000 auctions), so this bound is about 1 GB per shard.
pub const LOAD_MAX_OPEN: usize = 1 << 20;

/// Why a preset could not be run (setup or teardown failed; per-operation failures are
/// results, not errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The engine did not start.
    Start(StartError),
    /// A setup or teardown step failed; `error` says how.
    Step {
        /// The step.
        step: &'static str,
        /// What went wrong.
        error: String,
    },
    /// A client thread panicked (a bug of the load tool).
    ClientPanicked,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Start(e) => write!(f, "the engine did not start: {e}"),
            RunError::Step { step, error } => write!(f, "{step} failed: {error}"),
            RunError::ClientPanicked => write!(f, "a client thread panicked"),
        }
    }
}

impl std::error::Error for RunError {}

fn step<T, E: fmt::Display>(step: &'static str, r: Result<T, E>) -> Result<T, RunError> {
    r.map_err(|e| RunError::Step {
        step,
        error: e.to_string(),
    })
}

/// The value of a ticketed call that must succeed: an engine error or a refusal fails
/// step `what`.
fn answered<T, E: fmt::Display>(
    what: &'static str,
    r: Result<Result<T, E>, mabeam::Error>,
) -> Result<T, RunError> {
    match r {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => step(what, Err(e)),
        Err(e) => step(what, Err(e)),
    }
}

/// What the check after the run found (in the JSON as `check`, with `passed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Commands sent to the engine over the whole life of the preset's engine (setup,
    /// run, flushes, checks), counted by the tool.
    pub commands_sent: u64,
    /// Commands the engine applied, from its shutdown report.
    pub commands_applied: u64,
    /// Handler panics reported at shutdown.
    pub handler_panics: u64,
    /// Auctions the clients created (setup and run).
    pub auctions_created: u64,
    /// Open auctions found after the run.
    pub auctions_found: u64,
    /// Bids sent.
    pub bids_sent: u64,
    /// Bids the rule had to accept.
    pub bids_to_accept: u64,
    /// Sum of the auctions' bid counts after the run.
    pub bids_accepted: u64,
}

impl Check {
    /// True if the engine did exactly what it was asked.
    pub fn passed(&self) -> bool {
        self.commands_sent == self.commands_applied
            && self.handler_panics == 0
            && self.auctions_created == self.auctions_found
            && self.bids_to_accept == self.bids_accepted
    }

    /// Operations the check shows did not happen as acknowledged: commands missing
    /// from the shutdown report, auctions missing, and bids the rule had to accept that
    /// are not in the auctions' counts (or extra ones).
    fn unaccounted(&self) -> (u64, u64) {
        let lost = self.commands_sent.saturating_sub(self.commands_applied);
        let creates = self.auctions_created.saturating_sub(self.auctions_found);
        let bids = self.bids_to_accept.abs_diff(self.bids_accepted);
        (creates, bids.max(lost.saturating_sub(creates)))
    }
}

/// The results of one preset.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Which preset.
    pub preset: Preset,
    /// Client threads.
    pub clients: usize,
    /// Shards of the engine.
    pub shards: usize,
    /// Latency by [`Op::index`].
    pub latency: [Histogram; 4],
    /// Operations run.
    pub ops: u64,
    /// Operations that succeeded (after the check).
    pub succeeded: u64,
    /// Failures by reason (after the check).
    pub failures: Failures,
    /// From the start until every accepted write was applied (flush returned).
    pub end_to_end: Duration,
    /// From the start until the last client finished.
    pub client_side: Duration,
    /// What the check found.
    pub check: Check,
    /// `Some(n)`: an open-loop run offered `n` operations per second (latencies from
    /// the intended send times); `None`: closed loop.
    pub offered_rate: Option<u64>,
    /// For a `--rate-sweep` step, the percentage of the preset's closed-loop maximum.
    pub percent_of_max: Option<f64>,
    /// Operations completed over time (the monitor's samples).
    pub samples: Vec<Sample>,
    /// The engine configuration the run used.
    pub config: Config,
    /// Peak resident memory of the process during the run (`None`: unknown here).
    pub resident_peak: Option<u64>,
    /// Peak number of messages in all mailboxes during the run (sampled every 10 ms).
    pub mailbox_peak: u64,
    /// Where the CPU went from the start to the end of the final flush (`None`: this
    /// platform has no CPU clocks).
    pub cpu: Option<CpuUse>,
}

impl RunResult {
    /// Operations per second, end to end.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.end_to_end.as_secs_f64().max(1e-9)
    }

    /// Operations per second, until the last client finished.
    pub fn ops_per_sec_client_side(&self) -> f64 {
        self.ops as f64 / self.client_side.as_secs_f64().max(1e-9)
    }

    /// Succeeded / run, 1.0 for an empty run.
    pub fn success_rate(&self) -> f64 {
        if self.ops == 0 {
            1.0
        } else {
            self.succeeded as f64 / self.ops as f64
        }
    }
}

/// The engine configuration of `preset`.
pub fn config(preset: Preset, args: &LoadArgs) -> Config {
    let mut config = match preset {
        Preset::Sharded => Config::default().with_shards(args.shards.unwrap_or(0)),
        Preset::Centralized => Config::centralized(),
    };
    // Enough open auctions for every create of an --ops run (one per operation at most,
    // plus the setup auction), within LOAD_MAX_OPEN.
    let needed = match args.length {
        RunLength::Ops(n) => (args.clients as u64).saturating_mul(n.saturating_add(1)),
        RunLength::Duration(_) => LOAD_MAX_OPEN as u64,
    };
    let default = BookLimits::default().max_open;
    config.economics.auctions.max_open = (needed.min(LOAD_MAX_OPEN as u64) as usize)
        .max(default)
        .max(args.reserve_auctions);
    config.reserve.auctions = args.reserve_auctions;
    config
}

/// The pricing inputs the reads look up: 16 short price histories.
pub fn pricing_inputs() -> Vec<PricingInput> {
    (0..PRICING_INPUTS)
        .map(|i| {
            let base = 100.0 + 10.0 * i as f64;
            PricingInput {
                recent_prices: vec![base, base * 1.02, base * (0.95 + 0.01 * i as f64)],
                demand: 1.0 + i as f64,
                supply: 2.0,
                base_price: base,
            }
        })
        .collect()
}

/// What [`setup`] made.
pub struct Setup {
    /// The pricing inputs, calculated and cached.
    pub inputs: Vec<PricingInput>,
    /// One open auction per client, by client index.
    pub first_auctions: Vec<AuctionId>,
    /// Commands it sent (each applied before it returned), the final flush included.
    pub commands: u64,
}

/// Sets up `engine` before the clock starts: every read's key exists (the 16 market
/// categories and pricing inputs), every one of `clients` clients has an auction of
/// its own, and everything is applied (flushed).
pub fn setup(engine: &EngineHandle, clients: usize) -> Result<Setup, RunError> {
    let mut sent = 0u64;
    for key in 0..CATEGORIES {
        let update = MarketUpdate {
            key,
            price: RESERVE + key,
            volume: 1,
        };
        answered("market setup", engine.market().update_acked(update).wait())?;
        sent += 1;
    }
    let inputs = pricing_inputs();
    for input in &inputs {
        answered("pricing setup", engine.pricing().calculate(input).wait())?;
        sent += 1;
    }
    let mut first_auctions = Vec::with_capacity(clients);
    for client in 0..clients {
        let spec = auction_spec(client, client as u64 % CATEGORIES);
        let id = answered("auction setup", engine.auctions().create(spec).wait())?;
        first_auctions.push(id);
        sent += 1;
    }
    step("setup flush", engine.flush())?;
    sent += 2 * engine.shards() as u64;
    Ok(Setup {
        inputs,
        first_auctions,
        commands: sent,
    })
}

/// How one run is paced: closed loop (`rate: None`) or open loop at `rate` operations
/// per second; `percent_of_max` labels a `--rate-sweep` step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPace {
    /// Offered operations per second, all clients together.
    pub rate: Option<u64>,
    /// The sweep step's percentage of the closed-loop maximum.
    pub percent_of_max: Option<f64>,
}

impl RunPace {
    /// Closed loop.
    pub const CLOSED: RunPace = RunPace {
        rate: None,
        percent_of_max: None,
    };

    /// The progress bar's label of `preset` run at this pace.
    pub fn label(&self, preset: Preset) -> String {
        match (self.rate, self.percent_of_max) {
            (None, _) => preset.name().to_string(),
            (Some(_), Some(p)) => format!("{} {p}%", preset.name()),
            (Some(r), None) => format!("{} @{r}/s", preset.name()),
        }
    }
}

/// Runs `preset` with `args` at `pace`; `progress` draws the progress bar (or nothing)
/// and samples the throughput.
pub fn run_preset(
    preset: Preset,
    args: &LoadArgs,
    pace: RunPace,
    progress: &Progress,
) -> Result<RunResult, RunError> {
    let config = config(preset, args);
    let engine = Engine::start(config.clone()).map_err(RunError::Start)?;
    let shards = engine.shards();
    let flush_commands = 2 * shards as u64;
    let Setup {
        inputs,
        first_auctions,
        commands: mut sent,
    } = setup(&engine, args.clients)?;

    let barrier = Barrier::new(args.clients + 1);
    let shared = RunShared {
        engine: &engine,
        mix: args.mix,
        length: args.length,
        seed: args.seed,
        pricing: &inputs,
        start: &barrier,
        auction_ttl: None,
        rate: pace.rate,
        clients: args.clients,
    };
    let counters: Vec<CachePadded<AtomicU64>> = (0..args.clients)
        .map(|_| CachePadded::new(AtomicU64::new(0)))
        .collect();
    let nice = args.client_nice;
    let label = pace.label(preset);
    let gauges = Gauges::default();
    let (reports, start, end, samples, (process_cpu, shard_cpu, cpu_span)) =
        std::thread::scope(|s| {
            let handles = spawn_clients(s, &shared, &first_auctions, &counters, nice);
            s.spawn(|| gauges.run(&engine));
            // The shards first: reading `/proc` costs this thread CPU time that must not
            // count in the process's span.
            let shards_at_start = cpu::shard_threads();
            // The wall span encloses the process's reading: CPU over the span can then
            // never exceed the cores.
            let span_start = Instant::now();
            let process_at_start = cpu::process();
            barrier.wait();
            let monitor = progress.start(s, &label, Instant::now(), &counters, &gauges);
            let reports: Result<Vec<ClientReport>, RunError> = handles
                .into_iter()
                .map(|h| h.join().map_err(|_| RunError::ClientPanicked))
                .collect();
            // Stop the clock only when every accepted write has been applied.
            let flushed = engine.flush();
            let end = Instant::now();
            // The process first, then the end of its span (and the shards' `/proc`
            // reading after both, for the same reasons as at the start).
            let process_cpu = cpu::process()
                .zip(process_at_start)
                .map(|(end, start)| end.saturating_sub(start));
            let span_end = Instant::now();
            let shard_cpu = cpu::shard_threads()
                .zip(shards_at_start)
                .map(|(end, start)| end.saturating_sub(start));
            gauges.stop();
            let samples = monitor.finish();
            reports.and_then(|r| {
                step("final flush", flushed)?;
                // The clock started when the first client started.
                let start = r.iter().map(|c| c.started).min().unwrap_or(end);
                Ok((
                    r,
                    start,
                    end,
                    samples,
                    (process_cpu, shard_cpu, span_end - span_start),
                ))
            })
        })?;
    sent += flush_commands;

    // Check: every create produced an auction, every bid was applied by the rule.
    let open = step(
        "auction check",
        engine.auctions().list_active(AuctionFilter::default()),
    )?;
    if preset == Preset::Centralized {
        sent += 1; // list_active is a round trip there
    }
    if let Some(path) = &args.metrics {
        // The snapshot's observe messages are not commands: nothing to add to `sent`.
        write_metrics(&engine, &with_preset(path, preset.name()))?;
    }
    let (resident_peak, mailbox_peak) = gauges.peaks();
    let report = engine.shutdown();

    let mut latency: [Histogram; 4] = Default::default();
    let mut succeeded = [0u64; 4];
    let mut failures = Failures::default();
    let mut check = Check {
        commands_sent: sent,
        commands_applied: report.applied(),
        handler_panics: report.shards.iter().map(|s| s.panics).sum(),
        auctions_created: 0,
        auctions_found: open.len() as u64,
        bids_sent: 0,
        bids_to_accept: 0,
        bids_accepted: open.iter().map(|s| u64::from(s.bid_count)).sum(),
    };
    let mut client_end = start;
    let mut client_cpu = Some(Duration::ZERO);
    for r in &reports {
        client_cpu = client_cpu.zip(r.cpu).map(|(all, mine)| all + mine);
        for (all, mine) in latency.iter_mut().zip(&r.latency) {
            all.merge(mine);
        }
        for (all, mine) in succeeded.iter_mut().zip(r.succeeded) {
            *all += mine;
        }
        failures.merge(&r.failures);
        check.commands_sent += r.commands;
        check.auctions_created += r.auctions;
        check.bids_sent += r.bids;
        check.bids_to_accept += r.bids_to_accept;
        client_end = client_end.max(r.finished);
    }
    // What the check shows missing is moved from success to failure.
    let (lost_creates, lost_bids) = check.unaccounted();
    let lost_creates = lost_creates.min(succeeded[Op::CreateAuction.index()]);
    let lost_bids = lost_bids.min(succeeded[Op::PlaceBid.index()]);
    succeeded[Op::CreateAuction.index()] -= lost_creates;
    succeeded[Op::PlaceBid.index()] -= lost_bids;
    failures.add(Failure::Unconfirmed, lost_creates + lost_bids);

    let ops = latency.iter().map(Histogram::count).sum();
    Ok(RunResult {
        preset,
        clients: args.clients,
        shards,
        latency,
        ops,
        succeeded: succeeded.iter().sum(),
        failures,
        end_to_end: end - start,
        client_side: client_end - start,
        check,
        offered_rate: pace.rate,
        percent_of_max: pace.percent_of_max,
        samples,
        config,
        resident_peak,
        mailbox_peak,
        cpu: process_cpu
            .zip(client_cpu)
            .map(|(process, clients)| CpuUse {
                span: cpu_span,
                process,
                clients,
                shards: shard_cpu,
            }),
    })
}

/// Writes `engine`'s telemetry to `path` as Prometheus text.
fn write_metrics(engine: &EngineHandle, path: &std::path::Path) -> Result<(), RunError> {
    let text = step("telemetry", engine.telemetry().snapshot())?.to_prometheus();
    std::fs::write(path, text).map_err(|e| RunError::Step {
        step: "writing --metrics",
        error: format!("{}: {e}", path.display()),
    })
}

/// Spawns one client thread per first auction in scope `s`, each lowering its own
/// priority to `nice` and running [`run_client`] with its progress counter.
pub fn spawn_clients<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    shared: &'scope RunShared<'_>,
    first_auctions: &'scope [AuctionId],
    counters: &'scope [CachePadded<AtomicU64>],
    nice: u8,
) -> Vec<std::thread::ScopedJoinHandle<'scope, ClientReport>> {
    first_auctions
        .iter()
        .zip(counters)
        .enumerate()
        .map(|(index, (&first, counter))| {
            s.spawn(move || {
                lower_priority(nice);
                run_client(shared, index, first, counter)
            })
        })
        .collect()
}

/// Sets the calling thread's nice value to `nice` (Linux: nice values are per thread).
/// Best effort: raising one's own nice value needs no privilege; where it fails the
/// client runs at its inherited priority.
pub fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes plain integers and touches no memory of ours;
    // `PRIO_PROCESS` with who = 0 names the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, libc::c_int::from(nice));
    }
}
