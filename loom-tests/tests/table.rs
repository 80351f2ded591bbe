//! Loom models of `mabeam_shards::table`: lookups racing the writer's growth, removal,
//! compaction and the reuse of a retired array, a lookup steered by control bytes that
//! change under it, and decoders racing an overwrite.
//!
//! What a reader may assert (linearizability): a key present for the whole lookup is
//! found, with its record; a key absent for the whole lookup is not; any record returned
//! belongs to the key asked and is whole; and a removal that happens-before the lookup
//! (the reader saw the writer's `Release` flag set after it) is never undone.
//!
//! Memory: every array stays allocated until the shared part drops, and loom checks the
//! accesses to the shared `UnsafeCell` (the list of owned arrays) and to the `Arc`. The
//! models run the growth (allocate, publish, retire), same-size rebuild and reuse paths
//! (a reader may be probing the very array being reused) under concurrency.
//!
//! Weakening checks (done for real, then restored):
//! - Removing the writer's `fence(Release)` in `seqlock::write_with` (every slot write of
//!   the table goes through it): loom fails `lookups_race_growth` ("assertion `left ==
//!   right` failed" on the reader's lookup of B, whose record was read without the words
//!   the writer stored, then a causality violation on the owned-arrays `UnsafeCell`).
//! - Removing the array-epoch protocol on reuse (no odd epoch stored when a retired array
//!   is refilled, none stored when it is retired): loom fails
//!   `lookups_race_remove_compaction_and_reuse` with "key 1 present throughout": a reader
//!   that pinned the array before its reuse accepts a probe that saw the slots cleared.
//! - Accepting a slot read without its second sequence check (`try_read_with` returning
//!   the payload whenever the first load was even): loom fails
//!   `a_decoder_racing_an_overwrite_returns_one_whole_record` (a decoder's half-old,
//!   half-new result returned), and the stress test `decoders_never_return_a_torn_record`
//!   in `mabeam-shards` fails on every run ("torn record decoded: 2984 2985 2985").
//! - Letting a removal show an EMPTY control byte for a moment before its TOMBSTONE (the
//!   byte stored EMPTY, then the slot, then the byte again): loom fails
//!   `a_lookup_passes_a_tombstone_refilled_by_a_key_with_its_tag` ("key … present
//!   throughout": the reader stopped at the transient EMPTY in front of A), and the stress
//!   test `lookups_among_keys_with_one_tag_never_confuse_them` in `mabeam-shards` fails on
//!   every run (3 of 3, "stable key 4154"). Ending a probe at a TOMBSTONE byte fails the
//!   same model.
//! - Weakening the control bytes' `Release` stores and `Acquire` loads to `Relaxed` does
//!   NOT fail, by design: a result comes only from the slot's own seqlock read, and a
//!   refilled array's bytes are cleared after its odd epoch and fence, as its slots are.
//! - Weakening only the array publication (`current.store` and the publishing
//!   `epoch.store` to `Relaxed`, together) does NOT fail: the slot seqlocks' release
//!   fences precede those stores, so a reader's `fence(Acquire)` after reading them still
//!   rejects stale slots. Those `Release`/`Acquire` orderings are kept anyway: they are what
//!   makes the array's plain (non-atomic) fields, which loom does not track, visible.
#![cfg(mabeam_loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::table::{home_and_tag, snapshot_table, TableReader};

const A: u64 = 1;
const B: u64 = 2;

/// A record that names its key.
fn rec(key: u64) -> [u64; 1] {
    [key * 100 + 7]
}

/// `key` is present for the whole lookup.
fn assert_present(r: &TableReader<1>, key: u64) {
    assert_eq!(r.get(key), Some(rec(key)), "key {key} present throughout");
}

/// `key` is being removed: a lookup finds it whole or not at all, and not at all once the
/// removal happened-before it (`gone`: the reader saw the writer's flag set after it).
fn assert_not_undone(r: &TableReader<1>, key: u64, gone: bool) {
    if let Some(found) = r.get(key) {
        assert!(
            !gone,
            "key {key} found after its removal happened-before the lookup"
        );
        assert_eq!(found, rec(key));
    }
}

/// Growth from 2 slots to 4: A (present throughout) is always found while the writer
/// allocates the new array, moves A into it, publishes it and retires the old one; B is
/// either absent or whole.
#[test]
fn lookups_race_growth() {
    model(3, || {
        let (mut w, r) = snapshot_table::<1>(2);
        w.insert(A, rec(A));
        assert_eq!(w.capacity(), 2);
        let writer = thread::spawn(move || {
            w.insert(B, rec(B)); // 2 live keys > 2/2: grows to 4
            assert_eq!(w.capacity(), 4);
            assert_eq!(w.allocated_arrays(), 2);
            w
        });
        assert_present(&r, A);
        if let Some(found) = r.get(B) {
            assert_eq!(found, rec(B));
        }
        let w = writer.join().expect("writer panicked");
        assert_present(&r, B);
        drop(w);
        // The reader keeps the arrays alive after the writer is gone.
        assert_present(&r, A);
    });
}

/// Remove, then two compactions: the first allocates a second 4-slot array and retires the
/// first, the second reuses the first (epoch set odd, slots cleared and refilled) while the
/// reader may still be probing it. A is always found; B, removed before the flag is set,
/// is never found by a lookup that saw the flag.
#[test]
fn lookups_race_remove_compaction_and_reuse() {
    model(2, || {
        let (mut w, r) = snapshot_table::<1>(4);
        w.insert(A, rec(A));
        w.insert(B, rec(B));
        let removed = Arc::new(AtomicBool::new(false));
        let writer = {
            let removed = Arc::clone(&removed);
            thread::spawn(move || {
                assert!(w.remove(B));
                removed.store(true, Ordering::Release);
                w.compact(); // allocates array #2, retires #1
                w.compact(); // reuses #1 while a reader may be inside it
                assert_eq!(w.allocated_arrays(), 2);
            })
        };
        assert_present(&r, A);
        let gone = removed.load(Ordering::Acquire);
        assert_not_undone(&r, B, gone);
        assert_present(&r, A);
        writer.join().expect("writer panicked");
        assert_eq!(r.get(B), None);
        assert_eq!(r.len(), 1);
    });
}

/// A scan racing a growth reports A exactly once and B at most once, each record whole.
#[test]
fn scan_races_growth() {
    model(2, || {
        let (mut w, r) = snapshot_table::<1>(2);
        w.insert(A, rec(A));
        let writer = thread::spawn(move || {
            w.insert(B, rec(B));
            w
        });
        let mut out = Vec::new();
        r.scan_into(&mut out);
        assert!(out.contains(&(A, rec(A))), "A present throughout: {out:?}");
        assert!(
            out.len() == 1 || out == [(A, rec(A)), (B, rec(B))],
            "{out:?}"
        );
        let _w = writer.join().expect("writer panicked");
    });
}

/// `get_with`'s decoder runs inside the slot's seqlock read, so it may see a record being
/// overwritten, half old and half new. What it decodes from such a mix must never be
/// returned: every result is decoded from one whole record (both words equal), whichever
/// order the decoder loads the words in.
#[test]
fn a_decoder_racing_an_overwrite_returns_one_whole_record() {
    model(2, || {
        let (mut w, r) = snapshot_table::<2>(4);
        w.insert(A, [1, 1]);
        let writer = thread::spawn(move || {
            w.insert(A, [2, 2]);
            w
        });
        let forward = r.get_with(A, |rec| (rec.word(0), rec.word(1)));
        let backward = r.get_with(A, |rec| {
            let second = rec.word(1);
            (rec.word(0), second)
        });
        let _w = writer.join().expect("writer panicked");
        assert!(matches!(forward, Some((1, 1) | (2, 2))), "{forward:?}");
        assert!(matches!(backward, Some((1, 1) | (2, 2))), "{backward:?}");
    });
}

/// Three keys that start their probe in slot 0 of a 4-slot array, the last two with the
/// same control byte: `[b, a, c]`.
fn colliding_keys() -> [u64; 3] {
    let b = (1u64..)
        .find(|&k| home_and_tag(k, 4).0 == 0)
        .expect("a quarter of all keys start in slot 0");
    let (a, c) = (0u64..)
        .filter(|&k| k != b && home_and_tag(k, 4).0 == 0)
        .find_map(|a| {
            let tag = home_and_tag(a, 4).1;
            (a + 1..a + 100_000)
                .find(|&c| c != b && home_and_tag(c, 4) == (0, tag))
                .map(|c| (a, c))
        })
        .expect("keys sharing a home slot and a tag exist among the first few thousand");
    [b, a, c]
}

/// The control bytes steer a probe; the slot decides. B sits in slot 0 and A behind it in
/// slot 1 (both start in slot 0). The writer removes B (slot 0 becomes a TOMBSTONE: a
/// live chain passes through it) and inserts C into that slot, with the same control
/// byte as A. A reader of A must pass slot 0 whatever it sees there, mid-change or not (a
/// tombstone, C's tag read against a slot that still says TOMBSTONE, C itself), and find
/// A; C is absent or whole; B, once its removal happened-before the lookup, is gone.
#[test]
fn a_lookup_passes_a_tombstone_refilled_by_a_key_with_its_tag() {
    let [b, a, c] = colliding_keys();
    model(3, move || {
        let (mut w, r) = snapshot_table::<1>(4);
        w.insert(b, rec(b));
        w.insert(a, rec(a));
        let removed = Arc::new(AtomicBool::new(false));
        let writer = {
            let removed = Arc::clone(&removed);
            thread::spawn(move || {
                assert!(w.remove(b));
                removed.store(true, Ordering::Release);
                w.insert(c, rec(c));
                assert_eq!((w.capacity(), w.allocated_arrays()), (4, 1), "no rebuild");
                w
            })
        };
        assert_present(&r, a);
        let gone = removed.load(Ordering::Acquire);
        if let Some(found) = r.get(c) {
            assert_eq!(found, rec(c));
        }
        assert_not_undone(&r, b, gone);
        assert_present(&r, a);
        let _w = writer.join().expect("writer panicked");
        assert_present(&r, c);
        assert_eq!(r.get(b), None);
    });
}
