//! Stress tests of the mailbox's wake protocol for senders waiting for room: a release
//! that makes room wakes every waiter of the class, and each one re-checks for room
//! under the space lock (module docs of `mailbox`, "Protocol").
//!
//! - **One release, many waiters** (`one_release_admits_every_waiting_*`): in each
//!   round eight patient senders (3 s to wait) send into a full mailbox of capacity 8,
//!   and the consumer, once they have started, takes all eight queued messages and
//!   gives them back with one `release(8)`, then releases nothing more until every
//!   sender of the round has returned. That one release must let every waiter in, so
//!   a lost wake is a sender that sleeps until its deadline (and is then let in by its
//!   own timeout): the test fails on any send that returns after its 3 s, `Ok` or not.
//!   With `release` waking one waiter (`notify_one`) instead of all, this test failed
//!   in its first round.
//! - **Free running** (`every_waiting_*_is_woken_and_every_send_is_checked`): eight
//!   senders, half patient and half giving up after 0–40 µs (so waiters are often
//!   notified just as they run out of time), against a consumer that pops a random
//!   1–8 and releases at once. Every single send is checked: the consumer got exactly
//!   the messages whose send returned `Ok`, each once, and no patient sender was
//!   refused. Here the consumer keeps releasing, so a lost wake is mended by the next
//!   release; this test guards the accounting, the first one the wakes.
//!
//! `MABEAM_MAILBOX_ROUNDS` sets the rounds (the first test) and the messages per
//! sender (the second).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mabeam_shards::doorbell::Doorbell;
use mabeam_shards::mailbox::{Class, Limits, Mailbox, Refused, Wait};

const SENDERS: u64 = 8;

/// `MABEAM_MAILBOX_ROUNDS`, or `default` in a debug build and ten times it optimised.
fn rounds(default: u64) -> u64 {
    std::env::var("MABEAM_MAILBOX_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            default
        } else {
            10 * default
        })
}

/// A small xorshift generator: the test needs spread, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A mailbox of `capacity` with a fire-and-forget `backlog`, shared by the test's threads.
fn mailbox(capacity: u64, backlog: u64) -> Arc<Mailbox<u64>> {
    let bell = Arc::new(Doorbell::new());
    Arc::new(Mailbox::new(Limits { capacity, backlog }, bell))
}

fn free_running(class: Class) {
    let per_sender = rounds(5_000);
    let mailbox = mailbox(8, 4);
    let senders_done = Arc::new(AtomicBool::new(false));

    let consumer = {
        let mailbox = Arc::clone(&mailbox);
        let senders_done = Arc::clone(&senders_done);
        thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let mut got = Vec::new();
            loop {
                let want = 1 + rng.below(8);
                let mut popped = 0;
                while popped < want {
                    match mailbox.pop() {
                        Some(m) => {
                            got.push(m);
                            popped += 1;
                        }
                        None => break,
                    }
                }
                mailbox.release(popped);
                if popped == 0 {
                    if senders_done.load(Ordering::Acquire) && mailbox.reserved() == 0 {
                        return got;
                    }
                    thread::yield_now();
                }
            }
        })
    };

    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let mailbox = Arc::clone(&mailbox);
            thread::spawn(move || {
                let patient = s % 2 == 0;
                let mut rng = Rng(s + 1);
                let mut accepted = Vec::new();
                let mut refused_patient = 0u64;
                for i in 0..per_sender {
                    let msg = s * per_sender + i;
                    let wait = if patient {
                        Wait::for_at_most(Duration::from_secs(5))
                    } else {
                        Wait::for_at_most(Duration::from_micros(rng.below(41)))
                    };
                    match mailbox.send(msg, 1, class, wait) {
                        Ok(()) => accepted.push(msg),
                        Err((back, Refused::Full)) => {
                            assert_eq!(back, msg, "a refused send hands its message back");
                            if patient {
                                refused_patient += 1;
                            }
                        }
                        Err((_, other)) => panic!("refused {other:?} by an open mailbox"),
                    }
                }
                (accepted, refused_patient)
            })
        })
        .collect();

    let mut accepted = HashSet::new();
    let mut refused_patient = 0;
    for sender in senders {
        let (ok, refused) = sender.join().expect("a sender panicked");
        refused_patient += refused;
        for msg in ok {
            assert!(accepted.insert(msg), "message {msg} accepted twice");
        }
    }
    senders_done.store(true, Ordering::Release);
    let got = consumer.join().expect("the consumer panicked");

    assert_eq!(
        refused_patient, 0,
        "patient senders (5 s to wait) were refused: a wake was lost"
    );
    let mut consumed = HashSet::new();
    for msg in &got {
        assert!(consumed.insert(*msg), "message {msg} consumed twice");
    }
    assert_eq!(
        consumed, accepted,
        "the consumer got exactly the messages whose send returned Ok"
    );
    assert!(
        accepted.len() as u64 >= SENDERS / 2 * per_sender,
        "every patient send got in"
    );
    assert_eq!(mailbox.reserved(), 0, "every admitted weight was released");
}

#[test]
fn every_waiting_writer_is_woken_and_every_send_is_checked() {
    free_running(Class::Write);
}

#[test]
fn every_waiting_caller_is_woken_and_every_send_is_checked() {
    free_running(Class::Call);
}

fn one_release_many_waiters(class: Class) {
    const CAPACITY: u64 = 8;
    // How long a sender waits for room. A woken sender gets in within microseconds;
    // one that reaches its deadline was never woken, a lost wake.
    const PATIENCE: Duration = Duration::from_secs(3);
    let rounds = rounds(2_000);
    let mailbox = mailbox(CAPACITY, CAPACITY);
    // The mailbox starts full, so the first round's senders find no room.
    for msg in 0..CAPACITY {
        mailbox
            .send(u64::MAX - msg, 1, class, Wait::No)
            .expect("an empty mailbox has room");
    }
    let refused = Arc::new(Mutex::new(Vec::new()));
    let start = Arc::new(Barrier::new(CAPACITY as usize + 1));
    let end = Arc::new(Barrier::new(CAPACITY as usize + 1));
    let senders: Vec<_> = (0..CAPACITY)
        .map(|s| {
            let (mailbox, start, end) =
                (Arc::clone(&mailbox), Arc::clone(&start), Arc::clone(&end));
            let refused = Arc::clone(&refused);
            thread::spawn(move || {
                for round in 0..rounds {
                    start.wait();
                    let msg = round * CAPACITY + s;
                    let began = Instant::now();
                    let sent = mailbox.send(msg, 1, class, Wait::for_at_most(PATIENCE));
                    // A waiter whose deadline passed was not woken: it was let in (or
                    // refused) by its own timeout, with room left since the release.
                    if sent.is_err() || began.elapsed() >= PATIENCE {
                        let sent = sent.map_err(|(_, why)| why);
                        refused
                            .lock()
                            .expect("no panic under the lock")
                            .push((round, s, sent));
                    }
                    end.wait();
                }
            })
        })
        .collect();

    let mut got = Vec::new();
    for _ in 0..rounds {
        start.wait();
        // Give the senders a moment to find the mailbox full and wait: how many do is
        // up to the scheduler, and the test is correct however many it is.
        for _ in 0..8 {
            thread::yield_now();
        }
        for _ in 0..CAPACITY {
            got.push(
                mailbox
                    .pop()
                    .expect("the mailbox is full at a round's start"),
            );
        }
        mailbox.release(CAPACITY);
        // No release until every sender of the round has returned: this one release
        // must let every waiter in.
        end.wait();
        // Stop at the first lost wake (the senders are left blocked in `start`).
        let refused = refused.lock().expect("no panic under the lock");
        assert!(
            refused.is_empty(),
            "(round, sender, result) of senders that reached their deadline with room \
             left since the release, so a wake was lost: {refused:?}"
        );
    }
    for sender in senders {
        sender.join().expect("a sender panicked");
    }
    while let Some(msg) = mailbox.pop() {
        got.push(msg);
        mailbox.release(1);
    }
    let expected: HashSet<u64> = (0..rounds * CAPACITY)
        .chain((0..CAPACITY).map(|m| u64::MAX - m))
        .collect();
    assert_eq!(got.len(), expected.len(), "every message consumed once");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(mailbox.reserved(), 0, "every admitted weight was released");
}

#[test]
fn one_release_admits_every_waiting_writer() {
    one_release_many_waiters(Class::Write);
}

#[test]
fn one_release_admits_every_waiting_caller() {
    one_release_many_waiters(Class::Call);
}
