//! Loom model of `mabeam_shards::interner::Interner`: a reader that sees an id published
//! reads its whole string (loom's `UnsafeCell` tracking fails on any read that races the
//! slot's write), and two appenders racing on names get distinct ids, each name once.
//!
//! Weakening check (done for real, then restored): with the publishing
//! `len.store(id + 1, Release)` in `Interner::intern` made `Relaxed`, loom fails all three
//! models with "Causality violation: Concurrent read and write accesses" on a slot's
//! `UnsafeCell`: in the reader model the reader's `name(0)` reads slot 0 after seeing
//! `len == 1`, unordered with the appender's write; in the appender models the second
//! appender's lock-free `get` does the same.
//!
//! The reader model used to spawn the appender and read on the main thread. Loom then
//! explored exactly one execution (a spawned thread whose first access is a load ends
//! loom's exploration early, a known loom issue), so it passed under the weakening too.
//! It now spawns the reader and appends on the main thread, and `model` fails any model
//! for which loom explores only one execution.
#![cfg(mabeam_loom)]

use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::interner::Interner;

#[test]
fn a_reader_sees_published_names_whole() {
    model(3, || {
        let interner = Arc::new(Interner::new(2));
        let reader = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || {
                if let Some(name) = interner.name(0) {
                    assert_eq!(name, "plan");
                }
                if let Some(id) = interner.get("plan") {
                    assert_eq!(id, 0);
                }
            })
        };
        assert_eq!(interner.intern("plan"), Some(0));
        reader.join().expect("reader panicked");
        assert_eq!(interner.name(0), Some("plan"));
    });
}

#[test]
fn racing_appenders_get_distinct_ids_once() {
    model(3, || {
        let interner = Arc::new(Interner::new(2));
        let other = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || interner.intern("bid"))
        };
        let mine = interner.intern("plan").expect("capacity 2");
        let theirs = other
            .join()
            .expect("appender panicked")
            .expect("capacity 2");
        assert_ne!(mine, theirs);
        assert_eq!(interner.name(mine), Some("plan"));
        assert_eq!(interner.name(theirs), Some("bid"));
        assert_eq!(interner.len(), 2);
    });
}

#[test]
fn the_same_name_is_interned_once() {
    model(3, || {
        let interner = Arc::new(Interner::new(2));
        let other = {
            let interner = Arc::clone(&interner);
            thread::spawn(move || interner.intern("plan"))
        };
        let mine = interner.intern("plan");
        assert_eq!(other.join().expect("appender panicked"), mine);
        assert_eq!(interner.len(), 1);
    });
}
