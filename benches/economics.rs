//! The original's economics benchmark: 50 client threads each create 100 auctions, then
//! read market state and cached pricing — on the sharded engine (`Config::default()`)
//! against the centralized one (`Config::centralized()`, one shard answering every call
//! synchronously: the GenServer shape), through the same API.
//!
//! One iteration is the whole scenario: 50 × (100 creates + 100 market reads + 100
//! cached-pricing reads) = 15,000 operations, timed end to end (every create's ticket
//! has resolved). Each client pipelines its creates (sends all 100, then waits for the
//! tickets), as the original's asynchronous `create_auction` did. Market keys and the
//! pricing cache are filled before timing so the reads hit. `sharded_batched` is the
//! sharded engine with each client's creates sent through a `BatchWriter` (one message
//! per shard instead of one per create); the GenServer shape has no batching.
//!
//! Run: `cargo bench --bench economics`.

#[path = "common/economics_scenario.rs"]
mod economics_scenario;

use criterion::{criterion_main, Criterion, Throughput};
use economics_scenario::{close_all, inputs, prepare, scenario, Creates};
use economics_scenario::{AUCTIONS_PER_CLIENT, CLIENTS};
use mabeam::Config;
use std::time::Duration;

fn economics(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("economics_scenario");
    group.throughput(Throughput::Elements(
        (CLIENTS * AUCTIONS_PER_CLIENT * 3) as u64,
    ));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, config, creates) in [
        (
            "sharded",
            Config::default as fn() -> Config,
            Creates::OneByOne,
        ),
        ("centralized", Config::centralized, Creates::OneByOne),
        ("sharded_batched", Config::default, Creates::Batched),
    ] {
        group.bench_function(name, |b| {
            // A fresh engine per sample (not timed); each iteration's auctions are closed
            // untimed after it.
            b.iter_custom(|iters| {
                let engine = prepare(config());
                let elapsed = (0..iters)
                    .map(|_| {
                        let (elapsed, ids) = scenario(&engine, &inputs, creates);
                        close_all(&engine, &ids);
                        elapsed
                    })
                    .sum();
                drop(engine);
                elapsed
            })
        });
    }
    group.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::economics);
}
criterion_main!(group::benches);
