//! Every service's read, sharded against centralized, in the same run.
//!
//! `service_reads/{read}/{engine}/{readers}`: `readers` threads (1 and 2) each make
//! `iters` reads over 4,096 keys that all exist:
//!
//! - `registry_lookup`: `registry().lookup(name)`;
//! - `agent_get`: `agents().get(id)`;
//! - `auction_status`: `auctions().status(id)`;
//! - `market_state`: `market().state(key)`;
//!
//! on `Config::default()` (snapshot reads, no message) and on `Config::centralized()`
//! (the GenServer shape: every read a synchronous round trip to the one shard). No writer
//! runs here: `reads` measures the read path under a busy writer against DashMap,
//! RwLock and an actor; this bench shows what the snapshots buy over the round trip for
//! each service. Throughput = reads. Run: `cargo bench --bench service_reads`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionId, AuctionKind, AuctionSpec};
use mabeam::market::MarketUpdate;
use mabeam::registry::{Lease, MetadataSpec};
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
        let reads: [(&str, Read); 4] = [
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
        ];
        for (read_name, read) in &reads {
            for readers in [1usize, 2] {
                g.throughput(Throughput::Elements(readers as u64));
                g.bench_with_input(
                    BenchmarkId::new(format!("{read_name}/{engine_name}"), readers),
                    &readers,
                    |b, &r| b.iter_custom(|iters| timed(r, iters, read.as_ref())),
                );
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
