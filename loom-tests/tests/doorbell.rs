//! Loom models of [`Doorbell`]: a consumer sleeping on a bell is never left asleep with
//! work pending, whether one producer rings or two race each other (and the consumer's
//! next sleep).
//!
//! # Weakening checks
//!
//! Each was done once by hand, run model by model, then undone:
//!
//! - `Doorbell::sleep`: removed the `SeqCst` fence between the SLEEPING store and the
//!   work check. Both models failed with `deadlock`: the consumer read no work while the
//!   producer read AWAKE (the store-buffer case).
//! - `Doorbell::ring`: removed the `SeqCst` fence before the load of the state. Both
//!   models failed with `deadlock` the same way.
//! - `Doorbell::ring`: replaced the CAS by `swap(AWAKE)`. `two_producers_race_the_sleeps`
//!   failed with `deadlock` (at preemption bound 3; it passes at 2). That is a limit of
//!   loom rather than a bug of the swap form: loom orders stores by vector clocks, so a
//!   producer's swap that read the consumer's AWAKE can stay unordered with the
//!   consumer's next SLEEPING store, and the second producer then reads the swap's AWAKE
//!   after its fence — which the C++ model forbids (a read-modify-write reads the value
//!   just before its own write in the total modification order). A failed CAS writes
//!   nothing, which keeps the protocol inside what loom orders exactly, and costs the
//!   same.
#![cfg(mabeam_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::doorbell::Doorbell;

/// Sleeps on `bell` until `work` reaches `target`, reading it once per check.
fn sleep_until(bell: &Doorbell, work: &AtomicUsize, target: usize) {
    loop {
        let seen = work.load(Ordering::SeqCst);
        if seen >= target {
            return;
        }
        bell.sleep(|| work.load(Ordering::SeqCst) > seen, None);
    }
}

#[test]
fn one_producer_wakes_the_consumer() {
    model(3, || {
        let bell = Arc::new(Doorbell::new());
        let work = Arc::new(AtomicUsize::new(0));
        let (b, w) = (bell.clone(), work.clone());
        let producer = thread::spawn(move || {
            w.fetch_add(1, Ordering::Relaxed);
            b.ring();
        });
        sleep_until(&bell, &work, 1);
        producer.join().expect("no panic");
    });
}

#[test]
fn two_producers_race_the_sleeps() {
    model(3, || {
        let bell = Arc::new(Doorbell::new());
        let work = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (b, w) = (bell.clone(), work.clone());
                thread::spawn(move || {
                    w.fetch_add(1, Ordering::Relaxed);
                    b.ring();
                })
            })
            .collect();
        sleep_until(&bell, &work, 2);
        for p in producers {
            p.join().expect("no panic");
        }
    });
}
