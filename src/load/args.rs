//! Command-line arguments of `mabeam`, parsed with clap (derive).
//!
//! The clap structs ([`Cli`], [`LoadFlags`], [`SoakFlags`]) are what the command line
//! looks like; [`parse`] turns them into the plain [`LoadArgs`] / [`SoakArgs`] the tool
//! runs, after the checks clap cannot express (`--ops` excludes `--duration`). Flags take
//! `--flag VALUE` or `--flag=VALUE`; a flag given twice is refused. `mabeam` alone, or
//! `mabeam --flag …`, is `mabeam load …`. Every refusal is exit code 2 with a message on
//! stderr ([`UsageError`]).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mabeam::MAX_SHARDS;

use super::mix::Mix;

/// Operations per client when neither `--ops` nor `--duration` is given: the default
/// run (50 clients, both presets) finishes in well under 30 s on a 2-core machine.
pub const DEFAULT_OPS: u64 = 20_000;
/// Client threads when `--clients` is not given (the original test's 50).
pub const DEFAULT_CLIENTS: usize = 50;
/// Seed when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 1;
/// Nice value of the client threads when `--client-nice` is not given: below the shard
/// threads, which do the work for all of them (see `load --help`).
pub const DEFAULT_CLIENT_NICE: u8 = 10;
/// Most client threads `--clients` takes.
pub const MAX_CLIENTS: usize = 4096;
/// Most operations per client `--ops` takes (keeps every total far from overflow).
pub const MAX_OPS: u64 = 1_000_000_000_000;
/// Longest `--duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Highest `--rate` (operations per second, all clients together).
pub const MAX_RATE: u64 = 1_000_000_000;
/// Most steps `--rate-sweep` takes.
pub const MAX_SWEEP_STEPS: usize = 32;
/// Highest percentage of the closed-loop maximum a `--rate-sweep` step takes (above
/// 100 % the engine is offered more than it can do, and the latencies show it).
pub const MAX_SWEEP_PERCENT: f64 = 1000.0;
/// `--rate-sweep` given without a value.
pub const DEFAULT_SWEEP: &str = "10%,25%,50%,75%,90%";

/// Which engine shapes a load run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetChoice {
    /// `Config::default()`: pinned shards on every core but one (or `--shards`).
    Sharded,
    /// `Config::centralized()`: one shard, every call a round trip.
    Centralized,
    /// Both, sharded first, and their ratio.
    Both,
}

/// One engine shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `Config::default()`.
    Sharded,
    /// `Config::centralized()`.
    Centralized,
}

impl Preset {
    /// The name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Sharded => "sharded",
            Preset::Centralized => "centralized",
        }
    }
}

impl PresetChoice {
    /// The presets to run, in order.
    pub fn presets(self) -> &'static [Preset] {
        match self {
            PresetChoice::Sharded => &[Preset::Sharded],
            PresetChoice::Centralized => &[Preset::Centralized],
            PresetChoice::Both => &[Preset::Sharded, Preset::Centralized],
        }
    }
}

/// How long each client runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLength {
    /// This many operations per client.
    Ops(u64),
    /// Until this much time has passed since the start.
    Duration(Duration),
}

/// How a load run paces its clients.
#[derive(Debug, Clone, PartialEq)]
pub enum Pace {
    /// Closed loop (the default): each client sends its next operation as soon as the
    /// previous one returned; latency runs from the call.
    Closed,
    /// `--rate N`: open loop at `N` operations per second, all clients together;
    /// latency runs from each operation's intended send time.
    Rate(u64),
    /// `--rate-sweep`: per preset, a closed-loop run for its maximum, then an open-loop
    /// run at each of these percentages of it.
    Sweep(Vec<f64>),
}

/// The flags of `mabeam soak`.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakArgs {
    /// `--duration`: how long the load and the faults run before the racing shutdown.
    pub duration: Duration,
    /// `--clients`.
    pub clients: usize,
    /// `--mix`.
    pub mix: Mix,
    /// `--shards`; `None` is `Config::default()`'s count.
    pub shards: Option<usize>,
    /// `--seed`.
    pub seed: u64,
    /// `--client-nice`.
    pub client_nice: u8,
}

/// The flags of `mabeam load`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadArgs {
    /// `--preset`.
    pub preset: PresetChoice,
    /// `--clients`: client threads, at least 1.
    pub clients: usize,
    /// `--ops` or `--duration`.
    pub length: RunLength,
    /// `--mix`.
    pub mix: Mix,
    /// `--shards` for the sharded preset; `None` is `Config::default()`'s count.
    pub shards: Option<usize>,
    /// `--seed`.
    pub seed: u64,
    /// `--json`: where to write the results as JSON.
    pub json: Option<PathBuf>,
    /// `--report`: where to write the results as a self-contained HTML page.
    pub report: Option<PathBuf>,
    /// `--metrics`: where to write each preset's telemetry as Prometheus text (the
    /// preset's name inserted before the extension).
    pub metrics: Option<PathBuf>,
    /// `--client-nice`: the nice value client threads give themselves (0..=19).
    pub client_nice: u8,
    /// `--rate` / `--rate-sweep`, or closed loop.
    pub pace: Pace,
    /// `--reserve-auctions`: `Config::reserve.auctions` of both presets (0: none).
    pub reserve_auctions: usize,
}

impl Default for LoadArgs {
    fn default() -> Self {
        LoadArgs {
            preset: PresetChoice::Both,
            clients: DEFAULT_CLIENTS,
            length: RunLength::Ops(DEFAULT_OPS),
            mix: Mix::default(),
            shards: None,
            seed: DEFAULT_SEED,
            json: None,
            report: None,
            metrics: None,
            client_nice: DEFAULT_CLIENT_NICE,
            pace: Pace::Closed,
            reserve_auctions: 0,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `mabeam load …` (also `mabeam` alone, or `mabeam --flag …`).
    Load(LoadArgs),
    /// `mabeam soak …`.
    Soak(SoakArgs),
    /// Help or version text to print on stdout, exit code 0.
    Print(String),
}

const TOP_AFTER: &str = "\
`mabeam` alone, or `mabeam --flag …`, runs `mabeam load`; `cargo run --release` runs it
with the defaults. `mabeam load --help` explains the flags of `load`, `mabeam soak --help`
those of `soak`.

Exit codes: 0 done, 1 the engine failed or lost commands, 2 bad command line,
3 an output file (--json, --report, --metrics) cannot be written (checked before the run).";

/// The top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "mabeam",
    version,
    about = "The load tool of the mabeam shard engine",
    long_about = "The load tool of the mabeam shard engine.\n\nRuns the original MABEAM \
                  concurrency test (create auctions, place bids, read market state, read \
                  cached pricing) against the sharded engine and the centralized one (the \
                  original's single GenServer), and reports latency per operation, \
                  throughput and success.",
    after_help = TOP_AFTER,
    subcommand_required = true
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The commands of `mabeam`.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the load test, sharded against centralized (the default command)
    Load(LoadFlags),
    /// Run the load with injected faults and watch memory and queues once a second
    Soak(SoakFlags),
}

/// The flags `load` and `soak` share.
#[derive(Debug, Clone, Args)]
pub struct CommonFlags {
    /// Client threads, 1..=4096
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLIENTS, value_parser = parse_clients)]
    pub clients: usize,
    /// Relative weights of the operations, name=weight,... (names: create_auction,
    /// place_bid, get_market_state, get_cached_pricing; a name left out has weight 0;
    /// weights 0..=1000000)
    #[arg(long, value_name = "M", default_value_t = Mix::default(), value_parser = parse_mix)]
    pub mix: Mix,
    /// Shards of the sharded preset, 1..=1024 [default: cores - 1, at least 1]
    #[arg(long, value_name = "N", value_parser = parse_shards)]
    pub shards: Option<usize>,
    /// Seed of the clients' operation sequences, a u64
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SEED, value_parser = parse_seed)]
    pub seed: u64,
    /// Nice value of the client threads, 0..=19: client threads lower their own
    /// scheduling priority so the shard threads, which do the work of all of them, get
    /// the cores; on a 2-core machine with 50 busy clients, equal priority leaves the
    /// shards 2 of 52 time slices (both presets get the same value)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLIENT_NICE, value_parser = parse_nice)]
    pub client_nice: u8,
}

/// The flags of `mabeam load`, as clap reads them.
#[derive(Debug, Clone, Args)]
#[command(
    about = "The original's concurrency test, sharded against centralized",
    after_help = LOAD_AFTER,
    allow_negative_numbers = true
)]
pub struct LoadFlags {
    /// Which engines to run: sharded is Config::default() (pinned shards, snapshot
    /// reads, fire-and-forget bids); centralized is Config::centralized() (one shard,
    /// every call a synchronous round trip, the original GenServer)
    #[arg(long, value_name = "P", value_enum, default_value_t = PresetChoice::Both)]
    pub preset: PresetChoice,
    /// Operations per client, 1..=1000000000000 [default: 20000]
    #[arg(long, value_name = "N", value_parser = parse_ops)]
    pub ops: Option<u64>,
    /// Run each preset for D instead of --ops: numbers with units ms, s, m or h
    /// (e.g. 250ms, 90s, 1.5m, 1h, 1m30s), at most 24 h
    #[arg(long, value_name = "D", allow_hyphen_values = true, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    // Flags shared with `soak`.
    #[command(flatten)]
    pub common: CommonFlags,
    /// Also write the results as JSON to PATH (checked writable before the run)
    #[arg(long, value_name = "PATH", value_parser = parse_path)]
    pub json: Option<PathBuf>,
    /// Also write the results as one self-contained HTML page with SVG plots to PATH
    /// (checked writable before the run)
    #[arg(long, value_name = "PATH", value_parser = parse_path)]
    pub report: Option<PathBuf>,
    /// Write each preset's telemetry at the end of its run as Prometheus text, one file
    /// per preset: the preset's name before the extension (metrics.prom ->
    /// metrics.sharded.prom, metrics.centralized.prom; checked writable before the run)
    #[arg(long, value_name = "PATH", value_parser = parse_path)]
    pub metrics: Option<PathBuf>,
    /// Open loop: offer N operations per second in total (spread evenly over the
    /// clients) and measure each latency from the operation's intended send time
    #[arg(long, value_name = "N", value_parser = parse_rate, conflicts_with = "rate_sweep")]
    pub rate: Option<u64>,
    /// Per preset: a closed-loop run for its maximum, then an open-loop run at each
    /// percentage of that maximum (e.g. 10%,25%,50%,75%,90%, the list when no value
    /// is given)
    #[arg(
        long,
        value_name = "LIST",
        num_args = 0..=1,
        require_equals = false,
        default_missing_value = DEFAULT_SWEEP,
        value_parser = parse_sweep
    )]
    pub rate_sweep: Option<SweepSteps>,
    /// Auctions each shard makes room for at start, 0..=1048576 (Config::reserve.auctions,
    /// both presets; 0, the default, lets the tables grow as creates arrive, each doubling
    /// a stop of the shard): the default run creates about 60000 on its one shard
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_reserve)]
    pub reserve_auctions: usize,
}

/// The flags of `mabeam soak`, as clap reads them.
#[derive(Debug, Clone, Args)]
#[command(
    about = "The load's mix with injected faults, watched once a second",
    after_help = SOAK_AFTER,
    allow_negative_numbers = true
)]
pub struct SoakFlags {
    /// How long the load and the faults run, as for `load` (e.g. 90s, 10m, 1h)
    #[arg(
        long,
        value_name = "D",
        default_value = "60s",
        allow_hyphen_values = true,
        value_parser = parse_duration
    )]
    pub duration: Duration,
    // Flags shared with `load`.
    #[command(flatten)]
    pub common: CommonFlags,
}

const LOAD_AFTER: &str = "\
Operations:
  create_auction      an English auction (seller = the client, one of 16 categories,
                      reserve 100, increment 5); ticketed, up to 32 in flight per client,
                      each must come back with an auction id
  place_bid           a fire-and-forget bid (bid_nowait) on one of the client's 8 most
                      recent auctions, rising so most are accepted; 1 in 16 is
                      deliberately below the minimum and refused by the auction's rule
  get_market_state    market().state(category) of one of the 16 categories
  get_cached_pricing  pricing().cached(input) of one of 16 pricing inputs

Before the clock starts, each preset writes the 16 categories' market state, calculates
the 16 pricing inputs and creates one auction per client, then flushes, so every read
hits (a read that returns nothing counts as a failure). A client keeps up to 32 creates
in flight and takes each answer after its next operation (the create's latency runs
until then). Load auctions have no deadline, so they stay open; each engine takes up to
the run's possible creates, at most 1048576 open auctions per shard (about 1 GB), and
refuses creates beyond (a long --duration run reports them as \"create refused\").

Closed and open loop: by default each client sends its next operation when the last
one returned (closed loop), and a latency runs from the call. With --rate N the clients
together offer N operations per second on a fixed schedule (client i's k-th operation
is due at start + (k + i/clients) × clients/N), sleeping until each is due (timer slack
of 1 ns on Linux); a latency runs from the operation's intended send time, so a stall
of the engine shows in every operation it delayed (coordinated omission corrected, as
wrk2 and HdrHistogram do). A client behind schedule sends at once. With --rate-sweep
each preset first runs closed loop for its own maximum (end-to-end ops/s), then open
loop at each percentage of that maximum, each run as long as --ops / --duration says;
the table and the JSON give the latency percentiles per operation at each offered rate
and the rate achieved.

Output: a progress bar on stderr (only on a terminal: rate and ETA), then per preset a
table of count, avg, min, max, p50, p95, p99 latency (µs; for a bid that is the send),
operations per second end to end (the clock stops after engine.flush(), when every
accepted write has been applied) and client side (when the last client finished), where
the CPU went over the run (cores' worth in all, of the clients with their CPU per
operation, of the shard threads with their CPU per command applied, idle polling
included, and of the other threads; Linux), and the success rate; then the ratio sharded / centralized of the end-to-end rates, and,
when a closed-loop run had more client and shard threads than cores, a note that its
latency tails include the clients' waits for a core.

--json schema: version, mode (closed | open | sweep), machine.cpus, seed, mix, clients,
length.ops/duration_s, shards (the --shards asked, null = default), rate, rate_sweep,
check_passed, ratio_sharded_over_centralized (or null), runs[] and sweep[] of
{preset, clients, shards, ops_per_sec, ops_per_sec_client_side, success_rate,
operations.NAME.count/avg_us/min_us/max_us/p50_us/p95_us/p99_us/p999_us, loop,
offered_ops_per_sec, percent_of_max, cpu (process_s, clients_s, shards_s, other_s,
cores_busy, clients_cores, shards_cores, other_cores, client_ns_per_op,
shard_ns_per_command; null without CPU clocks), config, check, failures, throughput[]}.

Success is what the engine did: a create succeeds when it returns an auction id; a bid
when it was applied and answered by the auction's rule (a refusal by the rule counts as
a success). After the run the tool checks that the engine applied exactly the commands
it was sent (shutdown report), that every created auction exists, and that the sum of
the auctions' bid counts is the number of bids the rule had to accept.

Exit codes: 0 done, 1 the engine failed or lost commands, 2 bad command line,
3 an output file cannot be written.";

const SOAK_AFTER: &str = "\
The sharded engine runs the load's clients (their auctions end at a deadline 200 ms
after their create, so they are retained, evicted, and memory stays bounded) while a
fault thread, every 50 ms, makes one handler panic on each shard, subscribes to every
auction event with a 4-event queue and drops the subscriber once it lags, spawns a task
that panics, and stalls each shard in turn while it fills that shard's mailbox until a
write is refused as busy. At the end the engine shuts down while the clients still run.

Output: once a second a line `soak t=…s rss_kb=… mailboxes=[…] tasks_queued=…
panics=… task_panics=… busy=… lagged=… subscriptions=…` (resident memory from
/proc/self/statm, the rest from the engine's counters and the clients'); then a summary
of the baseline (before the load) and the end (after shutdown): resident memory, mailbox
depths, queued tasks, live subscriptions, and the commands sent against those applied.

Exit code 0 when every accepted command was applied, every queue is back to its
baseline and resident memory is within the slack over it (printed); 1 otherwise.";

/// Why the command line was refused (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// A first argument that is neither a command nor a flag.
    UnknownCommand(String),
    /// A flag the command does not know (`suggestion`: a similar one).
    UnknownFlag {
        /// The flag as given.
        flag: String,
        /// A known flag that looks like it, if any.
        suggestion: Option<String>,
    },
    /// A positional argument after the command.
    UnexpectedArgument(String),
    /// `--ops` and `--duration` together.
    OpsAndDuration,
    /// Anything else clap refused; its rendered message.
    Clap(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::UnknownCommand(cmd) => write!(
                f,
                "unknown command {cmd:?} (the commands are `load` and `soak`)"
            ),
            UsageError::UnknownFlag { flag, suggestion } => {
                write!(f, "unknown flag {flag}")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean {s}?)")?;
                }
                Ok(())
            }
            UsageError::UnexpectedArgument(arg) => write!(f, "unexpected argument {arg:?}"),
            UsageError::OpsAndDuration => {
                write!(f, "--ops and --duration exclude each other; give one")
            }
            // Clap's message without its usage and "try --help" lines: the tool adds its
            // own pointer to the help.
            UsageError::Clap(text) => {
                let message = text.trim_start_matches("error: ");
                let message = message.split("\n\n").next().unwrap_or(message);
                f.write_str(message.trim_end())
            }
        }
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args: Vec<OsString> = args.into_iter().collect();
    // `mabeam` alone and `mabeam --flag …` mean `mabeam load …`.
    let implicit_load = match args.first().and_then(|a| a.to_str()) {
        None => args.is_empty(),
        Some(first) => {
            first.starts_with('-') && !matches!(first, "-h" | "--help" | "-V" | "--version")
        }
    };
    if implicit_load {
        args.insert(0, OsString::from("load"));
    }
    args.insert(0, OsString::from("mabeam"));
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return from_clap(e),
    };
    match cli.command {
        CliCommand::Load(flags) => load_args(flags).map(Command::Load),
        CliCommand::Soak(flags) => Ok(Command::Soak(SoakArgs {
            duration: flags.duration,
            clients: flags.common.clients,
            mix: flags.common.mix,
            shards: flags.common.shards,
            seed: flags.common.seed,
            client_nice: flags.common.client_nice,
        })),
    }
}

/// The plain load arguments of what clap read.
fn load_args(flags: LoadFlags) -> Result<LoadArgs, UsageError> {
    let length = match (flags.ops, flags.duration) {
        (Some(_), Some(_)) => return Err(UsageError::OpsAndDuration),
        (Some(n), None) => RunLength::Ops(n),
        (None, Some(d)) => RunLength::Duration(d),
        (None, None) => RunLength::Ops(DEFAULT_OPS),
    };
    let pace = match (flags.rate, flags.rate_sweep) {
        (Some(rate), _) => Pace::Rate(rate),
        (None, Some(SweepSteps(steps))) => Pace::Sweep(steps),
        (None, None) => Pace::Closed,
    };
    Ok(LoadArgs {
        preset: flags.preset,
        clients: flags.common.clients,
        length,
        mix: flags.common.mix,
        shards: flags.common.shards,
        seed: flags.common.seed,
        json: flags.json,
        report: flags.report,
        metrics: flags.metrics,
        client_nice: flags.common.client_nice,
        pace,
        reserve_auctions: flags.reserve_auctions,
    })
}

/// Help and version become text to print; refusals keep clap's message, except those
/// this tool words itself (unknown command, unknown flag, stray argument).
fn from_clap(e: clap::Error) -> Result<Command, UsageError> {
    let context = |kind: ContextKind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            Ok(Command::Print(e.render().to_string()))
        }
        ErrorKind::InvalidSubcommand => Err(UsageError::UnknownCommand(
            context(ContextKind::InvalidSubcommand).unwrap_or_default(),
        )),
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg).unwrap_or_default();
            if arg.starts_with('-') {
                Err(UsageError::UnknownFlag {
                    flag: arg.split('=').next().unwrap_or_default().to_string(),
                    suggestion: context(ContextKind::SuggestedArg),
                })
            } else {
                Err(UsageError::UnexpectedArgument(arg))
            }
        }
        _ => Err(UsageError::Clap(e.render().to_string())),
    }
}

/// A whole number in `1..=max`.
fn count(value: &str, max: u64) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from 1 to {max}"))
}

fn parse_clients(value: &str) -> Result<usize, String> {
    count(value, MAX_CLIENTS as u64).map(|n| n as usize)
}

fn parse_ops(value: &str) -> Result<u64, String> {
    count(value, MAX_OPS)
}

fn parse_shards(value: &str) -> Result<usize, String> {
    count(value, MAX_SHARDS as u64).map(|n| n as usize)
}

fn parse_reserve(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&n| n <= super::runner::LOAD_MAX_OPEN)
        .ok_or_else(|| {
            format!(
                "expected a whole number from 0 to {}",
                super::runner::LOAD_MAX_OPEN
            )
        })
}

fn parse_rate(value: &str) -> Result<u64, String> {
    count(value, MAX_RATE).map_err(|e| format!("{e} (operations per second)"))
}

fn parse_seed(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| "expected a whole number from 0 to 18446744073709551615".to_string())
}

fn parse_nice(value: &str) -> Result<u8, String> {
    value
        .parse::<u8>()
        .ok()
        .filter(|n| *n <= 19)
        .ok_or_else(|| "expected a nice value from 0 to 19".to_string())
}

fn parse_mix(value: &str) -> Result<Mix, String> {
    Mix::parse(value).map_err(|e| e.to_string())
}

fn parse_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("expected a file path".into());
    }
    Ok(PathBuf::from(value))
}

/// The percentages of a `--rate-sweep` (a type of its own: clap reads a `Vec` field as
/// a repeated flag).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSteps(pub Vec<f64>);

/// A `--rate-sweep` list: percentages (`25%` or `25`) above 0 and at most
/// [`MAX_SWEEP_PERCENT`], comma-separated, at most [`MAX_SWEEP_STEPS`].
pub fn parse_sweep(value: &str) -> Result<SweepSteps, String> {
    let expected = || {
        format!(
            "expected percentages of the closed-loop maximum, e.g. {DEFAULT_SWEEP} \
             (each above 0 and at most {MAX_SWEEP_PERCENT}%, at most {MAX_SWEEP_STEPS})"
        )
    };
    let steps: Vec<f64> = value
        .split(',')
        .map(|item| {
            let number = item.trim().trim_end_matches('%');
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(expected());
            }
            number
                .parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= MAX_SWEEP_PERCENT)
                .ok_or_else(expected)
        })
        .collect::<Result<_, _>>()?;
    if steps.is_empty() || steps.len() > MAX_SWEEP_STEPS {
        return Err(expected());
    }
    Ok(SweepSteps(steps))
}

/// A positive duration of at most [`MAX_DURATION`]: one or more terms, each a decimal
/// number and a unit `ms`, `s`, `m` or `h` (`250ms`, `90s`, `1.5m`, `1h`, `1m30s`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || {
        "expected a positive number and a unit: ms, s, m or h (e.g. 250ms, 90s, 1h), \
         at most 24 h"
            .to_string()
    };
    let mut rest = value.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        // Digits and at most one dot only: no signs, exponents, "inf" or "NaN".
        if number.is_empty() || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let seconds_per_unit = match unit {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        let n: f64 = number.parse().map_err(|_| bad())?;
        total += n * seconds_per_unit;
        rest = tail;
    }
    let d = Duration::try_from_secs_f64(total).map_err(|_| bad())?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(bad());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn load(args: &[&str]) -> LoadArgs {
        match parse_strs(args) {
            Ok(Command::Load(a)) => a,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn printed(args: &[&str]) -> String {
        match parse_strs(args) {
            Ok(Command::Print(text)) => text,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn err(args: &[&str]) -> UsageError {
        parse_strs(args).unwrap_err()
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_is_load_with_the_defaults() {
        assert_eq!(parse_strs(&[]), Ok(Command::Load(LoadArgs::default())));
        assert_eq!(load(&["load"]), LoadArgs::default());
        let d = LoadArgs::default();
        assert_eq!(d.preset, PresetChoice::Both);
        assert_eq!(d.clients, 50);
        assert_eq!(d.length, RunLength::Ops(20_000));
        assert_eq!(d.mix, Mix::default());
        assert_eq!(d.shards, None);
        assert_eq!(d.seed, 1);
        assert_eq!(d.client_nice, 10);
        assert_eq!(d.pace, Pace::Closed);
        assert_eq!((d.json, d.report), (None, None));
    }

    #[test]
    fn every_flag_in_both_forms() {
        let a = load(&[
            "load",
            "--preset",
            "sharded",
            "--clients=8",
            "--ops",
            "100",
            "--mix=place_bid=1",
            "--shards",
            "3",
            "--seed=42",
            "--json",
            "out.json",
            "--report=r.html",
            "--metrics=m.prom",
            "--client-nice",
            "0",
            "--rate=5000",
        ]);
        assert_eq!(a.preset, PresetChoice::Sharded);
        assert_eq!(a.clients, 8);
        assert_eq!(a.length, RunLength::Ops(100));
        assert_eq!(a.mix, Mix::parse("place_bid=1").unwrap());
        assert_eq!(a.shards, Some(3));
        assert_eq!(a.seed, 42);
        assert_eq!(a.json, Some(PathBuf::from("out.json")));
        assert_eq!(a.report, Some(PathBuf::from("r.html")));
        assert_eq!(a.metrics, Some(PathBuf::from("m.prom")));
        assert_eq!(a.client_nice, 0);
        assert_eq!(a.pace, Pace::Rate(5000));
    }

    #[test]
    fn rate_sweep_takes_a_list_or_the_default_one() {
        assert_eq!(
            load(&["load", "--rate-sweep", "10%,50,90.5%"]).pace,
            Pace::Sweep(vec![10.0, 50.0, 90.5])
        );
        assert_eq!(
            load(&["load", "--rate-sweep"]).pace,
            Pace::Sweep(vec![10.0, 25.0, 50.0, 75.0, 90.0])
        );
        assert_eq!(
            load(&["--rate-sweep", "--ops", "5"]).pace,
            Pace::Sweep(vec![10.0, 25.0, 50.0, 75.0, 90.0])
        );
        assert!(parse_strs(&["load", "--rate-sweep", "-5%"]).is_err());
        for bad in ["0%", "1001%", "ten", "10%,,20%", "1e2", "-5"] {
            assert!(
                matches!(err(&["load", "--rate-sweep", bad]), UsageError::Clap(m) if m.contains("--rate-sweep")),
                "{bad}"
            );
        }
        assert!(matches!(
            err(&["load", "--rate", "10", "--rate-sweep", "50%"]),
            UsageError::Clap(m) if m.contains("cannot be used with")
        ));
        assert!(
            matches!(err(&["load", "--rate", "0"]), UsageError::Clap(m) if m.contains("--rate"))
        );
    }

    #[test]
    fn flags_without_the_load_command_mean_load() {
        assert_eq!(load(&["--clients", "3"]).clients, 3);
        assert_eq!(
            load(&["--reserve-auctions", "60000"]).reserve_auctions,
            60_000
        );
        assert_eq!(load(&["load"]).reserve_auctions, 0);
        assert_eq!(
            load(&["--preset=centralized"]).preset,
            PresetChoice::Centralized
        );
    }

    #[test]
    fn help_and_version() {
        let top = printed(&["--help"]);
        assert!(top.contains("mabeam load --help"), "{top}");
        assert!(top.contains("soak"), "{top}");
        assert!(!printed(&["-h"]).is_empty());
        assert!(printed(&["help"]).contains("load"));
        assert_eq!(
            printed(&["--version"]).trim(),
            format!("mabeam {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(printed(&["-V"]), printed(&["--version"]));
        let help = printed(&["load", "--help"]);
        let short = printed(&["load", "--clients", "2", "-h"]);
        assert!(short.starts_with("Run the load test"), "{short}");
        for flag in [
            "--preset",
            "--clients",
            "--ops",
            "--duration",
            "--mix",
            "--shards",
            "--seed",
            "--json",
            "--report",
            "--client-nice",
            "--rate",
            "--rate-sweep",
            "--reserve-auctions",
            "--help",
        ] {
            assert!(help.contains(flag), "{flag} is not explained:\n{help}");
            assert!(short.contains(flag), "{flag} is not in -h:\n{short}");
        }
        assert!(matches!(
            err(&["load", "--help=1"]),
            UsageError::Clap(_) | UsageError::UnknownFlag { .. }
        ));
    }

    #[test]
    fn soak_takes_its_flags_and_defaults_to_a_minute() {
        let soak = |args: &[&str]| match parse_strs(args) {
            Ok(Command::Soak(a)) => a,
            other => panic!("{args:?} gave {other:?}"),
        };
        let d = soak(&["soak"]);
        assert_eq!(d.duration, Duration::from_secs(60));
        assert_eq!(
            (d.clients, d.mix, d.shards, d.seed, d.client_nice),
            (50, Mix::default(), None, 1, DEFAULT_CLIENT_NICE)
        );
        let a = soak(&[
            "soak",
            "--duration=10s",
            "--clients",
            "8",
            "--shards=2",
            "--seed",
            "7",
            "--mix",
            "place_bid=1",
            "--client-nice=0",
        ]);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(
            (a.clients, a.shards, a.seed, a.client_nice),
            (8, Some(2), 7, 0)
        );
        assert_eq!(a.mix, Mix::parse("place_bid=1").unwrap());
        assert!(printed(&["soak", "--help"]).contains("--client-nice"));
        assert!(printed(&["soak", "-h"]).contains("--duration"));
        for flag in ["--ops", "--preset", "--json", "--rate", "--report"] {
            assert!(
                matches!(err(&["soak", flag, "1"]), UsageError::UnknownFlag { flag: f, .. } if f == flag),
                "{flag}"
            );
        }
    }

    #[test]
    fn durations() {
        let d = |s: &str| load(&["load", "--duration", s]).length;
        let secs = |n| RunLength::Duration(Duration::from_secs(n));
        assert_eq!(d("10s"), secs(10));
        assert_eq!(d("90s"), secs(90));
        assert_eq!(d("500ms"), RunLength::Duration(Duration::from_millis(500)));
        assert_eq!(d("250ms"), RunLength::Duration(Duration::from_millis(250)));
        assert_eq!(d("1.5s"), RunLength::Duration(Duration::from_millis(1500)));
        assert_eq!(d("2m"), secs(120));
        assert_eq!(d("1.5m"), secs(90));
        assert_eq!(d("1h"), secs(3600));
        assert_eq!(d("24h"), secs(24 * 3600));
        assert_eq!(d("1m30s"), secs(90));
        assert_eq!(d("1h2m3s"), secs(3723));
        for bad in [
            "10", "s", "0s", "25h", "1e3s", "inf s", "1.2.3s", "25000m", "10x", "1h 2m", "", "ms",
            "1sm",
        ] {
            assert!(
                matches!(err(&["load", "--duration", bad]), UsageError::Clap(m) if m.contains("--duration")),
                "{bad}"
            );
        }
        for bad in ["-1s", "-5"] {
            assert!(
                matches!(err(&["load", "--duration", bad]), UsageError::Clap(m) if m.contains("--duration")),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert_eq!(err(&["lode"]), UsageError::UnknownCommand("lode".into()));
        assert!(matches!(
            err(&["load", "--bogus"]),
            UsageError::UnknownFlag { flag, .. } if flag == "--bogus"
        ));
        assert!(matches!(
            err(&["load", "--bogus=3"]),
            UsageError::UnknownFlag { flag, .. } if flag == "--bogus"
        ));
        assert_eq!(
            err(&["load", "--client"]).to_string(),
            "unknown flag --client (did you mean --clients?)"
        );
        assert!(matches!(
            err(&["load", "-x"]),
            UsageError::UnknownFlag { flag, .. } if flag == "-x"
        ));
        assert_eq!(
            err(&["load", "extra"]),
            UsageError::UnexpectedArgument("extra".into())
        );
        assert!(
            matches!(err(&["load", "--clients"]), UsageError::Clap(m) if m.contains("--clients"))
        );
        assert!(matches!(
            err(&["load", "--ops", "1", "--ops", "2"]),
            UsageError::Clap(m) if m.contains("--ops") && m.contains("cannot be used multiple times")
        ));
        assert_eq!(
            err(&["load", "--ops", "1", "--duration", "1s"]),
            UsageError::OpsAndDuration
        );
        assert!(matches!(
            err(&["load", "--mix", "foo=1"]),
            UsageError::Clap(m) if m.contains("unknown operation \"foo\"")
        ));
        assert!(matches!(
            err(&["load", "--mix", "create_auction=x"]),
            UsageError::Clap(m) if m.contains("create_auction")
        ));
        assert!(
            matches!(err(&["load", "--json", ""]), UsageError::Clap(m) if m.contains("--json"))
        );
        for (flag, value) in [
            ("--clients", "0"),
            ("--clients", "4097"),
            ("--clients", "ten"),
            ("--ops", "0"),
            ("--ops", "-5"),
            ("--shards", "0"),
            ("--shards", "1025"),
            ("--seed", "-1"),
            ("--preset", "fast"),
            ("--client-nice", "20"),
            ("--reserve-auctions", "1048577"),
            ("--reserve-auctions", "-1"),
        ] {
            match err(&["load", flag, value]) {
                UsageError::Clap(m) => {
                    assert!(m.contains(flag) && m.contains(value), "{flag} {value}: {m}")
                }
                other => panic!("{flag} {value}: {other:?}"),
            }
        }
        let UsageError::Clap(m) = err(&["load", "--clients", "0"]) else {
            panic!("--clients 0 is a clap refusal");
        };
        assert!(m.contains("expected a whole number from 1 to 4096"), "{m}");
    }
}
