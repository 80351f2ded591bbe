//! Read path: mabeam's snapshot reads against what a user would pick instead.
//!
//! Every contender holds the same 10,000 agents (ids `1..=10_000`, each value an
//! [`AgentSnapshot`], the 11-word record mabeam publishes) and is read by 1 and 2 reader
//! threads over the same precomputed pseudo-random key sequence, while one writer thread
//! keeps updating the same keys (bursts of [`WRITE_BURST`] writes, then
//! `thread::yield_now`) for the whole measurement:
//!
//! - `mabeam`: `engine.agents().get(id)` on a 2-shard unpinned engine; the writer sends
//!   fire-and-forget updates through a [`BatchWriter`](mabeam::BatchWriter).
//! - `mabeam_status`: the same engine and writer, `engine.agents().status(id)`: the field
//!   read, which loads the slot's header and one record word instead of the whole record
//!   (a new row beside `mabeam`, which stays the whole-record read).
//! - `mabeam_pinned`: the same with `pin_threads: true` (shard `i` on core `i`).
//! - `rwlock`: `parking_lot::RwLock<hashbrown::HashMap>`; the writer takes the write lock
//!   for each insert.
//! - `dashmap`: `DashMap` with hashbrown's default hasher (foldhash, the same fast hasher
//!   as the `rwlock` and `actor` maps); `dashmap_status`: the same map, reading only the
//!   status (`map.get(&id).map(|e| e.state.status)`, no copy of the entry);
//!   `dashmap_siphash`: `DashMap` with its default
//!   (std `RandomState`, SipHash), which is what a user gets without choosing.
//! - `actor`: one thread owns a `hashbrown::HashMap` and answers requests from a bounded
//!   flume mailbox; a read is a round trip (the request carries a clone of the reader's
//!   reply `Sender`), and the writer's updates go through the same mailbox.
//! - `seqslot_floor`: a bare `Vec` of `mabeam_shards::seqlock::SeqSlot`s indexed by id, no
//!   hashing, no table, no routing: the floor a seqlock read cannot beat.
//!
//! Each sample spawns the readers, releases them together with a `Barrier`, and reports
//! the wall time from the first reader's start to the last reader's end; throughput is
//! `readers × iters` lookups. Every lookup must hit (asserted after the timed loop).
//! The machine this runs on has 2 cores: with 2 readers, the writer and (for mabeam) 2
//! shard threads it is oversubscribed, on purpose. The writer's rate during the reads is
//! printed to stderr after each benchmark, because a starved writer makes reads cheaper.
//!
//! So is where the CPU went (Linux only, from the scheduler's own accounting; see
//! `src/load/thread_cpu.rs`): the cores' worth of CPU the readers ran over their wall time,
//! the writer and the shard threads over the samples' spans, and the reads per second of
//! reader CPU. That last figure is the read's cost with the readers' share of the two
//! cores taken out, so two contenders' figures of one run compare their read paths alone.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use dashmap::DashMap;
use mabeam::agents::{AgentSnapshot, AgentState, AgentStatus};
use mabeam::{Config, Engine};
use mabeam_shards::agents::RECORD_WORDS;
use mabeam_shards::seqlock::SeqSlot;
use parking_lot::RwLock;

#[path = "../src/load/thread_cpu.rs"]
mod thread_cpu;

/// The calling thread's on-CPU time so far (`None` where the OS does not report it).
fn this_thread_cpu() -> Option<Duration> {
    thread_cpu::schedstat("/proc/thread-self/schedstat")
}

/// On-CPU time so far of the engine's shard threads and of the bench's writer, as
/// `[shards, writer]`.
fn helper_cpu() -> Option<[Duration; 2]> {
    thread_cpu::by_role(|name| {
        if name.starts_with("mabeam-shard") {
            Some(0)
        } else if name.trim_end() == "bench-writer" {
            Some(1)
        } else {
            None
        }
    })
}

/// Number of agents, ids `1..=AGENTS`.
const AGENTS: u64 = 10_000;
/// Length of the precomputed key sequence (a power of two); readers cycle through it.
const KEY_SEQUENCE: usize = 1 << 16;
/// Writes the writer makes between two `yield_now` calls.
const WRITE_BURST: u64 = 256;
/// Reader thread counts to measure.
const READERS: [usize; 2] = [1, 2];
/// Commands per shard buffered by mabeam's writer before it sends them as one message.
const MABEAM_WRITE_BATCH: usize = 64;
/// Capacity of the actor's mailbox, in messages.
const ACTOR_MAILBOX: usize = 1024;

/// The benchmark group every contender adds its benchmarks to.
type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// The record every contender stores for agent `id` at write number `version`.
fn snapshot(id: u64, version: u64) -> AgentSnapshot {
    AgentSnapshot {
        id,
        state: state(id, version),
        coordination: None,
        version,
        updated_at: version,
    }
}

/// The state mabeam's writer sends for agent `id` at write number `version`.
fn state(id: u64, version: u64) -> AgentState {
    AgentState {
        status: AgentStatus::Busy,
        load: version,
        tasks_completed: version,
        data: [id, version, 0, 0],
    }
}

/// The id the writer updates at its `n`-th write: every agent in turn.
fn write_id(n: u64) -> u64 {
    1 + n % AGENTS
}

/// `KEY_SEQUENCE` ids drawn uniformly from `1..=AGENTS` (xorshift64*, fixed seed).
fn key_sequence() -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..KEY_SEQUENCE)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            1 + x.wrapping_mul(0x2545_F491_4F6C_DD1D) % AGENTS
        })
        .collect()
}

/// What the writer thread does during the reads, chosen with the `READS_WRITER`
/// environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterMode {
    /// `busy` (the default, the setting): write as fast as the contender accepts,
    /// yielding after each burst of [`WRITE_BURST`] writes.
    Busy,
    /// A number: that many writes per second, the same load for every contender (the
    /// writer sleeps when it is ahead of schedule and writes on without yielding when it
    /// is behind, so a writer the scheduler starves catches up instead of falling
    /// further behind).
    Paced(u64),
    /// `none`: no writer at all, the bare read cost.
    Off,
}

impl WriterMode {
    fn from_env() -> Self {
        match std::env::var("READS_WRITER") {
            Err(_) => Self::Busy,
            Ok(v) if v == "busy" => Self::Busy,
            Ok(v) if v == "none" => Self::Off,
            Ok(v) => match v.parse::<u64>() {
                Ok(rate) if rate > 0 => Self::Paced(rate),
                _ => panic!("READS_WRITER must be `busy`, `none` or writes per second, not {v:?}"),
            },
        }
    }

    /// The criterion group name, so each mode keeps its own baseline.
    fn group_name(self) -> String {
        match self {
            Self::Busy => "reads".into(),
            Self::Paced(rate) => format!("reads_writer_{rate}_per_s"),
            Self::Off => "reads_no_writer".into(),
        }
    }
}

/// A thread that calls `write(n)` for `n = 0, 1, 2, …` in bursts of [`WRITE_BURST`] at the
/// pace of its [`WriterMode`], until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    fn spawn(mode: WriterMode, mut write: impl FnMut(u64) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let handle = (mode != WriterMode::Off).then(|| {
            let (stop, writes) = (stop.clone(), writes.clone());
            thread::Builder::new()
                .name("bench-writer".into())
                .spawn(move || {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..WRITE_BURST {
                            write(n);
                            n += 1;
                        }
                        writes.store(n, Ordering::Relaxed);
                        let due = match mode {
                            WriterMode::Paced(rate) => {
                                start + Duration::from_secs_f64(n as f64 / rate as f64)
                            }
                            WriterMode::Busy | WriterMode::Off => start,
                        };
                        match (mode, due.checked_duration_since(Instant::now())) {
                            (_, Some(ahead)) if !ahead.is_zero() => thread::sleep(ahead),
                            (WriterMode::Paced(_), _) => {}
                            _ => thread::yield_now(),
                        }
                    }
                })
                .expect("the OS starts the bench writer thread")
        });
        Self {
            stop,
            writes,
            handle,
        }
    }

    /// Writes made so far (updated once per burst).
    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.join().expect("the bench writer does not panic");
        }
    }
}

/// What one sample's readers took: the wall time from the first reader's start to the
/// last reader's end, and the readers' summed on-CPU time over their timed loops (`None`
/// where the OS does not report it).
struct ReadSpan {
    wall: Duration,
    reader_cpu: Option<Duration>,
}

/// Runs `readers` threads that each make `iters` lookups with a reader built by
/// `make_reader` (built on the reader's own thread, before the start barrier).
fn read_wall_time<M, R, T>(readers: usize, iters: u64, keys: &[u64], make_reader: &M) -> ReadSpan
where
    M: Fn() -> R + Sync,
    R: FnMut(u64) -> Option<T>,
{
    let mask = keys.len() - 1;
    let barrier = Barrier::new(readers);
    let spans: Vec<(Instant, Instant, Option<Duration>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..readers)
            .map(|r| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut read = make_reader();
                    // Readers start at different places of the sequence.
                    let offset = r * keys.len() / readers;
                    let mut hits = 0u64;
                    barrier.wait();
                    let (start, cpu_start) = (Instant::now(), this_thread_cpu());
                    for j in 0..iters as usize {
                        let id = keys[(offset + j) & mask];
                        hits += u64::from(black_box(read(id)).is_some());
                    }
                    let (end, cpu_end) = (Instant::now(), this_thread_cpu());
                    assert_eq!(hits, iters, "every agent was written before the reads");
                    (start, end, cpu_end.zip(cpu_start).map(|(e, s)| e - s))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench reader does not panic"))
            .collect()
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one reader");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one reader");
    ReadSpan {
        wall: last - first,
        reader_cpu: spans.iter().map(|s| s.2).sum(),
    }
}

/// Benchmarks one contender at every reader count while `writer` runs, then prints the
/// writer's rate during the reads and where the machine's CPU went: how many cores' worth
/// the readers ran over their wall time, the writer and the shards over the samples'
/// spans, and the reads per second of reader CPU (the read's cost with the share of the
/// cores taken out, comparable across contenders of one run).
fn bench_contender<M, R, T>(
    group: &mut Group<'_>,
    name: &str,
    keys: &[u64],
    writer: &Writer,
    make_reader: M,
) where
    M: Fn() -> R + Sync,
    R: FnMut(u64) -> Option<T>,
{
    for readers in READERS {
        let (mut writes, mut elapsed) = (0u64, Duration::ZERO);
        let (mut reads, mut wall) = (0u64, Duration::ZERO);
        let mut reader_cpu = Some(Duration::ZERO);
        let mut helpers = Some([Duration::ZERO; 2]);
        group.throughput(Throughput::Elements(readers as u64));
        group.bench_function(BenchmarkId::new(name, readers), |b| {
            b.iter_custom(|iters| {
                let (w0, t0, h0) = (writer.writes(), Instant::now(), helper_cpu());
                let span = read_wall_time(readers, iters, keys, &make_reader);
                let h1 = helper_cpu();
                writes += writer.writes() - w0;
                elapsed += t0.elapsed();
                reads += iters * readers as u64;
                wall += span.wall;
                reader_cpu = reader_cpu.zip(span.reader_cpu).map(|(a, b)| a + b);
                helpers = helpers.zip(h1.zip(h0)).map(|(sum, (h1, h0))| {
                    // Zero for a role whose threads were replaced in between.
                    core::array::from_fn(|i| sum[i] + h1[i].saturating_sub(h0[i]))
                });
                span.wall
            })
        });
        if reads == 0 {
            continue; // filtered out: nothing was measured, so nothing to print
        }
        eprintln!(
            "reads/{name}/{readers}: writer made {:.2} M writes/s during the reads",
            writes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
        );
        if let (Some(cpu), Some([shards, writer_cpu])) = (reader_cpu, helpers) {
            let cores =
                |t: Duration, over: Duration| t.as_secs_f64() / over.as_secs_f64().max(1e-9);
            eprintln!(
                "reads/{name}/{readers}: cores' worth of CPU: readers {:.2}, writer {:.2}, \
                 shards {:.2}; {:.1} M reads per reader CPU-second",
                cores(cpu, wall),
                cores(writer_cpu, elapsed),
                cores(shards, elapsed),
                reads as f64 / cpu.as_secs_f64().max(1e-9) / 1e6
            );
        }
    }
}

fn mabeam(group: &mut Group<'_>, keys: &[u64], mode: WriterMode, pin: bool) {
    let engine = Engine::start(Config::default().with_shards(2).with_pin_threads(pin))
        .expect("the bench config is valid");
    let mut init = engine.batch_writer(MABEAM_WRITE_BATCH);
    for id in 1..=AGENTS {
        let _held_or_sent = init
            .update_agent(id, state(id, 0))
            .expect("the engine accepts the initial agents");
    }
    init.flush().expect("the engine accepts the initial agents");
    engine
        .flush()
        .expect("the engine applies the initial agents");
    let mut batch = engine.batch_writer(MABEAM_WRITE_BATCH);
    let failed = Arc::new(AtomicU64::new(0));
    let writer = {
        let failed = failed.clone();
        Writer::spawn(mode, move |n| {
            // A full mailbox makes this wait (up to `send_timeout`): the writer then runs
            // at the shards' pace. A refused batch is counted and reported.
            if batch
                .update_agent(write_id(n), state(write_id(n), n))
                .is_err()
            {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let name = if pin { "mabeam_pinned" } else { "mabeam" };
    let engine_ref = &engine;
    bench_contender(group, name, keys, &writer, || {
        move |id| engine_ref.agents().get(id).expect("the engine is running")
    });
    if !pin {
        bench_contender(group, "mabeam_status", keys, &writer, || {
            move |id| {
                engine_ref
                    .agents()
                    .status(id)
                    .expect("the engine is running")
            }
        });
    }
    drop(writer);
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("reads/{name}: {failed} writes were refused (mailbox full past send_timeout)");
    }
    let report = engine.shutdown();
    eprintln!(
        "reads/{name}: shards applied {} commands in {} batches",
        report.applied(),
        report.shards.iter().map(|s| s.batches).sum::<u64>()
    );
}

fn rwlock(group: &mut Group<'_>, keys: &[u64], mode: WriterMode) {
    let map: Arc<RwLock<hashbrown::HashMap<u64, AgentSnapshot>>> = Arc::new(RwLock::new(
        (1..=AGENTS).map(|id| (id, snapshot(id, 0))).collect(),
    ));
    let writer = {
        let map = map.clone();
        Writer::spawn(mode, move |n| {
            map.write().insert(write_id(n), snapshot(write_id(n), n));
        })
    };
    bench_contender(group, "rwlock", keys, &writer, || {
        |id| map.read().get(&id).copied()
    });
}

/// The `dashmap` contender (and `{name}_status` too if `status_row`).
fn dashmap<S>(
    group: &mut Group<'_>,
    keys: &[u64],
    mode: WriterMode,
    (name, status_row): (&str, bool),
    hasher: S,
) where
    S: std::hash::BuildHasher + Clone + Send + Sync + 'static,
{
    let map: Arc<DashMap<u64, AgentSnapshot, S>> = Arc::new(DashMap::with_hasher(hasher));
    for id in 1..=AGENTS {
        map.insert(id, snapshot(id, 0));
    }
    let writer = {
        let map = map.clone();
        Writer::spawn(mode, move |n| {
            map.insert(write_id(n), snapshot(write_id(n), n));
        })
    };
    bench_contender(group, name, keys, &writer, || |id| map.get(&id).map(|r| *r));
    if status_row {
        bench_contender(group, &format!("{name}_status"), keys, &writer, || {
            |id| map.get(&id).map(|r| r.state.status)
        });
    }
}

/// A message to the actor.
enum Msg {
    Get(u64, flume::Sender<Option<AgentSnapshot>>),
    Put(AgentSnapshot),
}

fn actor(group: &mut Group<'_>, keys: &[u64], mode: WriterMode) {
    let (tx, rx) = flume::bounded::<Msg>(ACTOR_MAILBOX);
    let owner = thread::Builder::new()
        .name("bench-actor".into())
        .spawn(move || {
            let mut map: hashbrown::HashMap<u64, AgentSnapshot> =
                (1..=AGENTS).map(|id| (id, snapshot(id, 0))).collect();
            // Ends when every sender (bench, writer, readers) is gone.
            while let Ok(msg) = rx.recv() {
                match msg {
                    Msg::Get(id, reply) => {
                        let _ = reply.send(map.get(&id).copied());
                    }
                    Msg::Put(s) => {
                        map.insert(s.id, s);
                    }
                }
            }
        })
        .expect("the OS starts the actor thread");
    let writer = {
        let tx = tx.clone();
        Writer::spawn(mode, move |n| {
            let _ = tx.send(Msg::Put(snapshot(write_id(n), n)));
        })
    };
    bench_contender(group, "actor", keys, &writer, || {
        let (reply_tx, reply_rx) = flume::bounded(1);
        let tx = tx.clone();
        move |id: u64| {
            tx.send(Msg::Get(id, reply_tx.clone()))
                .expect("the actor runs until every sender is gone");
            reply_rx.recv().expect("the actor answers every request")
        }
    });
    drop(writer);
    drop(tx);
    owner.join().expect("the actor does not panic");
}

fn seqslot_floor(group: &mut Group<'_>, keys: &[u64], mode: WriterMode) {
    let slots: Arc<Vec<SeqSlot<RECORD_WORDS>>> = Arc::new(
        (1..=AGENTS)
            .map(|id| SeqSlot::new(snapshot(id, 0).to_words()))
            .collect(),
    );
    let writer = {
        let slots = slots.clone();
        Writer::spawn(mode, move |n| {
            let id = write_id(n);
            slots[(id - 1) as usize].write(&snapshot(id, n).to_words());
        })
    };
    bench_contender(group, "seqslot_floor", keys, &writer, || {
        |id: u64| AgentSnapshot::from_words(&slots[(id - 1) as usize].read())
    });
}

fn reads(c: &mut Criterion) {
    let keys = key_sequence();
    let mode = WriterMode::from_env();
    let mut group = c.benchmark_group(mode.group_name());
    group.sampling_mode(SamplingMode::Flat);
    mabeam(&mut group, &keys, mode, false);
    mabeam(&mut group, &keys, mode, true);
    rwlock(&mut group, &keys, mode);
    let fast = hashbrown::DefaultHashBuilder::default();
    dashmap(&mut group, &keys, mode, ("dashmap", true), fast);
    let sip = std::collections::hash_map::RandomState::new();
    dashmap(&mut group, &keys, mode, ("dashmap_siphash", false), sip);
    actor(&mut group, &keys, mode);
    seqslot_floor(&mut group, &keys, mode);
    group.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    use super::{reads, Criterion, Duration};

    criterion::criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(10);
        targets = reads
    }
}
criterion_main!(group::benches);
