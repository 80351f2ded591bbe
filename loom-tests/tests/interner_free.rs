//! Loom model of freeing and reusing ids in `mabeam_shards::interner::Interner`: a
//! reference is only ever returned on a slot that holds the asked name, and holds it
//! until released; the last release frees the id exactly once, even when an acquire of
//! the same name races it; a reader racing a rename sees the old name, the new one or
//! none, never a mix.
//!
//! Weakening checks (each done for real, then restored):
//! - Without the check after the lock-free increment in `Interner::acquire` (return
//!   `found.id` as soon as `try_increment` succeeds), `a_held_id_keeps_its_name` fails:
//!   the other thread scans slot 0 holding "a", the main thread frees it and names it
//!   "b", the increment then succeeds on "b"'s count and the thread holds an id whose
//!   name is "b".
//! - With the freer's `compare_exchange(0, FREE)` replaced by a plain `store(FREE)` after
//!   its decrement, `a_revived_name_is_not_freed` fails: an acquire under the lock
//!   revives the slot (0 → 1) between the last release's decrement and its free, and the
//!   free then clears a name that is held.
#![cfg(mabeam_loom)]

use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::interner::Interner;

#[test]
fn a_held_id_keeps_its_name() {
    model(2, || {
        let interner = Arc::new(Interner::new(1));
        let a = interner.acquire("a").expect("empty interner");
        let other = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || {
                if let Ok(id) = interner.acquire("a") {
                    assert_eq!(interner.name(id).as_deref(), Some("a"), "held id renamed");
                    interner.release(id);
                }
            })
        };
        interner.release(a);
        if let Ok(b) = interner.acquire("b") {
            assert_eq!(interner.name(b).as_deref(), Some("b"));
            interner.release(b);
        }
        other.join().expect("acquirer panicked");
        assert_eq!(interner.len(), 0);
        assert_eq!(interner.references(0), 0);
    });
}

#[test]
fn a_revived_name_is_not_freed() {
    model(2, || {
        let interner = Arc::new(Interner::new(1));
        let a = interner.acquire("a").expect("empty interner");
        let other = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || interner.acquire("a").expect("one name, one slot"))
        };
        interner.release(a);
        let theirs = other.join().expect("acquirer panicked");
        assert_eq!(interner.name(theirs).as_deref(), Some("a"));
        assert_eq!(interner.references(theirs), 1);
        assert_eq!(interner.len(), 1);
        interner.release(theirs);
        assert_eq!(interner.len(), 0);
        assert_eq!(interner.acquire("b"), Ok(0), "the freed id is reused");
    });
}

#[test]
fn a_reader_racing_a_rename_sees_one_name() {
    model(2, || {
        let interner = Arc::new(Interner::new(1));
        let a = interner.acquire("a").expect("empty interner");
        let reader = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || {
                let seen = interner.name(0);
                assert!(
                    matches!(seen.as_deref(), None | Some("a") | Some("b")),
                    "torn name {seen:?}"
                );
            })
        };
        interner.release(a);
        assert_eq!(interner.acquire("b"), Ok(0));
        reader.join().expect("reader panicked");
    });
}
