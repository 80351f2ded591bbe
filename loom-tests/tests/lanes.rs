//! Loom models of shard-to-shard lanes ([`Incoming`]) and shutdown's termination
//! detection ([`Termination`]): a lane message is never lost and always wakes its
//! receiver, and the shutdown never stops the shards while a message that a last host
//! command produced is still in flight.
//!
//! The two shards in `shutdown_waits_for_a_forward_in_flight` run the runtime's shard
//! loop reduced to what termination depends on: lanes first, then host messages; count
//! what a batch forwards as produced *before* pushing it and what it applied from lanes
//! as consumed *after*; report host-done once the mailbox is closed and drained; sleep on
//! the doorbell with the loop's work check; stop only when told.
//!
//! # Weakening checks
//!
//! Each was done once by hand, run model by model, then undone:
//!
//! - `Incoming::push_from`: did not ring the receiver's bell after pushing.
//!   `a_push_wakes_a_sleeping_receiver` failed with
//!   `deadlock; threads = [(Id(0), Blocked), (Id(1), Blocked)]`.
//! - `Termination::is_quiet`: checked only that every shard is host-done, not that
//!   nothing is in flight. `shutdown_waits_for_a_forward_in_flight` failed "shard 1
//!   applied the forward before it stopped": the coordinator stopped shard 1 while shard
//!   0's forward was still in its lane.
//! - Dropped the "closed and not yet host-done" term from a shard's work check.
//!   `shutdown_waits_for_a_forward_in_flight` failed with a deadlock of all three
//!   threads.
//! - Counted a batch's forwards produced only after pushing them (and after counting the
//!   batch done): this model still passed, because a shard reports host-done only on
//!   a later turn of its loop than the one that pushed, so the gap is never observed.
//!   The runtime keeps the safe order (produced before the push) all the same.
#![cfg(mabeam_loom)]

use std::collections::VecDeque;

use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::doorbell::Doorbell;
use mabeam_shards::lane::Incoming;
use mabeam_shards::mailbox::{Class, Limits, Mailbox, Wait};
use mabeam_shards::termination::Termination;

/// A push from one shard wakes the other, asleep or about to be.
#[test]
fn a_push_wakes_a_sleeping_receiver() {
    model(3, || {
        let bell = Arc::new(Doorbell::new());
        let incoming = Arc::new(Incoming::<u32>::new(2, 1, bell.clone()));
        let (i2, b2) = (incoming.clone(), bell.clone());
        let receiver = thread::spawn(move || {
            let mut got = Vec::new();
            while got.is_empty() {
                if i2.pop_into(0, usize::MAX, |m| got.push(m)) == 0 {
                    b2.sleep(|| i2.pending() > 0, None);
                }
                loom::thread::yield_now();
            }
            got
        });
        let mut out = VecDeque::from(vec![3]);
        assert_eq!(incoming.push_from(1, &mut out), 1);
        assert_eq!(receiver.join().expect("no panic"), vec![3]);
    });
}

/// A full lane keeps the rest with the sender; nothing is lost once the receiver drains.
#[test]
fn a_full_lane_loses_nothing() {
    model(3, || {
        let bell = Arc::new(Doorbell::new());
        let incoming = Arc::new(Incoming::<u32>::new(2, 1, bell.clone()));
        let i2 = incoming.clone();
        let receiver = thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 2 {
                i2.pop_into(0, usize::MAX, |m| got.push(m));
                loom::thread::yield_now();
            }
            got
        });
        let mut out = VecDeque::from(vec![1, 2]);
        while !out.is_empty() {
            incoming.push_from(1, &mut out);
            loom::thread::yield_now();
        }
        assert_eq!(
            receiver.join().expect("no panic"),
            vec![1, 2],
            "FIFO, all there"
        );
    });
}

/// One shard of the model: its mailbox, its lanes and its bell.
struct Shard {
    mailbox: Mailbox<u32>,
    incoming: Incoming<u32>,
    bell: Arc<Doorbell>,
}

fn shard() -> Shard {
    let bell = Arc::new(Doorbell::new());
    Shard {
        mailbox: Mailbox::new(
            Limits {
                capacity: 2,
                backlog: 2,
            },
            bell.clone(),
        ),
        incoming: Incoming::new(2, 2, bell.clone()),
        bell,
    }
}

/// Shard `me`'s loop: a host message `m` forwards `m + 100` to the other shard; a lane
/// message is recorded as applied. Returns what it applied from its lanes.
fn run(me: usize, shards: &[Shard; 2], term: &Termination) -> Vec<u32> {
    let other = 1 - me;
    let own = &shards[me];
    let mut applied = Vec::new();
    let mut host_done = false;
    loop {
        let mut lane_msgs = 0;
        lane_msgs += own.incoming.pop_into(0, usize::MAX, |m| applied.push(m)) as u64;
        let mut outbox = VecDeque::new();
        let mut weight = 0;
        if !host_done {
            while let Some(m) = own.mailbox.pop() {
                outbox.push_back(m + 100);
                weight += 1;
            }
        }
        if lane_msgs > 0 || weight > 0 {
            term.produced(outbox.len() as u64);
            while !outbox.is_empty() {
                shards[other].incoming.push_from(me, &mut outbox);
                loom::thread::yield_now();
            }
            term.consumed(lane_msgs);
            own.mailbox.release(weight);
            continue;
        }
        if !host_done && own.mailbox.is_drained() {
            host_done = true;
            term.host_done();
            continue;
        }
        if host_done && term.is_stopped() {
            return applied;
        }
        own.bell.sleep(
            || {
                own.mailbox.reserved() > 0
                    || own.incoming.pending() > 0
                    || (!host_done && own.mailbox.is_closed())
                    || term.is_stopped()
            },
            None,
        );
        loom::thread::yield_now();
    }
}

/// Shard 0 holds one accepted host command whose application forwards to shard 1; the
/// shutdown closes both mailboxes, waits for quiet and stops. Shard 1 must have applied
/// the forward before it stopped.
#[test]
fn shutdown_waits_for_a_forward_in_flight() {
    model(2, || {
        let shards = Arc::new([shard(), shard()]);
        let term = Arc::new(Termination::new(2));
        shards[0]
            .mailbox
            .send(1, 1, Class::Write, Wait::No)
            .expect("room");
        let workers: Vec<_> = (0..2)
            .map(|me| {
                let (shards, term) = (shards.clone(), term.clone());
                thread::spawn(move || run(me, &shards, &term))
            })
            .collect();
        for s in shards.iter() {
            s.mailbox.close();
        }
        term.wait_quiet(|| {});
        term.stop();
        for s in shards.iter() {
            s.bell.ring();
        }
        let mut applied: Vec<Vec<u32>> = workers
            .into_iter()
            .map(|w| w.join().expect("no panic"))
            .collect();
        assert!(applied[0].is_empty());
        assert_eq!(
            applied.remove(1),
            vec![101],
            "shard 1 applied the forward before it stopped"
        );
    });
}
