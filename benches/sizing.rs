//! Sizing: is `Config::default()` ever the slow choice for a synchronous host?
//!
//! - `cycles/{shards_1, shards_2, default}`: one host thread runs auction cycles —
//!   create (64 creates kept in flight), then, for the oldest create, a fire-and-forget
//!   bid and a close that it waits for — on engines with 1 shard, 2 shards and the
//!   default count (`Config::default()`, pinned). Throughput = cycles.
//!
//! The default `mabeam load` scenario is the other workload the default must suit; its
//! shard counts are compared with `cargo run --release -- load --preset sharded
//! --shards N` (see `BENCHMARKS.md`).
//!
//! Run: `cargo bench --bench sizing`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use mabeam::auctions::{AuctionError, AuctionId, AuctionKind, AuctionSpec, Bid};
use mabeam::{Config, Engine, Ticket};

/// Creates kept in flight.
const IN_FLIGHT: usize = 64;

fn spec(seller: u64) -> AuctionSpec {
    AuctionSpec {
        kind: AuctionKind::English {
            reserve: 10,
            min_increment: 1,
        },
        seller,
        category: (seller % 16) as u32,
        deadline: None,
        buy_now: None,
    }
}

/// Runs `cycles` create → bid → close cycles on `engine` from this thread.
fn run_cycles(engine: &Engine, cycles: u64) -> Duration {
    let auctions = engine.auctions();
    let mut pending: VecDeque<Ticket<Result<AuctionId, AuctionError>>> = (0..IN_FLIGHT as u64)
        .map(|i| auctions.create(spec(i)))
        .collect();
    let began = Instant::now();
    for i in 0..cycles {
        let id = pending
            .pop_front()
            .expect("IN_FLIGHT creates are pending")
            .wait()
            .expect("running")
            .expect("created");
        auctions
            .bid_nowait(
                id,
                Bid {
                    bidder: 1 << 40,
                    amount: 10,
                    bundle: 0,
                },
            )
            .expect("accepted");
        black_box(auctions.close(id).wait().expect("running").expect("closed"));
        pending.push_back(auctions.create(spec(i)));
    }
    let elapsed = began.elapsed();
    for t in pending {
        let _ = t.wait();
    }
    elapsed
}

fn cycles(c: &mut Criterion) {
    let mut g = c.benchmark_group("cycles");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let contenders = [
        ("shards_1", Config::default().with_shards(1)),
        ("shards_2", Config::default().with_shards(2)),
        ("default", Config::default()),
    ];
    for (name, config) in contenders {
        let shards = config.shard_count();
        let engine = Engine::start(config).expect("valid config");
        g.bench_function(BenchmarkId::new(name, shards), |b| {
            b.iter_custom(|iters| run_cycles(&engine, iters))
        });
    }
    g.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::cycles);
}
criterion_main!(group::benches);
