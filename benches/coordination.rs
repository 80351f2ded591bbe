//! Barriers and events.
//!
//! - `barrier/{mabeam,std}/{2,16}`: rounds per second of a reusable barrier with 2 and
//!   16 parties, each party a thread doing `iters` waits; mabeam's engine barrier
//!   against `std::sync::Barrier`, same threads, same rounds. Throughput = rounds.
//! - `publish/{1,10,100}`: a host publishes 10,000 events to one topic with 1, 10 and
//!   100 matching subscribers (queues large enough that nothing lags); timed until the
//!   engine has delivered them all (`flush`). Throughput = events published.
//! - `unrelated/{0,100,1000}`: the same with one matching subscriber and 0, 100 and 1,000
//!   subscriptions to unrelated topics: matching must not grow with them.
//!
//! Run: `cargo bench --bench coordination`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use mabeam::{Config, Engine};

const WAIT: Duration = Duration::from_secs(60);
const EVENTS: u64 = 10_000;

fn engine(shards: usize) -> Engine {
    Engine::start(
        Config::default()
            .with_shards(shards)
            .with_pin_threads(false),
    )
    .expect("valid config")
}

/// Runs `parties` threads through `rounds` rounds of `wait`; returns the wall time.
fn rounds<W: Fn() + Send + Sync>(parties: usize, rounds: u64, wait: W) -> Duration {
    let start = std::sync::Barrier::new(parties + 1);
    std::thread::scope(|s| {
        for _ in 0..parties {
            let (start, wait) = (&start, &wait);
            s.spawn(move || {
                start.wait();
                for _ in 0..rounds {
                    wait();
                }
            });
        }
        let t = Instant::now();
        start.wait();
        // Scope end joins every party.
        t
    })
    .elapsed()
}

fn barriers(c: &mut Criterion) {
    let engine = engine(1);
    let mut group = c.benchmark_group("barrier");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    for parties in [2usize, 16] {
        let barrier = engine
            .barriers()
            .create(parties as u64, parties)
            .expect("new barrier");
        group.bench_with_input(BenchmarkId::new("mabeam", parties), &parties, |b, &p| {
            b.iter_custom(|iters| {
                rounds(p, iters, || {
                    barrier.wait(WAIT).expect("barrier round");
                })
            })
        });
        let std_barrier = Arc::new(std::sync::Barrier::new(parties));
        group.bench_with_input(BenchmarkId::new("std", parties), &parties, |b, &p| {
            b.iter_custom(|iters| {
                rounds(p, iters, || {
                    std_barrier.wait();
                })
            })
        });
    }
    group.finish();
}

/// Publishes `EVENTS` events to `bench.topic` and waits until they are delivered.
fn publish_all(engine: &Engine) -> Duration {
    let events = engine.events();
    let t = Instant::now();
    for i in 0..EVENTS {
        events
            .publish("bench.topic", &i.to_le_bytes(), Some(i))
            .expect("valid topic");
    }
    engine.flush().expect("engine running");
    t.elapsed()
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(EVENTS));
    for subscribers in [1usize, 10, 100] {
        let engine = engine(2);
        let subs: Vec<_> = (0..subscribers)
            .map(|_| {
                engine
                    .events()
                    .subscribe("bench.*", EVENTS as usize)
                    .expect("subscribe")
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += publish_all(&engine);
                        for s in &subs {
                            assert_eq!(s.lagged(), 0, "queues hold a whole round");
                            while s.try_recv().is_some() {}
                        }
                    }
                    total
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("unrelated");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(EVENTS));
    for unrelated in [0usize, 100, 1000] {
        let engine = engine(2);
        let matching = engine
            .events()
            .subscribe("bench.topic", EVENTS as usize)
            .expect("subscribe");
        let _others: Vec<_> = (0..unrelated)
            .map(|i| {
                engine
                    .events()
                    .subscribe(&format!("other{i}.*"), 16)
                    .expect("subscribe")
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(unrelated),
            &unrelated,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += publish_all(&engine);
                        while matching.try_recv().is_some() {}
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::barriers, super::publish);
}
criterion_main!(group::benches);
