//! Write path: fire-and-forget and acknowledged writes, sharded against centralized and
//! against what a user would pick instead.
//!
//! - `writes_ff/{contender}/{writers}`: `writers` threads (1 and 2) each make `iters`
//!   agent-state writes without waiting for them, then the clock stops when every write
//!   has been applied (`engine.flush()`; for the actor, a final round trip). Contenders:
//!   `mabeam` (one message per write), `mabeam_batched` (a [`BatchWriter`] of 256),
//!   `centralized` (the GenServer shape: every write is a round trip), `dashmap` and
//!   `rwlock` (the write itself), `actor` (a flume cast to one thread owning a map).
//! - `bids_ff/{contender}/{writers}`: the same with bids (`bid_nowait`) on English
//!   auctions, rising amounts, so every bid is accepted; `bids_acked/…`: the same bids
//!   acknowledged (`bid(..).wait()`), one at a time per writer.
//! - `acked/{contender}/{clients}`: acknowledged agent writes (`update_acked(..).wait()`),
//!   one at a time per client, 1 and 2 clients; the bench also prints each run's p50 and
//!   p99 round trip to stderr (criterion reports the mean).
//!
//! - `acked_under_flood/{contender}`: one probe thread creates auctions one at a time
//!   (`create(..).wait()`) while two flooder threads write fire-and-forget agent updates
//!   to the same engine as fast as it admits them: how long an acknowledged call waits
//!   behind fire-and-forget backlog. Contenders: `Config::default()` with
//!   `write_delay` 20 µs, 50 µs (the default), 200 µs and `Duration::MAX` (admission by
//!   the mailbox's size alone, as before the runtime layer), and `centralized`. Prints
//!   the probe's p50/p99 and the flood's rate to stderr.
//!
//! Throughput = writes. Run: `cargo bench --bench writes`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use mabeam::agents::{AgentSnapshot, AgentState};
use mabeam::auctions::{AuctionId, AuctionKind, AuctionSpec, Bid};
use mabeam::{Config, Engine};
use parking_lot::RwLock;

/// Agent ids written, `0..KEYS`.
const KEYS: u64 = 10_000;
/// Writes per message of the batched writer.
const BATCH: usize = 256;

fn state(n: u64) -> AgentState {
    AgentState {
        load: n,
        ..AgentState::default()
    }
}

fn sharded() -> Engine {
    Engine::start(Config::default()).expect("valid config")
}

fn centralized() -> Engine {
    Engine::start(Config::centralized()).expect("valid config")
}

/// Runs `threads` threads, each calling `work(thread, iters)`, started together; returns
/// the wall time from the start until every thread has finished and `finish` returned.
fn timed<W, F>(threads: usize, iters: u64, work: W, finish: F) -> Duration
where
    W: Fn(usize, u64) + Sync,
    F: FnOnce(),
{
    let start = Barrier::new(threads + 1);
    let t = std::thread::scope(|s| {
        for i in 0..threads {
            let (start, work) = (&start, &work);
            s.spawn(move || {
                start.wait();
                work(i, iters);
            });
        }
        start.wait();
        Instant::now()
    });
    finish();
    t.elapsed()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g
}

fn writes_ff(c: &mut Criterion) {
    let mut g = group(c, "writes_ff");
    for writers in [1usize, 2] {
        g.throughput(Throughput::Elements(writers as u64));
        for (name, engine) in [("mabeam", sharded()), ("centralized", centralized())] {
            g.bench_with_input(BenchmarkId::new(name, writers), &writers, |b, &w| {
                b.iter_custom(|iters| {
                    timed(
                        w,
                        iters,
                        |t, n| {
                            let agents = engine.agents();
                            for i in 0..n {
                                agents
                                    .update((t as u64 * n + i) % KEYS, state(i))
                                    .expect("accepted");
                            }
                        },
                        || engine.flush().expect("running"),
                    )
                })
            });
        }
        let engine = sharded();
        g.bench_with_input(
            BenchmarkId::new("mabeam_batched", writers),
            &writers,
            |b, &w| {
                b.iter_custom(|iters| {
                    timed(
                        w,
                        iters,
                        |t, n| {
                            let mut writer = engine.batch_writer(BATCH);
                            for i in 0..n {
                                let _held_or_sent = writer
                                    .update_agent((t as u64 * n + i) % KEYS, state(i))
                                    .expect("accepted");
                            }
                            writer.flush().expect("accepted");
                        },
                        || engine.flush().expect("running"),
                    )
                })
            },
        );
        drop(engine);
        let map: DashMap<u64, AgentState> = DashMap::new();
        g.bench_with_input(BenchmarkId::new("dashmap", writers), &writers, |b, &w| {
            b.iter_custom(|iters| {
                timed(
                    w,
                    iters,
                    |t, n| {
                        for i in 0..n {
                            map.insert((t as u64 * n + i) % KEYS, state(i));
                        }
                    },
                    || {},
                )
            })
        });
        let map: RwLock<hashbrown::HashMap<u64, AgentState>> = RwLock::default();
        g.bench_with_input(BenchmarkId::new("rwlock", writers), &writers, |b, &w| {
            b.iter_custom(|iters| {
                timed(
                    w,
                    iters,
                    |t, n| {
                        for i in 0..n {
                            map.write().insert((t as u64 * n + i) % KEYS, state(i));
                        }
                    },
                    || {},
                )
            })
        });
        let actor = Actor::start();
        g.bench_with_input(BenchmarkId::new("actor", writers), &writers, |b, &w| {
            b.iter_custom(|iters| {
                timed(
                    w,
                    iters,
                    |t, n| {
                        for i in 0..n {
                            actor.cast((t as u64 * n + i) % KEYS, state(i));
                        }
                    },
                    || actor.sync(),
                )
            })
        });
    }
    g.finish();
}

/// One thread owning a map, answering over a bounded flume mailbox: the plain actor.
struct Actor {
    tx: flume::Sender<Msg>,
}

enum Msg {
    Put(u64, AgentState),
    Sync(flume::Sender<()>),
}

impl Actor {
    fn start() -> Self {
        let (tx, rx) = flume::bounded::<Msg>(4096);
        std::thread::spawn(move || {
            let mut map = hashbrown::HashMap::new();
            for msg in rx.iter() {
                match msg {
                    Msg::Put(k, v) => {
                        map.insert(k, v);
                    }
                    Msg::Sync(reply) => {
                        let _ = reply.send(());
                    }
                }
            }
            black_box(map.len());
        });
        Self { tx }
    }

    fn cast(&self, k: u64, v: AgentState) {
        self.tx.send(Msg::Put(k, v)).expect("actor running");
    }

    fn sync(&self) {
        let (tx, rx) = flume::bounded(1);
        self.tx.send(Msg::Sync(tx)).expect("actor running");
        rx.recv().expect("actor answers");
    }
}

/// Creates one English auction per writer thread; returns their ids.
fn auctions(engine: &Engine, writers: usize) -> Vec<AuctionId> {
    (0..writers)
        .map(|w| {
            engine
                .auctions()
                .create(AuctionSpec {
                    kind: AuctionKind::English {
                        reserve: 1,
                        min_increment: 1,
                    },
                    seller: 1_000_000 + w as u64,
                    category: 0,
                    deadline: None,
                    buy_now: None,
                })
                .wait()
                .expect("running")
                .expect("valid spec")
        })
        .collect()
}

fn bids_ff(c: &mut Criterion) {
    bids(c, "bids_ff", false);
}

fn bids_acked(c: &mut Criterion) {
    bids(c, "bids_acked", true);
}

/// Bids on one English auction per writer, amounts rising so every bid is accepted:
/// fire-and-forget (`bid_nowait`, clock stopped after `flush`) or acknowledged
/// (`bid(..).wait()`, one at a time).
fn bids(c: &mut Criterion, group_name: &str, acked: bool) {
    let mut g = group(c, group_name);
    for writers in [1usize, 2] {
        g.throughput(Throughput::Elements(writers as u64));
        for (name, engine) in [("mabeam", sharded()), ("centralized", centralized())] {
            let next = AtomicU64::new(1);
            g.bench_with_input(BenchmarkId::new(name, writers), &writers, |b, &w| {
                b.iter_custom(|iters| {
                    // Fresh auctions each sample; amounts rise within a sample.
                    let ids = auctions(&engine, w);
                    let base = next.fetch_add(iters + 1, Ordering::Relaxed);
                    timed(
                        w,
                        iters,
                        |t, n| {
                            let auctions = engine.auctions();
                            for i in 0..n {
                                let bid = Bid {
                                    bidder: t as u64,
                                    amount: base + i,
                                    bundle: 0,
                                };
                                if acked {
                                    let receipt = auctions.bid(ids[t], bid).wait();
                                    black_box(receipt.expect("running").expect("accepted"));
                                } else {
                                    auctions.bid_nowait(ids[t], bid).expect("accepted");
                                }
                            }
                        },
                        || engine.flush().expect("running"),
                    )
                })
            });
        }
    }
    g.finish();
}

/// Nanosecond samples of round trips, for percentiles.
fn percentile(samples: &mut [u64], p: f64) -> u64 {
    samples.sort_unstable();
    let i = ((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1));
    samples.get(i).copied().unwrap_or(0)
}

/// Most round-trip samples kept per client and sample, and in all (bounds on memory).
const MAX_SAMPLES: u64 = 200_000;
const MAX_KEPT: usize = 2_000_000;

fn acked(c: &mut Criterion) {
    let mut g = group(c, "acked");
    for clients in [1usize, 2] {
        g.throughput(Throughput::Elements(clients as u64));
        for (name, engine) in [("mabeam", sharded()), ("centralized", centralized())] {
            let mut all = Vec::new();
            g.bench_with_input(BenchmarkId::new(name, clients), &clients, |b, &k| {
                b.iter_custom(|iters| {
                    let samples = parking_lot::Mutex::new(Vec::new());
                    let d = timed(
                        k,
                        iters,
                        |t, n| {
                            let agents = engine.agents();
                            let mut mine = Vec::with_capacity(n.min(MAX_SAMPLES) as usize);
                            for i in 0..n {
                                let began = Instant::now();
                                let snap: AgentSnapshot = agents
                                    .update_acked((t as u64 * n + i) % KEYS, state(i))
                                    .wait()
                                    .expect("running")
                                    .expect("accepted");
                                if i < MAX_SAMPLES {
                                    mine.push(began.elapsed().as_nanos() as u64);
                                }
                                black_box(snap);
                            }
                            samples.lock().extend(mine);
                        },
                        || {},
                    );
                    let room = MAX_KEPT.saturating_sub(all.len());
                    all.extend(samples.into_inner().into_iter().take(room));
                    d
                });
            });
            // Every round trip of the warm-up and the measurement, up to MAX_KEPT.
            if !all.is_empty() {
                let p50 = percentile(&mut all, 0.50);
                let p99 = percentile(&mut all, 0.99);
                eprintln!(
                    "acked/{name}/{clients}: round trip p50 {:.2} µs, p99 {:.2} µs ({} samples)",
                    p50 as f64 / 1e3,
                    p99 as f64 / 1e3,
                    all.len()
                );
            }
        }
    }
    g.finish();
}

fn acked_under_flood(c: &mut Criterion) {
    let mut g = group(c, "acked_under_flood");
    g.throughput(Throughput::Elements(1));
    let spec = AuctionSpec {
        kind: AuctionKind::English {
            reserve: 1,
            min_increment: 1,
        },
        seller: 1,
        category: 0,
        deadline: None,
        buy_now: None,
    };
    let contenders: [(&str, Config); 5] = [
        (
            "delay_20us",
            Config::default().with_write_delay(Duration::from_micros(20)),
        ),
        ("delay_50us_default", Config::default()),
        (
            "delay_200us",
            Config::default().with_write_delay(Duration::from_micros(200)),
        ),
        (
            "mailbox_size_only",
            Config::default().with_write_delay(Duration::MAX),
        ),
        ("centralized", Config::centralized()),
    ];
    for (name, mut config) in contenders {
        config.economics.auctions.max_open = 1 << 22;
        let engine = Engine::start(config).expect("valid config");
        let stop = AtomicU64::new(0);
        let flooded = AtomicU64::new(0);
        let mut all = Vec::new();
        let started = Instant::now();
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let (engine, stop, flooded) = (&engine, &stop, &flooded);
                s.spawn(move || {
                    let agents = engine.agents();
                    let mut n = 0u64;
                    while stop.load(Ordering::Relaxed) == 0 {
                        agents
                            .update(t * KEYS + n % KEYS, state(n))
                            .expect("waits for room; never refused here");
                        n += 1;
                    }
                    flooded.fetch_add(n, Ordering::Relaxed);
                });
            }
            g.bench_function(BenchmarkId::new(name, "probe"), |b| {
                b.iter_custom(|iters| {
                    let auctions = engine.auctions();
                    let began = Instant::now();
                    for i in 0..iters {
                        let one = Instant::now();
                        let id = auctions.create(spec).wait().expect("running");
                        black_box(id.expect("created"));
                        if i < MAX_SAMPLES && all.len() < MAX_KEPT {
                            all.push(one.elapsed().as_nanos() as u64);
                        }
                    }
                    began.elapsed()
                });
            });
            stop.store(1, Ordering::Relaxed);
        });
        let secs = started.elapsed().as_secs_f64();
        if !all.is_empty() {
            let p50 = percentile(&mut all, 0.50);
            let p99 = percentile(&mut all, 0.99);
            eprintln!(
                "acked_under_flood/{name}: create round trip p50 {:.2} µs, p99 {:.2} µs ({} samples); flood {:.2} M writes/s",
                p50 as f64 / 1e3,
                p99 as f64 / 1e3,
                all.len(),
                flooded.load(Ordering::Relaxed) as f64 / secs / 1e6,
            );
        }
    }
    g.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(
        benches,
        super::writes_ff,
        super::bids_ff,
        super::bids_acked,
        super::acked,
        super::acked_under_flood
    );
}
criterion_main!(group::benches);
