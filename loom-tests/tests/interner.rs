//! Loom model of `mabeam_shards::interner::Interner`'s naming: a reader that finds a
//! name reads it whole (the slot's seqlock rejects a read that races the naming), and two
//! threads naming at once get distinct ids, each name once.
//!
//! Weakening checks (done for real, then restored):
//! - Without the re-scan under the lock in `Interner::acquire` (a namer that missed the
//!   name lock-free names a new slot at once), `the_same_name_is_interned_once` fails:
//!   both threads miss "plan" in their lock-free scans and name two slots for it.
//! - With the `Release` of `high.store(id + 1, ..)` made `Relaxed`, the reader model
//!   still passes, and rightly: a reader reads every slot through its seqlock, so it
//!   sees a slot named or empty, never torn, and a reader that knows the id was
//!   returned (the `published` flag) is ordered after the naming anyway. The `Release`
//!   stays so that a reader that sees `high` also finds the name it counts; nothing
//!   unsound hangs on it.
//!
//! The reader model spawns the reader and names on the main thread: a spawned thread
//! whose first access is a load ends loom's exploration early (a known loom issue), and
//! `model` fails any model for which loom explores only one execution.
//!
//! Freeing and reuse are modelled in `interner_free.rs`.
#![cfg(mabeam_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::interner::Interner;

#[test]
fn a_reader_sees_published_names_whole() {
    model(3, || {
        let interner = Arc::new(Interner::new(2));
        let published = Arc::new(AtomicUsize::new(0));
        let reader = {
            let interner = Arc::clone(&interner);
            let published = Arc::clone(&published);
            thread::spawn(move || {
                let id_returned = published.load(Ordering::Acquire) == 1;
                if let Some(name) = interner.name(0) {
                    assert_eq!(name, "plan");
                }
                match interner.get("plan") {
                    Some(id) => assert_eq!(id, 0),
                    None => assert!(!id_returned, "a returned id is found by name"),
                }
            })
        };
        assert_eq!(interner.acquire("plan"), Ok(0));
        published.store(1, Ordering::Release);
        reader.join().expect("reader panicked");
        assert_eq!(interner.name(0).as_deref(), Some("plan"));
    });
}

#[test]
fn racing_namers_get_distinct_ids_once() {
    model(3, || {
        let interner = Arc::new(Interner::new(2));
        let other = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || interner.acquire("bid"))
        };
        let mine = interner.acquire("plan").expect("capacity 2");
        let theirs = other.join().expect("namer panicked").expect("capacity 2");
        assert_ne!(mine, theirs);
        assert_eq!(interner.name(mine).as_deref(), Some("plan"));
        assert_eq!(interner.name(theirs).as_deref(), Some("bid"));
        assert_eq!(interner.len(), 2);
    });
}

#[test]
fn the_same_name_is_interned_once() {
    model(3, || {
        let interner = Arc::new(Interner::new(2));
        let other = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || interner.acquire("plan"))
        };
        let mine = interner.acquire("plan");
        assert_eq!(other.join().expect("namer panicked"), mine);
        assert_eq!(interner.len(), 1);
        assert_eq!(interner.references(0), 2);
    });
}
