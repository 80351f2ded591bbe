//! Loom models of [`BarrierCell`]: no lost wakeup (2 and 3 threads), reuse across
//! generations with the barrier's happens-before edge, a timeout's rollback racing the
//! last arrival, shutdown waking a parked waiter, two wakers (the last arrival and
//! shutdown) racing for one waiter, and more threads than parties.
//!
//! Most models use `Backoff::PARK` so waiters go straight to registering and parking:
//! that is where a lost wakeup would hide. Two more run the polling phases in front of it
//! (`three_threads_mixed_backoffs_no_lost_wakeup`, a yield, a spin and a park;
//! `reuse_across_two_generations_with_a_yielding_waiter`), where a poll races the
//! leader's bump and the next generation's arrivals. Loom cannot run `park_timeout`, so the timeout model
//! drives the exact rollback step the timeout path uses (`try_cancel_arrival`) between
//! the two halves of `wait` (`arrive` / `await_arrival`).
//!
//! # Weakening checks
//!
//! Each was done once by hand on a copy of `barrier.rs`, run model by model, then undone:
//!
//! - `two_threads_no_lost_wakeup` (and every other model that parks a waiter): removed
//!   the waiter's `fence(SeqCst)` between registering and re-checking the generation.
//!   Loom found the store-buffer interleaving (the waiter re-reads the old generation, the
//!   leader's scan reads the slot as FREE) and failed with
//!   `deadlock; threads = [(Id(0), Blocked), (Id(1), Terminated)]`.
//! - `three_threads_no_lost_wakeup`: removed the leader's `fence(SeqCst)` after its
//!   completion bump. Loom failed with
//!   `deadlock; threads = [(Id(0), Blocked), (Id(1), Blocked), (Id(2), Terminated)]`
//!   (the two- and reuse/rollback models failed the same way; the shutdown model does not
//!   involve that fence and passed).
//! - `reuse_across_two_generations`: made the arrival's `fetch_add` `Relaxed`. Loom failed
//!   the assertion "the other party's write before the barrier is visible after it": the
//!   leader read a waiter's pre-barrier store as stale. (Making only the leader's
//!   completion `fetch_add` `Relaxed` passes, correctly: every operation on the word is a
//!   read-modify-write, so the completion continues the release sequences headed by the
//!   arrivals; it stays `AcqRel` so that it publishes on its own.)
//! - `rollback_races_last_arrival`: (a) dropped the `count < parties` condition of the
//!   rollback, checking only the generation. Loom found the other party arriving as leader
//!   *before* the rollback, which then "succeeded" anyway: a bogus second release, caught
//!   by "exactly one leader". (b) Split the check from the decrement (load, check, then a
//!   separate `fetch_sub`). Loom found the leader completing in between; the decrement
//!   borrowed from the generation bits and the rolled-back thread's next arrival spun
//!   forever ("Model exceeded maximum number of branches").
//! - `shutdown_wakes_a_parked_waiter`: removed `shutdown`'s `fence(SeqCst)` between the
//!   flag store and the registry scan (the store itself stayed `SeqCst`). Loom failed with
//!   `deadlock; threads = [(Id(0), Blocked), (Id(1), Blocked)]`: the waiter re-checked the
//!   flag too early and parked after the scan missed its slot.
//! - `the_last_arrival_and_shutdown_race_to_wake_a_waiter`: removed `shutdown`'s fence as
//!   above. Loom failed it with a deadlock (the waiter parked after shutdown's scan).
//!   It passes with the leader's fence removed: with one waiter, either waker suffices.
//! - `reuse_across_two_generations_with_a_yielding_waiter`: made the yield phase's poll
//!   of the generation a `Relaxed` load (returning `Ok` when it moved). Loom failed the
//!   assertion "the other party's write before the barrier is visible after it"; every
//!   other model passed (their waiters never return from the yield phase), which is why
//!   this one exists.
//! - `more_threads_than_parties_make_whole_generations`: removed the leader's fence after
//!   its completion bump. Loom failed it with a deadlock (a waiter of the first
//!   generation parked after the leader's scan).
#![cfg(mabeam_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::barrier::{Arrival, Backoff, BarrierCell, BarrierWaitError};

fn cell(parties: usize) -> Arc<BarrierCell> {
    Arc::new(BarrierCell::new(parties).expect("valid party count"))
}

#[test]
fn two_threads_no_lost_wakeup() {
    model(3, || {
        let barrier = cell(2);
        let other = Arc::clone(&barrier);
        let helper = thread::spawn(move || other.wait(Backoff::PARK));
        let mine = barrier.wait(Backoff::PARK).expect("never shut down");
        let theirs = helper.join().expect("no panic").expect("never shut down");
        assert_eq!((mine.generation, theirs.generation), (0, 0));
        assert!(mine.is_leader ^ theirs.is_leader, "exactly one leader");
        assert_eq!(barrier.generation(), 1);
        assert_eq!(barrier.waiting(), 0);
    });
}

#[test]
fn three_threads_no_lost_wakeup() {
    three_threads_no_lost_wakeup_with([Backoff::PARK; 3]);
}

/// Three parties that each wait differently: one yields once before parking, one spins
/// once, one parks at once. A poll in either phase may see the bump (and return without
/// registering) or miss it (and go on to register and park); the leader's scan must wake
/// whoever registered, and nobody may return before the generation completes.
#[test]
fn three_threads_mixed_backoffs_no_lost_wakeup() {
    three_threads_no_lost_wakeup_with([Backoff::yields(1), Backoff::spin(1), Backoff::PARK]);
}

fn three_threads_no_lost_wakeup_with(backoffs: [Backoff; 3]) {
    model(2, move || {
        let barrier = cell(3);
        let helpers: Vec<_> = (0..2)
            .map(|i| {
                let other = Arc::clone(&barrier);
                thread::spawn(move || other.wait(backoffs[i + 1]))
            })
            .collect();
        let mut arrivals = vec![barrier.wait(backoffs[0]).expect("never shut down")];
        for helper in helpers {
            arrivals.push(helper.join().expect("no panic").expect("never shut down"));
        }
        assert!(arrivals.iter().all(|a| a.generation == 0));
        assert_eq!(arrivals.iter().filter(|a| a.is_leader).count(), 1);
        assert_eq!(barrier.generation(), 1);
    });
}

#[test]
fn reuse_across_two_generations() {
    reuse_across_two_generations_with(Backoff::PARK, Backoff::PARK);
}

/// The same reuse with the yield phase: one party polls through a yield before it parks,
/// so a poll of the generation races the leader's bump and the other party's next
/// arrival (which must not look like a completion to it).
#[test]
fn reuse_across_two_generations_with_a_yielding_waiter() {
    reuse_across_two_generations_with(Backoff::yields(1), Backoff::PARK);
}

fn reuse_across_two_generations_with(first: Backoff, second: Backoff) {
    model(2, move || {
        let barrier = cell(2);
        let data = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let party = move |me: usize, barrier: Arc<BarrierCell>, data: Arc<[AtomicUsize; 2]>| {
            let backoff = if me == 0 { first } else { second };
            let mut arrivals = Vec::new();
            for round in 1..=2 {
                data[me].store(round, Ordering::Relaxed);
                arrivals.push(barrier.wait(backoff).expect("never shut down"));
                assert!(
                    data[1 - me].load(Ordering::Relaxed) >= round,
                    "the other party's write before the barrier is visible after it"
                );
            }
            arrivals
        };
        let helper = {
            let (barrier, data) = (Arc::clone(&barrier), Arc::clone(&data));
            thread::spawn(move || party(1, barrier, data))
        };
        let mine = party(0, Arc::clone(&barrier), data);
        let theirs = helper.join().expect("no panic");
        for round in 0..2 {
            assert_eq!(mine[round].generation, round as u64);
            assert_eq!(theirs[round].generation, round as u64);
            assert!(mine[round].is_leader ^ theirs[round].is_leader);
        }
        assert_eq!(barrier.generation(), 2);
    });
}

#[test]
fn rollback_races_last_arrival() {
    model(3, || {
        let barrier = cell(2);
        // This thread arrives, then "times out" while the other party arrives.
        let arrival = barrier.arrive().expect("not shut down");
        assert_eq!(
            arrival,
            Arrival {
                generation: 0,
                is_leader: false
            }
        );
        let other = Arc::clone(&barrier);
        let helper = thread::spawn(move || other.wait(Backoff::PARK));
        let mine = if barrier.try_cancel_arrival(arrival.generation) {
            // Clean rollback: the other party's arrival alone cannot have completed the
            // generation, so it is (or will be) waiting; a fresh wait completes it.
            assert_eq!(
                barrier.generation(),
                0,
                "a successful rollback leaves the generation uncompleted"
            );
            barrier.wait(Backoff::PARK).expect("never shut down")
        } else {
            // The other party arrived first and led: the arrival stands.
            barrier
                .await_arrival(arrival, Backoff::PARK)
                .expect("never shut down")
        };
        let theirs = helper.join().expect("no panic").expect("never shut down");
        assert_eq!((mine.generation, theirs.generation), (0, 0));
        assert!(mine.is_leader ^ theirs.is_leader, "exactly one leader");
        assert_eq!(barrier.generation(), 1, "exactly one generation completed");
        assert_eq!(barrier.waiting(), 0, "no arrival left counted");
    });
}

#[test]
fn shutdown_wakes_a_parked_waiter() {
    model(3, || {
        let barrier = cell(2);
        let other = Arc::clone(&barrier);
        let waiter = thread::spawn(move || other.wait(Backoff::PARK));
        barrier.shutdown();
        assert_eq!(
            waiter.join().expect("no panic"),
            Err(BarrierWaitError::ShutDown)
        );
        assert_eq!(barrier.wait(Backoff::PARK), Err(BarrierWaitError::ShutDown));
    });
}

/// Two wakers at once: the last arrival (the leader, releasing the generation) and
/// `shutdown` race to wake the same parked waiter. Neither may lose the wake-up or wake a
/// slot twice into a wrong state, and the waiter gets `Ok` only if the leader completed
/// its generation.
#[test]
fn the_last_arrival_and_shutdown_race_to_wake_a_waiter() {
    model(2, || {
        let barrier = cell(2);
        let first = {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || barrier.wait(Backoff::PARK))
        };
        let second = {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || barrier.wait(Backoff::PARK))
        };
        barrier.shutdown();
        let a = first.join().expect("no panic");
        let b = second.join().expect("no panic");
        for r in [&a, &b] {
            assert!(
                matches!(r, Ok(_) | Err(BarrierWaitError::ShutDown)),
                "{r:?}"
            );
        }
        // Either thread may be the one that parks. A waiter (non-leader) returns `Ok` only
        // for a completed generation, and only the last arrival, the leader, completes
        // one. The converse does not hold, and loom finds it: the waiter sees the
        // shutdown flag before the completion and returns `ShutDown`, then the last
        // arrival (which read the flag before it was set) completes the generation with
        // the waiter's arrival counted. That is the documented rule ("every waiter whose
        // generation has not completed returns ShutDown", as the waiter observed it).
        let oks: Vec<Arrival> = [a, b].into_iter().filter_map(Result::ok).collect();
        let leaders = oks.iter().filter(|x| x.is_leader).count();
        assert!(leaders <= 1, "one leader per generation");
        if oks.iter().any(|x| !x.is_leader) {
            assert_eq!(
                leaders, 1,
                "a waiter was released by a generation nobody completed"
            );
        }
        if leaders == 1 {
            assert_eq!(barrier.generation(), 1, "the leader completed generation 0");
        }
        assert_eq!(barrier.wait(Backoff::PARK), Err(BarrierWaitError::ShutDown));
    });
}

/// More threads than parties: four arrivals at a 2-party barrier make exactly two
/// generations, each with one leader, and no arrival is left waiting or counted.
#[test]
fn more_threads_than_parties_make_whole_generations() {
    model(1, || {
        let barrier = cell(2);
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || barrier.wait(Backoff::PARK))
            })
            .collect();
        let mut arrivals = vec![barrier.wait(Backoff::PARK).expect("no shutdown")];
        for t in threads {
            arrivals.push(t.join().expect("no panic").expect("no shutdown"));
        }
        for generation in 0..2 {
            let of_it: Vec<&Arrival> = arrivals
                .iter()
                .filter(|a| a.generation == generation)
                .collect();
            assert_eq!(of_it.len(), 2, "generation {generation} has both parties");
            assert_eq!(
                of_it.iter().filter(|a| a.is_leader).count(),
                1,
                "generation {generation} has one leader"
            );
        }
        assert_eq!(barrier.generation(), 2);
        assert_eq!(barrier.waiting(), 0);
    });
}
