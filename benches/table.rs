//! A shard's batch of writes into a large snapshot table, with and without
//! `TableWriter::prefetch` issued for the whole batch first (what the shard loop does
//! before it applies a batch).
//!
//! - `overwrite_256/{plain, prefetched}`: 256 overwrites of keys drawn at random from
//!   60,000 live keys of an 11-word table (the auction status record) sized for 200,000
//!   (262,144 slots, 29 MB: far beyond the caches, as a shard's status table of that
//!   many auctions is). Throughput = writes.
//!
//! - `create_evict_256/prefetched`: the same table with a window of 60,000 live keys
//!   sliding through it: per batch, 256 new keys inserted (each one's slot prefetched
//!   first, as the shard does for creates) and the 256 oldest removed, as an auction
//!   status table sees creates and evictions. Throughput = keys created (each with one
//!   removal).
//! - `get/{5000_in_8192, 60000_in_131072}`: one reader's lookups of live keys drawn at
//!   random, in the same 11-word table: 5,000 keys in 8,192 slots (one of the two shards'
//!   agent tables of `benches/reads.rs`, about 0.9 MB) and 60,000 in 131,072 (about
//!   15 MB). `get_absent/…`: the same tables, keys that are not there. Throughput =
//!   lookups.
//!
//! The table's writer, or its one reader, is the only thread; the bench measures cache
//! misses and probe work, not any sharing.
//!
//! Run: `cargo bench --bench table` (`-- table/get` for the reads only).

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
    // A status table's life: each batch creates 256 new keys and evicts the 256 oldest, a
    // window of 60,000 live keys sliding through a table sized for 200,000.
    let (mut writer, _reader) = snapshot_table::<W>(capacity_for(200_000));
    for key in 0..LIVE {
        writer.insert(key, [key; W]);
    }
    let mut next = LIVE;
    group.bench_function(BenchmarkId::new("create_evict_256", "prefetched"), |b| {
        b.iter(|| {
            for key in next..next + BATCH as u64 {
                writer.prefetch(key);
            }
            for key in next..next + BATCH as u64 {
                writer.insert(key, [key; W]);
                assert!(writer.remove(key - LIVE), "the oldest key is live");
            }
            next += BATCH as u64;
        })
    });
    group.finish();
}

fn reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("table");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (live, capacity) in [(5_000u64, 8_192usize), (60_000, 131_072)] {
        let (mut writer, reader) = snapshot_table::<W>(capacity);
        for key in 0..live {
            writer.insert(key, [key; W]);
        }
        assert_eq!(
            writer.capacity(),
            capacity,
            "{live} keys fit without a rebuild"
        );
        let size = format!("{live}_in_{capacity}");
        let order: Vec<u64> = keys(BATCH * 4096).iter().map(|k| k % live).collect();
        for absent in [false, true] {
            let mut batches = order.chunks(BATCH).cycle();
            let name = if absent { "get_absent" } else { "get" };
            // Absent keys: the same spread, shifted past every live key.
            let offset = if absent { live } else { 0 };
            group.bench_function(BenchmarkId::new(name, &size), |b| {
                b.iter(|| {
                    let batch = batches
                        .next()
                        .expect("a cycle of non-empty chunks never ends");
                    let mut found = 0u64;
                    for &key in batch {
                        found += u64::from(reader.get(key + offset).is_some());
                    }
                    assert_eq!(found, if absent { 0 } else { BATCH as u64 });
                    found
                })
            });
        }
        drop(writer);
    }
    group.finish();
}

/// The criterion group, in a private module: the macro's `pub fn` has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::table, super::reads);
}
criterion_main!(group::benches);
