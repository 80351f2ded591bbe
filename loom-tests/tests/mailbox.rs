//! Loom models of the send/shutdown protocol of [`Mailbox`] with its consumer's
//! [`Doorbell`]: a send that returned `Ok` is consumed before the consumer sees the
//! mailbox drained, a send refused `Closed` is never consumed, no wake-up is lost
//! (neither the consumer's nor a sender's waiting for room), and killing the consumer
//! discards exactly what was accepted.
//!
//! The consumer in these models runs the same steps as the runtime's shard loop, reduced
//! to the mailbox: pop, apply, release the weight, report drained once closed and empty,
//! otherwise sleep on the doorbell with the loop's work check (`reserved() > 0`, or
//! closed and not yet reported).
//!
//! # Weakening checks
//!
//! Each was done once by hand, run model by model, then undone:
//!
//! - Dropped the "closed" term from the consumer's work check (the defect the first
//!   version of the shard loop had, found there as a hung test).
//!   `close_races_a_sleeping_consumer` failed with
//!   `deadlock; threads = [(Id(0), Blocked), (Id(1), Blocked)]`: the close's ring came
//!   before the consumer announced its sleep, and nothing else woke it.
//! - `Mailbox::release`: skipped the notification. `a_waiting_sender_gets_in` failed
//!   with a deadlock: the sender waited on the condition variable forever.
//! - `Mailbox::reserve_or_wait`: removed the `SeqCst` fence between announcing the
//!   waiter and re-checking for room. `a_waiting_sender_gets_in` failed with a deadlock
//!   (the re-check read no room while the consumer's release read no waiter).
//! - `Mailbox::release`: woke one waiter (`notify_one`) instead of every waiter of the
//!   class. `one_release_lets_two_waiting_writers_in` and
//!   `one_release_lets_two_waiting_callers_in` failed with a deadlock: the release woke
//!   one of the two waiters, and the other slept with room left.
//! - `Mailbox::try_reserve`: ignored the CLOSED and DEAD flags.
//!   `accepted_is_consumed_refused_is_not` failed "an Ok send was consumed": the
//!   consumer saw the mailbox drained and stopped, and the late message stayed queued.
//!
//! (The doorbell's own fences are checked in `doorbell.rs`.)
#![cfg(mabeam_loom)]

use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::doorbell::Doorbell;
use mabeam_shards::mailbox::{Class, Limits, Mailbox, Refused, Wait};

fn mailbox(capacity: u64) -> (Arc<Mailbox<u32>>, Arc<Doorbell>) {
    let bell = Arc::new(Doorbell::new());
    let mailbox = Arc::new(Mailbox::new(
        Limits {
            capacity,
            backlog: capacity,
        },
        bell.clone(),
    ));
    (mailbox, bell)
}

/// The consumer: applies (collects) every message until the mailbox is drained.
fn consume(mailbox: &Mailbox<u32>, bell: &Doorbell) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        let mut weight = 0;
        while let Some(m) = mailbox.pop_control().or_else(|| mailbox.pop()) {
            got.push(m);
            weight += 1;
        }
        mailbox.release(weight);
        if mailbox.is_drained() {
            return got;
        }
        if weight == 0 {
            bell.sleep(|| mailbox.reserved() > 0 || mailbox.is_closed(), None);
            loom::thread::yield_now();
        }
    }
}

/// A sender races the close; the consumer drains. Ok ⇔ consumed.
#[test]
fn accepted_is_consumed_refused_is_not() {
    model(3, || {
        let (mb, bell) = mailbox(4);
        let (m1, b1) = (mb.clone(), bell.clone());
        let consumer = thread::spawn(move || consume(&m1, &b1));
        let m2 = mb.clone();
        let sender = thread::spawn(move || m2.send(7, 1, Class::Write, Wait::No).is_ok());
        mb.close();
        let sent = sender.join().expect("no panic");
        let got = consumer.join().expect("no panic");
        if sent {
            assert_eq!(got, vec![7], "an Ok send was consumed");
        } else {
            assert!(got.is_empty(), "a refused send was never consumed");
        }
    });
}

/// Two senders, one of them on the control queue, race the close.
#[test]
fn control_and_bounded_sends_race_the_close() {
    model(2, || {
        let (mb, bell) = mailbox(4);
        let (m1, b1) = (mb.clone(), bell.clone());
        let consumer = thread::spawn(move || consume(&m1, &b1));
        let m2 = mb.clone();
        let control = thread::spawn(move || m2.send_control(1).is_ok());
        let bounded = mb.send(2, 1, Class::Call, Wait::No).is_ok();
        mb.close();
        let control = control.join().expect("no panic");
        let mut got = consumer.join().expect("no panic");
        got.sort_unstable();
        let mut expected = Vec::new();
        if control {
            expected.push(1);
        }
        if bounded {
            expected.push(2);
        }
        assert_eq!(got, expected);
    });
}

/// The consumer is asleep (or about to be) when the close comes: it must wake and see
/// the mailbox drained.
#[test]
fn close_races_a_sleeping_consumer() {
    model(3, || {
        let (mb, bell) = mailbox(2);
        let (m1, b1) = (mb.clone(), bell.clone());
        let consumer = thread::spawn(move || consume(&m1, &b1));
        mb.close();
        assert!(consumer.join().expect("no panic").is_empty());
    });
}

/// A send must wake a consumer that is asleep (or about to be); then the close ends it.
#[test]
fn send_wakes_a_sleeping_consumer() {
    model(3, || {
        let (mb, bell) = mailbox(2);
        let (m1, b1) = (mb.clone(), bell.clone());
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            // Sleep until the message comes (no close: only the send can wake us).
            while got.is_empty() {
                match m1.pop() {
                    Some(m) => {
                        got.push(m);
                        m1.release(1);
                    }
                    None => b1.sleep(|| m1.reserved() > 0, None),
                }
                loom::thread::yield_now();
            }
            got
        });
        mb.send(5, 1, Class::Write, Wait::No).expect("room");
        assert_eq!(consumer.join().expect("no panic"), vec![5]);
    });
}

/// A sender waits for room (capacity 1, one message queued): the consumer's release must
/// let it in.
#[test]
fn a_waiting_sender_gets_in() {
    model(2, || {
        let (mb, _bell) = mailbox(1);
        mb.send(1, 1, Class::Call, Wait::No).expect("room");
        let m2 = mb.clone();
        let sender = thread::spawn(move || {
            m2.send(
                2,
                1,
                Class::Call,
                Wait::for_at_most(std::time::Duration::MAX),
            )
        });
        assert_eq!(mb.pop(), Some(1));
        mb.release(1);
        assert_eq!(sender.join().expect("no panic"), Ok(()));
        assert_eq!(mb.pop(), Some(2));
    });
}

/// A sender waiting for room is woken by the close and refused.
#[test]
fn close_wakes_a_waiting_sender() {
    model(2, || {
        let (mb, _bell) = mailbox(1);
        mb.send(1, 1, Class::Call, Wait::No).expect("room");
        let m2 = mb.clone();
        let sender = thread::spawn(move || {
            m2.send(
                2,
                1,
                Class::Call,
                Wait::for_at_most(std::time::Duration::MAX),
            )
        });
        mb.close();
        assert_eq!(sender.join().expect("no panic"), Err((2, Refused::Closed)));
    });
}

/// The consumer dies while a sender sends: an accepted message is discarded by `kill`
/// (so its reply resolves), a refused one never entered.
#[test]
fn kill_discards_exactly_what_was_accepted() {
    model(3, || {
        let (mb, _bell) = mailbox(2);
        let m2 = mb.clone();
        let sender = thread::spawn(move || m2.send(9, 1, Class::Write, Wait::No));
        let mut discarded = Vec::new();
        mb.kill(|m| discarded.push(m), |_| 1);
        match sender.join().expect("no panic") {
            Ok(()) => assert_eq!(discarded, vec![9]),
            Err((9, Refused::Dead)) => assert!(discarded.is_empty()),
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
        assert!(mb.is_drained());
    });
}

/// Two senders of `class` wait for room (capacity 2, both slots queued); the consumer
/// takes both and releases them with one `release(2)`, which must wake both: a release
/// that wakes only one leaves the other asleep with room left (a deadlock here).
fn one_release_lets_two_waiting_senders_in(class: Class) {
    model(2, move || {
        let (mb, _bell) = mailbox(2);
        mb.send(1, 1, class, Wait::No).expect("room");
        mb.send(2, 1, class, Wait::No).expect("room");
        let waiting = |msg: u32| {
            let mb = mb.clone();
            thread::spawn(move || {
                mb.send(msg, 1, class, Wait::for_at_most(std::time::Duration::MAX))
            })
        };
        let (a, b) = (waiting(3), waiting(4));
        assert_eq!(mb.pop(), Some(1));
        assert_eq!(mb.pop(), Some(2));
        mb.release(2);
        assert_eq!(a.join().expect("no panic"), Ok(()));
        assert_eq!(b.join().expect("no panic"), Ok(()));
        let mut got = vec![mb.pop(), mb.pop()];
        got.sort_unstable();
        assert_eq!(got, vec![Some(3), Some(4)]);
    });
}

#[test]
fn one_release_lets_two_waiting_writers_in() {
    one_release_lets_two_waiting_senders_in(Class::Write);
}

#[test]
fn one_release_lets_two_waiting_callers_in() {
    one_release_lets_two_waiting_senders_in(Class::Call);
}
