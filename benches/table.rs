//! A shard's batch of writes into a large snapshot table, with and without
//! `TableWriter::prefetch` issued for the whole batch first (what the shard loop does
//! before it applies a batch).
//!
//! - `overwrite_256/{plain, prefetched}`: 256 overwrites of keys drawn at random from
//!   60,000 live keys of an 11-word table (the auction status record) sized for 200,000
//!   (262,144 slots, 29 MB: far beyond the caches, as a shard's status table of that
//!   many auctions is). Throughput = writes.
//!
//! The table's writer is the only thread; the bench measures the writer's cache misses,
//! not any sharing.
//!
//! Run: `cargo bench --bench table`.

use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use mabeam_shards::table::{capacity_for, snapshot_table};

/// Words of the auction status record.
const W: usize = 11;
/// Live keys.
const LIVE: u64 = 60_000;
/// Writes per batch: the shard's default `batch_size`.
const BATCH: usize = 256;

/// A xorshift sequence of keys in `0..LIVE` (deterministic, no dependency).
fn keys(n: usize) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % LIVE
        })
        .collect()
}

fn table(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let order = keys(BATCH * 4096);
    for prefetched in [false, true] {
        let (mut writer, _reader) = snapshot_table::<W>(capacity_for(200_000));
        for key in 0..LIVE {
            writer.insert(key, [key; W]);
        }
        let name = if prefetched { "prefetched" } else { "plain" };
        let mut batches = order.chunks(BATCH).cycle();
        group.bench_function(BenchmarkId::new("overwrite_256", name), |b| {
            b.iter(|| {
                let batch = batches
                    .next()
                    .expect("a cycle of non-empty chunks never ends");
                if prefetched {
                    for &key in batch {
                        writer.prefetch(key);
                    }
                }
                for &key in batch {
                    writer.insert(key, [key ^ 1; W]);
                }
            })
        });
    }
    group.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::table);
}
criterion_main!(group::benches);
