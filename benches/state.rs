//! The cost of an export and a restore for a sizeable state (`mabeam::state`).
//!
//! The state: 100,000 registry entries, 10,000 auctions (every tenth closed with a sale,
//! so its market is fed), 10,000 agents. `state/{op}/{shape}`:
//!
//! - `export`: `engine.export()` on the running engine (pause, freeze, quiesce,
//!   snapshot of every shard, merge and sort);
//! - `to_bytes` / `from_bytes`: the state file's encoding and decoding (checksum
//!   included);
//! - `restore`: `Engine::start_from` into the shape, then `shutdown` (the threads'
//!   start and stop are part of it; `start` alone on an empty state is measured as
//!   `restore_empty` for comparison).
//!
//! Run: `cargo bench --bench state`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, Criterion};
use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionKind, AuctionSpec, Bid};
use mabeam::registry::{Lease, MetadataSpec};
use mabeam::state::EngineState;
use mabeam::{Config, Engine};

const ENTRIES: usize = 100_000;
const AUCTIONS: usize = 10_000;
const AGENTS: u64 = 10_000;

fn config(shards: usize) -> Config {
    Config::default()
        .with_shards(shards)
        .with_pin_threads(false)
}

/// An engine holding the state, and the leases that keep its registry entries
/// registered (released when the caller drops them, after the bench).
fn loaded(shards: usize) -> (Engine, Vec<Lease>) {
    let engine = Engine::start(config(shards)).expect("valid config");
    let spec = MetadataSpec::with_capabilities(&["bench", "state"]);
    let leases = (0..ENTRIES)
        .map(|i| {
            engine
                .registry()
                .register(&format!("agent-{i}"), i as u64, &spec)
                .expect("registered")
        })
        .collect();
    for id in 0..AGENTS {
        engine
            .agents()
            .update(id, AgentState::default())
            .expect("running");
    }
    let tickets: Vec<_> = (0..AUCTIONS)
        .map(|i| {
            engine.auctions().create(AuctionSpec {
                kind: AuctionKind::English {
                    reserve: 1,
                    min_increment: 1,
                },
                seller: i as u64,
                category: (i % 64) as u32,
                deadline: None,
                buy_now: None,
            })
        })
        .collect();
    for (i, t) in tickets.into_iter().enumerate() {
        let id = t.wait().expect("accepted").expect("created");
        if i % 10 == 0 {
            let a = engine.auctions();
            a.bid(
                id,
                Bid {
                    bidder: 1,
                    amount: 5,
                    bundle: 0,
                },
            )
            .wait()
            .expect("accepted")
            .expect("bid");
            a.close(id).wait().expect("accepted").expect("closed");
        }
    }
    engine.flush().expect("running");
    (engine, leases)
}

fn state(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    let (engine, _leases) = loaded(1);
    let state = engine.export().expect("exported");
    assert_eq!(state.registry.len(), ENTRIES);
    g.bench_function("export/sharded_1", |b| {
        b.iter(|| black_box(engine.export().expect("exported")))
    });
    let bytes = state.to_bytes();
    println!("state file: {} bytes", bytes.len());
    g.bench_function("to_bytes", |b| b.iter(|| black_box(state.to_bytes())));
    g.bench_function("from_bytes", |b| {
        b.iter(|| black_box(EngineState::from_bytes(&bytes).expect("valid")))
    });
    for (name, config) in [
        ("sharded_2", config(2)),
        ("centralized", Config::centralized().with_pin_threads(false)),
    ] {
        g.bench_function(format!("restore/{name}"), |b| {
            b.iter(|| {
                let restored = Engine::start_from(config.clone(), &state).expect("fits");
                black_box(restored.shutdown())
            })
        });
        g.bench_function(format!("restore_empty/{name}"), |b| {
            b.iter(|| {
                let restored =
                    Engine::start_from(config.clone(), &EngineState::default()).expect("fits");
                black_box(restored.shutdown())
            })
        });
    }
    g.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::state);
}
criterion_main!(group::benches);
