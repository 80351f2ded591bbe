//! Loom models of `mabeam_shards::oneshot`: no lost wakeup, no lost or leaked value.
//!
//! A lost wakeup shows up as a loom deadlock (every thread blocked, the waiter parked
//! forever); a leaked value as a leaked loom `Arc`; a race on the value or the thread handle
//! as a causality violation on the cell's `UnsafeCell`s.
//!
//! Weakening check (done for real, then restored): with the waiter's registering CAS
//! EMPTY → WAITING in `Waiter::wait_until` weakened from `AcqRel`/`Acquire` to
//! `Relaxed`/`Relaxed`, loom fails four of the five models (all but the dropped-waiter one,
//! which never registers) with "Causality violation: Concurrent write accesses to
//! `UnsafeCell`": the completer takes the waiter's thread handle out of the cell without
//! the handle's write happening-before its read.
#![cfg(mabeam_loom)]

use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::oneshot::{oneshot, Canceled, WaitError};

/// The waiter registers and parks (spin 0) while the completer completes.
#[test]
fn complete_vs_parking_wait_never_loses_the_wakeup() {
    model(3, || {
        let (c, w) = oneshot::<u32>();
        let producer = thread::spawn(move || c.complete(7));
        assert_eq!(w.wait(0), Ok(7));
        producer.join().expect("producer panicked");
    });
}

/// Same with one spin first: the spin phase and the park phase both race the completion.
#[test]
fn complete_vs_spinning_wait() {
    model(3, || {
        let (c, w) = oneshot::<u32>();
        let producer = thread::spawn(move || c.complete(8));
        assert_eq!(w.wait(1), Ok(8));
        producer.join().expect("producer panicked");
    });
}

/// Dropping the completer without a value wakes a parked waiter with `Canceled`.
#[test]
fn dropped_completer_wakes_the_waiter_with_canceled() {
    model(3, || {
        let (c, w) = oneshot::<u32>();
        let producer = thread::spawn(move || drop(c));
        assert_eq!(w.wait(0), Err(Canceled));
        producer.join().expect("producer panicked");
    });
}

/// The waiter is dropped while the completer completes: the value (a loom `Arc`, whose
/// leak loom reports) is dropped exactly once, whoever goes last.
#[test]
fn complete_vs_dropped_waiter_neither_leaks_nor_races() {
    model(3, || {
        let (c, w) = oneshot::<Arc<u32>>();
        let value = Arc::new(5);
        let sent = Arc::clone(&value);
        let producer = thread::spawn(move || c.complete(sent));
        drop(w);
        producer.join().expect("producer panicked");
        assert_eq!(Arc::strong_count(&value), 1, "the sent value was dropped");
    });
}

/// A timed wait that gives up right after registering races the completion: the result is
/// either returned at once or kept, never lost, and the waiter is usable afterwards.
#[test]
fn timeout_vs_complete_never_loses_the_value() {
    model(3, || {
        let (c, mut w) = oneshot::<u32>();
        let producer = thread::spawn(move || c.complete(9));
        match w.wait_parks(0, 0) {
            Ok(v) => assert_eq!(v, 9),
            Err(WaitError::Timeout) => assert_eq!(w.wait(0), Ok(9)),
            Err(WaitError::Canceled) => panic!("never canceled"),
        }
        producer.join().expect("producer panicked");
    });
}
