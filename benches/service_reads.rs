//! Every service's read, sharded against centralized, in the same run.
//!
//! `service_reads/{read}/{engine}/{readers}`: `readers` threads (1 and 2) each make
//! `iters` reads over 4,096 keys that all exist:
//!
//! - `registry_lookup`: `registry().lookup(name)`;
//! - `agent_get`: `agents().get(id)`;
//! - `auction_status`: `auctions().status(id)`;
//! - `market_state`: `market().state(key)`;
//! - `registry_handle`: `registry().handle(name)`, the registry read of the handle alone;
//!
//! on `Config::default()` (snapshot reads, no message) and on `Config::centralized()`
//! (the GenServer shape: every read a synchronous round trip to the one shard).
//!
//! Baselines for the registry, in the same run, same readers, same name sequence:
//!
//! - `registry_lookup/dashmap`: a `DashMap<String, Entry>` with hashbrown's default
//!   hasher (foldhash, as in `reads`'s `dashmap` row) holding the same 4,096 names, each
//!   with the `Entry` the registry returns for it, read as a user would:
//!   `map.get(name).map(|e| *e)` (the entry copied out of the guard);
//! - `registry_lookup/dashmap_siphash`: the same with DashMap's default hasher (std
//!   `RandomState`, SipHash-1-3), what a user gets without choosing;
//! - `registry_handle/dashmap`: the foldhash map read for the handle alone,
//!   `map.get(name).map(|e| e.handle)`.
//!
//! No writer runs here: `reads` measures the read path under a busy writer against DashMap,
//! RwLock and an actor; this bench shows what the snapshots buy over the round trip for
//! each service. Throughput = reads. Run: `cargo bench --bench service_reads`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionId, AuctionKind, AuctionSpec};
use mabeam::market::MarketUpdate;
use mabeam::registry::{Entry, Lease, MetadataSpec};
use mabeam::{Config, Engine};

const KEYS: usize = 4096;

/// One service read of key number `i`.
type Read<'a> = Box<dyn Fn(usize) + Sync + 'a>;

/// An engine with `KEYS` registry entries, agents, auctions and market keys.
struct Loaded {
    engine: Engine,
    names: Vec<String>,
    auctions: Vec<AuctionId>,
    _leases: Vec<Lease>,
}

fn load(config: Config) -> Loaded {
    let engine = Engine::start(config).expect("valid config");
    let names: Vec<String> = (0..KEYS).map(|i| format!("agent-{i}")).collect();
    let leases = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            engine
                .registry()
                .register(n, i as u64, &MetadataSpec::with_capabilities(&["bench"]))
                .expect("registered")
        })
        .collect();
    let tickets: Vec<_> = (0..KEYS)
        .map(|i| {
            engine.auctions().create(AuctionSpec {
                kind: AuctionKind::English {
                    reserve: 1,
                    min_increment: 1,
                },
                seller: i as u64,
                category: (i % 16) as u32,
                deadline: None,
                buy_now: None,
            })
        })
        .collect();
    let auctions = tickets
        .into_iter()
        .map(|t| t.wait().expect("running").expect("valid spec"))
        .collect();
    for i in 0..KEYS as u64 {
        engine
            .agents()
            .update(i, AgentState::default())
            .expect("accepted");
        engine
            .market()
            .update(MarketUpdate {
                key: i,
                price: 100,
                volume: 1,
            })
            .expect("accepted");
    }
    engine.flush().expect("running");
    Loaded {
        engine,
        names,
        auctions,
        _leases: leases,
    }
}

/// `readers` threads each run `read(i)` for `i in 0..iters`, started together.
fn timed(readers: usize, iters: u64, read: &(dyn Fn(usize) + Sync)) -> Duration {
    let start = Barrier::new(readers + 1);
    let t = std::thread::scope(|s| {
        for r in 0..readers {
            let start = &start;
            s.spawn(move || {
                start.wait();
                for i in 0..iters as usize {
                    read((i * 7 + r * 13) % KEYS);
                }
            });
        }
        start.wait();
        Instant::now()
    });
    t.elapsed()
}

/// A `DashMap` keyed by name holding, for every name, the entry the registry returns.
fn registry_as_dashmap<S>(loaded: &Loaded, hasher: S) -> DashMap<String, Entry, S>
where
    S: std::hash::BuildHasher + Clone,
{
    let map = DashMap::with_hasher(hasher);
    for name in &loaded.names {
        let entry = loaded
            .engine
            .registry()
            .lookup(name)
            .expect("valid name")
            .expect("registered");
        map.insert(name.clone(), entry);
    }
    map
}

/// Runs `read` at 1 and 2 readers as `{read_name}/{engine_name}/{readers}`.
fn bench_read(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    read_name: &str,
    engine_name: &str,
    read: &(dyn Fn(usize) + Sync),
) {
    for readers in [1usize, 2] {
        g.throughput(Throughput::Elements(readers as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("{read_name}/{engine_name}"), readers),
            &readers,
            |b, &r| b.iter_custom(|iters| timed(r, iters, read)),
        );
    }
}

fn service_reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("service_reads");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    for (engine_name, config) in [
        ("sharded", Config::default as fn() -> Config),
        ("centralized", Config::centralized),
    ] {
        let loaded = load(config());
        let Loaded {
            engine,
            names,
            auctions,
            ..
        } = &loaded;
        let reads: [(&str, Read); 5] = [
            (
                "registry_lookup",
                Box::new(|i| {
                    black_box(engine.registry().lookup(&names[i]).expect("valid name"));
                }),
            ),
            (
                "agent_get",
                Box::new(|i| {
                    black_box(engine.agents().get(i as u64).expect("running"));
                }),
            ),
            (
                "auction_status",
                Box::new(|i| {
                    black_box(engine.auctions().status(auctions[i]).expect("running"));
                }),
            ),
            (
                "market_state",
                Box::new(|i| {
                    black_box(engine.market().state(i as u64).expect("running"));
                }),
            ),
            (
                "registry_handle",
                Box::new(|i| {
                    black_box(engine.registry().handle(&names[i]).expect("valid name"));
                }),
            ),
        ];
        for (read_name, read) in &reads {
            bench_read(&mut g, read_name, engine_name, read.as_ref());
            if *read_name == "registry_lookup" && engine_name == "sharded" {
                // The registry's baselines: the same entries by name in a DashMap, read
                // right after the registry's own rows, with the sharded engine running.
                let fast = registry_as_dashmap(&loaded, hashbrown::DefaultHashBuilder::default());
                let sip =
                    registry_as_dashmap(&loaded, std::collections::hash_map::RandomState::new());
                let read = |i: usize| {
                    black_box(fast.get(&names[i]).map(|e| *e));
                };
                bench_read(&mut g, "registry_lookup", "dashmap", &read);
                let read = |i: usize| {
                    black_box(sip.get(&names[i]).map(|e| *e));
                };
                bench_read(&mut g, "registry_lookup", "dashmap_siphash", &read);
            }
            if *read_name == "registry_handle" && engine_name == "sharded" {
                // Its baseline: the same read of the handle alone out of the DashMap.
                let fast = registry_as_dashmap(&loaded, hashbrown::DefaultHashBuilder::default());
                let read = |i: usize| {
                    black_box(fast.get(&names[i]).map(|e| e.handle));
                };
                bench_read(&mut g, "registry_handle", "dashmap", &read);
            }
        }
    }
    g.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::service_reads);
}
criterion_main!(group::benches);
