//! Command-line arguments of `mabeam`, parsed by hand with `std` (no parser crate).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use mabeam::MAX_SHARDS;

use super::mix::{Mix, MixError};

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
/// `mabeam soak`'s `--duration` when not given.
pub const DEFAULT_SOAK_DURATION: Duration = Duration::from_secs(60);
/// Longest `--duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `mabeam --help`: the top-level help.
    Help,
    /// `mabeam load --help`.
    LoadHelp,
    /// `mabeam --version`.
    Version,
    /// `mabeam load …` (also `mabeam` alone, or `mabeam --flag …`).
    Load(LoadArgs),
    /// `mabeam soak --help`.
    SoakHelp,
    /// `mabeam soak …`.
    Soak(SoakArgs),
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

/// Which engine shapes a load run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// `--client-nice`: the nice value client threads give themselves (0..=19).
    pub client_nice: u8,
    /// `--metrics`: where to write each preset's telemetry as Prometheus text (the
    /// preset's name inserted before the extension).
    pub metrics: Option<PathBuf>,
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
            client_nice: DEFAULT_CLIENT_NICE,
            metrics: None,
        }
    }
}

/// Why the command line was refused (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// An argument that is not valid UTF-8.
    NotUtf8(String),
    /// A first argument that is neither a command nor a flag.
    UnknownCommand(String),
    /// A flag `mabeam load` does not know.
    UnknownFlag(String),
    /// A flag given without its value.
    MissingValue(&'static str),
    /// A value for a flag that takes none (`--help=x`).
    UnexpectedValue(&'static str),
    /// A flag given twice.
    Repeated(&'static str),
    /// A bad value; the message says what is expected.
    BadValue {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// What is expected.
        expected: String,
    },
    /// A bad `--mix`.
    Mix(MixError),
    /// `--ops` and `--duration` together.
    OpsAndDuration,
    /// A positional argument after `load`.
    UnexpectedArgument(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NotUtf8(arg) => write!(f, "argument {arg} is not valid UTF-8"),
            UsageError::UnknownCommand(cmd) => {
                write!(
                    f,
                    "unknown command {cmd:?} (the commands are `load` and `soak`)"
                )
            }
            UsageError::UnknownFlag(flag) => write!(f, "unknown flag {flag}"),
            UsageError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            UsageError::UnexpectedValue(flag) => write!(f, "{flag} takes no value"),
            UsageError::Repeated(flag) => write!(f, "{flag} is given twice"),
            UsageError::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "{flag} {value:?}: expected {expected}"),
            UsageError::Mix(e) => write!(f, "--mix: {e}"),
            UsageError::OpsAndDuration => {
                write!(f, "--ops and --duration exclude each other; give one")
            }
            UsageError::UnexpectedArgument(arg) => write!(f, "unexpected argument {arg:?}"),
        }
    }
}

impl std::error::Error for UsageError {}

/// The top-level help (`mabeam --help`).
pub fn help() -> String {
    format!(
        "mabeam {version}: the load tool of the mabeam shard engine

Runs the original MABEAM concurrency test (create auctions, place bids, read market
state, read cached pricing) against the sharded engine and the centralized one (the
original's single GenServer), and reports latency per operation, throughput and success.

Usage:
  mabeam [load] [FLAGS]     run the load test (the default command)
  mabeam load --help        explain the flags of `load`
  mabeam soak [FLAGS]       run the load with injected faults and watch memory and
                            queues once a second (default 60 s; `soak --help`)
  mabeam --help             this text
  mabeam --version          print the version

`cargo run --release` runs `mabeam load` with the defaults.
Exit codes: 0 done, 1 the engine failed or lost commands, 2 bad command line.
",
        version = env!("CARGO_PKG_VERSION")
    )
}

/// The help of `mabeam soak --help`.
pub fn soak_help() -> String {
    format!(
        "mabeam soak: the load's mix with injected faults, watched once a second

Usage: mabeam soak [FLAGS]     (flags take `--flag VALUE` or `--flag=VALUE`)

Flags:
  --duration D   how long the load and the faults run, as for `load` [default: 60s]
  --clients N    client threads, 1..={MAX_CLIENTS} [default: {DEFAULT_CLIENTS}]
  --mix M        operation weights, as for `load` [default: {mix}]
  --shards N     shards, 1..={MAX_SHARDS} [default: cores - 1, at least 1]
  --seed N       seed of the clients' operation sequences [default: {DEFAULT_SEED}]
  --client-nice N  nice value of the client threads, 0..=19 [default: {DEFAULT_CLIENT_NICE}]
  -h, --help     this text

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
baseline and resident memory is within the slack over it (printed); 1 otherwise.
",
        mix = Mix::default(),
    )
}

/// The help of `mabeam load --help`.
pub fn load_help() -> String {
    format!(
        "mabeam load: the original's concurrency test, sharded against centralized

Usage: mabeam load [FLAGS]     (flags take `--flag VALUE` or `--flag=VALUE`)

Flags:
{preset}
                 sharded is Config::default() (pinned shards, snapshot reads,
                 fire-and-forget bids); centralized is Config::centralized() (one
                 shard, every call a synchronous round trip, the original GenServer)
{clients}
{ops}
  --duration D   run each preset for D instead of --ops: a number and a unit,
                 ms, s or m (e.g. 500ms, 10s, 1.5m), at most 24 h
  --mix M        relative weights of the operations, name=weight,... (names:
                 create_auction, place_bid, get_market_state, get_cached_pricing;
                 a name left out has weight 0; weights 0..=1000000)
                 [default: {mix}]
{shards}
{seed}
{nice}
                 client threads lower their own scheduling priority so the shard
                 threads, which do the work of all of them, get the cores; on a
                 2-core machine with 50 busy clients, equal priority leaves the
                 shards 2 of 52 time slices (both presets get the same value)
  --json PATH    also write the results as JSON to PATH (schema: machine.cpus,
                 runs[].preset/clients/shards/ops_per_sec/ops_per_sec_client_side/
                 success_rate/resident_bytes_peak (or null)/mailbox_depth_peak/
                 operations.NAME.count/avg_us/min_us/max_us/p50_us/p95_us/p99_us,
                 ratio_sharded_over_centralized or null)
  --metrics PATH write each preset's telemetry at the end of its run as Prometheus
                 text, one file per preset: the preset's name before the extension
                 (metrics.prom -> metrics.sharded.prom, metrics.centralized.prom)
  -h, --help     this text

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

Output: a progress bar on stderr (only on a terminal), then per preset a table of count,
avg, min, max, p50, p95, p99 latency (µs, measured around each call; for a bid that is
the send), operations per second end to end (the clock stops after engine.flush(), when
every accepted write has been applied) and client side (when the last client finished),
and the success rate; then the ratio sharded / centralized of the end-to-end rates.

Success is what the engine did: a create succeeds when it returns an auction id; a bid
when it was applied and answered by the auction's rule (a refusal by the rule counts as
a success). After the run the tool checks that the engine applied exactly the commands
it was sent (shutdown report), that every created auction exists, and that the sum of
the auctions' bid counts is the number of bids the rule had to accept.
",
        preset = flag_line("  --preset P     sharded | centralized | both", "both"),
        clients = flag_line(
            &format!("  --clients N    client threads, 1..={MAX_CLIENTS}"),
            &DEFAULT_CLIENTS.to_string()
        ),
        ops = flag_line(
            &format!("  --ops N        operations per client, 1..={MAX_OPS}"),
            &DEFAULT_OPS.to_string()
        ),
        shards = flag_line(
            &format!("  --shards N     shards of the sharded preset, 1..={MAX_SHARDS}"),
            "cores - 1, at least 1"
        ),
        seed = flag_line(
            "  --seed N       seed of the clients' operation sequences, a u64",
            &DEFAULT_SEED.to_string()
        ),
        nice = flag_line(
            "  --client-nice N  nice value of the client threads, 0..=19",
            &DEFAULT_CLIENT_NICE.to_string()
        ),
        mix = Mix::default()
    )
}

/// A help line: the flag and its description, then its default in a column.
fn flag_line(text: &str, default: &str) -> String {
    format!("{text:<66} [default: {default}]")
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| UsageError::NotUtf8(format!("{a:?}")))
        })
        .collect::<Result<Vec<String>, _>>()?
        .into_iter();
    let rest: Vec<String> = match args.next() {
        None => return Ok(Command::Load(LoadArgs::default())),
        Some(first) => match first.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "load" => args.collect(),
            "soak" => return parse_soak(args.collect()),
            flag if flag.starts_with('-') => std::iter::once(first).chain(args).collect(),
            _ => return Err(UsageError::UnknownCommand(first)),
        },
    };
    parse_load(rest)
}

/// The flags `mabeam soak` knows (a subset of `load`'s).
const SOAK_FLAGS: [(&str, bool); 7] = [
    ("--client-nice", true),
    ("--clients", true),
    ("--duration", true),
    ("--mix", true),
    ("--shards", true),
    ("--seed", true),
    ("--help", false),
];

fn parse_soak(args: Vec<String>) -> Result<Command, UsageError> {
    let Some(Flags { load, duration, .. }) = parse_flags(args, &SOAK_FLAGS)? else {
        return Ok(Command::SoakHelp);
    };
    Ok(Command::Soak(SoakArgs {
        duration: duration.unwrap_or(DEFAULT_SOAK_DURATION),
        clients: load.clients,
        mix: load.mix,
        shards: load.shards,
        seed: load.seed,
        client_nice: load.client_nice,
    }))
}

/// The flags `mabeam load` knows, with whether they take a value.
const FLAGS: [(&str, bool); 11] = [
    ("--client-nice", true),
    ("--preset", true),
    ("--clients", true),
    ("--ops", true),
    ("--duration", true),
    ("--mix", true),
    ("--shards", true),
    ("--seed", true),
    ("--json", true),
    ("--metrics", true),
    ("--help", false),
];

/// What [`parse_flags`] read: the flags as `load` takes them, and the length flags.
struct Flags {
    load: LoadArgs,
    ops: Option<u64>,
    duration: Option<Duration>,
}

fn parse_load(args: Vec<String>) -> Result<Command, UsageError> {
    let Some(Flags {
        load: mut out,
        ops,
        duration,
    }) = parse_flags(args, &FLAGS)?
    else {
        return Ok(Command::LoadHelp);
    };
    out.length = match (ops, duration) {
        (Some(_), Some(_)) => return Err(UsageError::OpsAndDuration),
        (Some(n), None) => RunLength::Ops(n),
        (None, Some(d)) => RunLength::Duration(d),
        (None, None) => RunLength::Ops(DEFAULT_OPS),
    };
    Ok(Command::Load(out))
}

/// Reads the flags of `flags` (a subset of [`FLAGS`]); `None` means help was asked.
fn parse_flags(
    args: Vec<String>,
    flags: &[(&'static str, bool)],
) -> Result<Option<Flags>, UsageError> {
    let mut out = LoadArgs::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut ops = None;
    let mut duration = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" {
            return Ok(None);
        }
        if !arg.starts_with("--") {
            return Err(if arg.starts_with('-') {
                UsageError::UnknownFlag(arg)
            } else {
                UsageError::UnexpectedArgument(arg)
            });
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let Some(&(flag, takes_value)) = flags.iter().find(|(f, _)| *f == name) else {
            return Err(UsageError::UnknownFlag(name));
        };
        if !takes_value {
            if inline.is_some() {
                return Err(UsageError::UnexpectedValue(flag));
            }
            return Ok(None);
        }
        if seen.contains(&flag) {
            return Err(UsageError::Repeated(flag));
        }
        seen.push(flag);
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or(UsageError::MissingValue(flag))?,
        };
        match flag {
            "--preset" => out.preset = parse_preset(&value)?,
            "--clients" => {
                out.clients = parse_count(flag, &value, MAX_CLIENTS as u64)? as usize;
            }
            "--ops" => ops = Some(parse_count(flag, &value, MAX_OPS)?),
            "--duration" => duration = Some(parse_duration(&value)?),
            "--mix" => out.mix = Mix::parse(&value).map_err(UsageError::Mix)?,
            "--shards" => {
                out.shards = Some(parse_count(flag, &value, MAX_SHARDS as u64)? as usize);
            }
            "--seed" => {
                out.seed = value.parse().map_err(|_| UsageError::BadValue {
                    flag,
                    value: value.clone(),
                    expected: "a whole number from 0 to 18446744073709551615".into(),
                })?;
            }
            "--client-nice" => {
                out.client_nice =
                    value
                        .parse::<u8>()
                        .ok()
                        .filter(|n| *n <= 19)
                        .ok_or_else(|| UsageError::BadValue {
                            flag,
                            value: value.clone(),
                            expected: "a nice value from 0 to 19".into(),
                        })?;
            }
            "--json" => {
                if value.is_empty() {
                    return Err(UsageError::MissingValue(flag));
                }
                out.json = Some(PathBuf::from(value));
            }
            "--metrics" => {
                if value.is_empty() {
                    return Err(UsageError::MissingValue(flag));
                }
                out.metrics = Some(PathBuf::from(value));
            }
            _ => unreachable!("every flag of FLAGS that takes a value is matched above"),
        }
    }
    Ok(Some(Flags {
        load: out,
        ops,
        duration,
    }))
}

fn parse_preset(value: &str) -> Result<PresetChoice, UsageError> {
    match value {
        "sharded" => Ok(PresetChoice::Sharded),
        "centralized" => Ok(PresetChoice::Centralized),
        "both" => Ok(PresetChoice::Both),
        _ => Err(UsageError::BadValue {
            flag: "--preset",
            value: value.into(),
            expected: "sharded, centralized or both".into(),
        }),
    }
}

/// A whole number in `1..=max`.
fn parse_count(flag: &'static str, value: &str, max: u64) -> Result<u64, UsageError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| UsageError::BadValue {
            flag,
            value: value.into(),
            expected: format!("a whole number from 1 to {max}"),
        })
}

/// A positive duration: a decimal number and a unit (`ms`, `s`, `m`), at most
/// [`MAX_DURATION`].
fn parse_duration(value: &str) -> Result<Duration, UsageError> {
    let bad = || UsageError::BadValue {
        flag: "--duration",
        value: value.into(),
        expected: "a positive number and a unit: ms, s or m (e.g. 500ms, 10s), at most 24 h".into(),
    };
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let seconds_per_unit = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(bad()),
    };
    // Digits and at most one dot only: no signs, exponents, "inf" or "NaN".
    if number.is_empty()
        || !number.chars().all(|c| c.is_ascii_digit() || c == '.')
        || number.matches('.').count() > 1
    {
        return Err(bad());
    }
    let n: f64 = number.parse().map_err(|_| bad())?;
    let d = Duration::try_from_secs_f64(n * seconds_per_unit).map_err(|_| bad())?;
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

    #[test]
    fn no_arguments_is_load_with_the_defaults() {
        assert_eq!(parse_strs(&[]), Ok(Command::Load(LoadArgs::default())));
        assert_eq!(load(&["load"]), LoadArgs::default());
        let d = LoadArgs::default();
        assert_eq!(d.preset, PresetChoice::Both);
        assert_eq!(d.clients, 50);
        assert_eq!(d.mix, Mix::default());
        assert_eq!(d.shards, None);
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
            "--metrics=m.prom",
        ]);
        assert_eq!(a.metrics, Some(PathBuf::from("m.prom")));
        assert_eq!(a.preset, PresetChoice::Sharded);
        assert_eq!(a.clients, 8);
        assert_eq!(a.length, RunLength::Ops(100));
        assert_eq!(a.mix, Mix::parse("place_bid=1").unwrap());
        assert_eq!(a.shards, Some(3));
        assert_eq!(a.seed, 42);
        assert_eq!(a.json, Some(PathBuf::from("out.json")));
    }

    #[test]
    fn flags_without_the_load_command_mean_load() {
        assert_eq!(load(&["--clients", "3"]).clients, 3);
        assert_eq!(
            load(&["--preset=centralized"]).preset,
            PresetChoice::Centralized
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["--version"]), Ok(Command::Version));
        assert_eq!(parse_strs(&["load", "--help"]), Ok(Command::LoadHelp));
        assert_eq!(
            parse_strs(&["load", "--clients", "2", "-h"]),
            Ok(Command::LoadHelp)
        );
        assert_eq!(
            parse_strs(&["load", "--help=1"]),
            Err(UsageError::UnexpectedValue("--help"))
        );
        for flag in [
            "--preset",
            "--clients",
            "--ops",
            "--duration",
            "--mix",
            "--shards",
        ] {
            assert!(load_help().contains(flag), "{flag} is not explained");
        }
        for flag in ["--seed", "--json", "--help"] {
            assert!(load_help().contains(flag), "{flag} is not explained");
        }
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
        assert_eq!(parse_strs(&["soak", "--help"]), Ok(Command::SoakHelp));
        assert_eq!(parse_strs(&["soak", "-h"]), Ok(Command::SoakHelp));
        for flag in ["--ops", "--preset", "--json"] {
            assert_eq!(
                parse_strs(&["soak", flag, "1"]),
                Err(UsageError::UnknownFlag(flag.into()))
            );
        }
        assert!(help().contains("mabeam soak"));
    }

    #[test]
    fn durations() {
        let d = |s: &str| load(&["load", "--duration", s]).length;
        assert_eq!(d("10s"), RunLength::Duration(Duration::from_secs(10)));
        assert_eq!(d("500ms"), RunLength::Duration(Duration::from_millis(500)));
        assert_eq!(d("1.5s"), RunLength::Duration(Duration::from_millis(1500)));
        assert_eq!(d("2m"), RunLength::Duration(Duration::from_secs(120)));
        for bad in [
            "10", "s", "0s", "-1s", "10h", "1e3s", "inf s", "1.2.3s", "25000m",
        ] {
            assert!(
                matches!(
                    parse_strs(&["load", "--duration", bad]),
                    Err(UsageError::BadValue {
                        flag: "--duration",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |args: &[&str]| parse_strs(args).unwrap_err();
        assert_eq!(err(&["lode"]), UsageError::UnknownCommand("lode".into()));
        assert_eq!(
            err(&["load", "--bogus"]),
            UsageError::UnknownFlag("--bogus".into())
        );
        assert_eq!(err(&["load", "-x"]), UsageError::UnknownFlag("-x".into()));
        assert_eq!(
            err(&["load", "extra"]),
            UsageError::UnexpectedArgument("extra".into())
        );
        assert_eq!(
            err(&["load", "--clients"]),
            UsageError::MissingValue("--clients")
        );
        assert_eq!(
            err(&["load", "--ops", "1", "--ops", "2"]),
            UsageError::Repeated("--ops")
        );
        assert_eq!(
            err(&["load", "--ops", "1", "--duration", "1s"]),
            UsageError::OpsAndDuration
        );
        assert_eq!(
            err(&["load", "--mix", "foo=1"]),
            UsageError::Mix(MixError::UnknownOperation("foo".into()))
        );
        assert!(matches!(
            err(&["load", "--mix", "create_auction=x"]),
            UsageError::Mix(MixError::BadWeight { .. })
        ));
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
        ] {
            match err(&["load", flag, value]) {
                UsageError::BadValue {
                    flag: f, value: v, ..
                } => {
                    assert_eq!((f, v.as_str()), (flag, value));
                }
                other => panic!("{flag} {value}: {other:?}"),
            }
        }
        assert_eq!(
            err(&["load", "--clients", "0"]).to_string(),
            "--clients \"0\": expected a whole number from 1 to 4096"
        );
    }
}
