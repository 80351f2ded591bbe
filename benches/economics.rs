//! The original's economics benchmark: 50 client threads each create 100 auctions, then
//! read market state and cached pricing — on the sharded engine (`Config::default()`)
//! against the centralized one (`Config::centralized()`, one shard answering every call
//! synchronously: the GenServer shape), through the same API.
//!
//! One iteration is the whole scenario: 50 × (100 creates + 100 market reads + 100
//! cached-pricing reads) = 15,000 operations, timed end to end (every create's ticket
//! has resolved). Each client pipelines its creates (sends all 100, then waits for the
//! tickets), as the original's asynchronous `create_auction` did. Market keys and the
//! pricing cache are filled before timing so the reads hit.
//!
//! Run: `cargo bench --bench economics`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion, Throughput};
use mabeam::auctions::{AuctionKind, AuctionSpec};
use mabeam::market::MarketUpdate;
use mabeam::pricing::PricingInput;
use mabeam::{Config, Engine};

const CLIENTS: usize = 50;
const AUCTIONS_PER_CLIENT: usize = 100;
const CATEGORIES: u64 = 16;
/// Open auctions a shard may hold: every sample starts a fresh engine, and a sample's
/// iterations leave their auctions open, so this must exceed iterations × 5,000.
const MAX_OPEN: usize = 1 << 22;

fn inputs() -> Vec<PricingInput> {
    (0..CATEGORIES)
        .map(|c| PricingInput {
            recent_prices: (0..20).map(|i| 100.0 + (c * 3 + i) as f64).collect(),
            demand: 10.0 + c as f64,
            supply: 5.0,
            base_price: 50.0,
        })
        .collect()
}

fn prepare(mut config: Config) -> Engine {
    config.economics.auctions.max_open = MAX_OPEN;
    let engine = Engine::start(config).expect("valid config");
    for key in 0..CATEGORIES {
        engine
            .market()
            .update_acked(MarketUpdate {
                key,
                price: 100 + key,
                volume: 1,
            })
            .wait()
            .expect("engine running")
            .expect("valid update");
    }
    for input in inputs() {
        engine
            .pricing()
            .calculate(&input)
            .wait()
            .expect("engine running")
            .expect("valid input");
    }
    engine
}

/// Runs the scenario once; returns its wall time.
fn scenario(engine: &Engine, inputs: &[PricingInput]) -> Duration {
    let start = Barrier::new(CLIENTS + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let start = &start;
                s.spawn(move || {
                    let auctions = engine.auctions();
                    start.wait();
                    let tickets: Vec<_> = (0..AUCTIONS_PER_CLIENT)
                        .map(|i| {
                            auctions.create(AuctionSpec {
                                kind: AuctionKind::English {
                                    reserve: 100,
                                    min_increment: 1,
                                },
                                seller: client as u64,
                                category: ((client + i) as u64 % CATEGORIES) as u32,
                                deadline: None,
                                buy_now: None,
                            })
                        })
                        .collect();
                    for t in tickets {
                        black_box(t.wait().expect("engine running").expect("valid spec"));
                    }
                    for i in 0..AUCTIONS_PER_CLIENT {
                        let key = (client + i) as u64 % CATEGORIES;
                        black_box(engine.market().state(key).expect("running"));
                        let input = &inputs[key as usize];
                        black_box(engine.pricing().cached(input).expect("running"));
                    }
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        for h in handles {
            h.join().expect("client thread");
        }
        t.elapsed()
    })
}

fn economics(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("economics_scenario");
    group.throughput(Throughput::Elements(
        (CLIENTS * AUCTIONS_PER_CLIENT * 3) as u64,
    ));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, config) in [
        ("sharded", Config::default as fn() -> Config),
        ("centralized", Config::centralized),
    ] {
        group.bench_function(name, |b| {
            // A fresh engine per sample (not timed), so auctions do not pile up.
            b.iter_custom(|iters| {
                let engine = prepare(config());
                let elapsed = (0..iters).map(|_| scenario(&engine, &inputs)).sum();
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
