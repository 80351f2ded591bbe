//! The original's economics scenario, shared by `benches/economics.rs` (sharded against
//! centralized) and `benches/telemetry_cost.rs` (telemetry on against off): 50 client
//! threads each pipeline 100 auction creates, then read market state and cached pricing
//! (15,000 operations an iteration). Included by both with `#[path]`; not a bench itself.
#![allow(dead_code)] // each bench uses part of it

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mabeam::auctions::{AuctionId, AuctionKind, AuctionSpec};
use mabeam::market::MarketUpdate;
use mabeam::pricing::PricingInput;
use mabeam::{Config, Engine};

pub const CLIENTS: usize = 50;
pub const AUCTIONS_PER_CLIENT: usize = 100;
pub const CATEGORIES: u64 = 16;
/// Open auctions a shard may hold: each iteration's 5,000 (closed again after it).
pub const MAX_OPEN: usize = 1 << 16;

pub fn inputs() -> Vec<PricingInput> {
    (0..CATEGORIES)
        .map(|c| PricingInput {
            recent_prices: (0..20).map(|i| 100.0 + (c * 3 + i) as f64).collect(),
            demand: 10.0 + c as f64,
            supply: 5.0,
            base_price: 50.0,
        })
        .collect()
}

pub fn prepare(mut config: Config) -> Engine {
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

/// How a client sends its creates.
#[derive(Clone, Copy)]
pub enum Creates {
    /// `auctions().create(spec)`: one message each, all sent, then every ticket waited.
    OneByOne,
    /// Through a [`mabeam::BatchWriter`]: buffered per shard, flushed, then waited.
    Batched,
}

/// Runs the scenario once; returns its wall time and the auctions it created.
pub fn scenario(
    engine: &Engine,
    inputs: &[PricingInput],
    creates: Creates,
) -> (Duration, Vec<AuctionId>) {
    let start = Barrier::new(CLIENTS + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let start = &start;
                s.spawn(move || {
                    let auctions = engine.auctions();
                    let mut writer = engine.batch_writer(AUCTIONS_PER_CLIENT);
                    let spec = |i: usize| AuctionSpec {
                        kind: AuctionKind::English {
                            reserve: 100,
                            min_increment: 1,
                        },
                        seller: client as u64,
                        category: ((client + i) as u64 % CATEGORIES) as u32,
                        deadline: None,
                        buy_now: None,
                    };
                    start.wait();
                    let tickets: Vec<_> = match creates {
                        Creates::OneByOne => (0..AUCTIONS_PER_CLIENT)
                            .map(|i| auctions.create(spec(i)))
                            .collect(),
                        Creates::Batched => {
                            let t = (0..AUCTIONS_PER_CLIENT)
                                .map(|i| writer.create_auction(spec(i)))
                                .collect();
                            writer.flush().expect("running");
                            t
                        }
                    };
                    let ids: Vec<AuctionId> = tickets
                        .into_iter()
                        .map(|t| t.wait().expect("engine running").expect("valid spec"))
                        .collect();
                    for i in 0..AUCTIONS_PER_CLIENT {
                        let key = (client + i) as u64 % CATEGORIES;
                        black_box(engine.market().state(key).expect("running"));
                        let input = &inputs[key as usize];
                        black_box(engine.pricing().cached(input).expect("running"));
                    }
                    ids
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        let ids: Vec<Vec<AuctionId>> = handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect();
        (t.elapsed(), ids.concat())
    })
}

/// Closes `ids` (not timed), so that retention evicts them and a long run's memory stays
/// flat instead of every sample paying for fresh pages.
pub fn close_all(engine: &Engine, ids: &[AuctionId]) {
    let tickets: Vec<_> = ids.iter().map(|&id| engine.auctions().close(id)).collect();
    for t in tickets {
        let _outcome = t.wait().expect("engine running");
    }
}
