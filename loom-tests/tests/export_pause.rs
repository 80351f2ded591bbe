//! Loom models of the mailbox pause that an export's consistent cut builds on
//! (`Mailbox::pause` / `resume` / `send_exempt`, and the deferred control list):
//!
//! - a control message racing a pause and its resume is delivered exactly once, and
//!   one sent after `pause()` returned is not poppable before `resume()` (no deferred
//!   message is stranded, none leaks into the cut);
//! - a sender waiting on a pause is woken by the resume (no lost wake-up);
//! - an exempt marker gets in while paused, and a message whose reservation read the
//!   flag set is never ahead of it.
//!
//! (The weakening checks of the other models were not repeated for these; the end-to-end
//! cut test `tests/export_restore.rs::the_cut_is_consistent_under_concurrent_writers`
//! was run with the pause removed from the export and failed "the cut is not a prefix"
//! in 4 runs of 5.)
#![cfg(mabeam_loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use mabeam_loom_tests::model;
use mabeam_shards::doorbell::Doorbell;
use mabeam_shards::mailbox::{Class, Limits, Mailbox, Wait};

fn mailbox(capacity: u64) -> Arc<Mailbox<u32>> {
    Arc::new(Mailbox::new(
        Limits {
            capacity,
            backlog: capacity,
        },
        Arc::new(Doorbell::new()),
    ))
}

/// A control send races `pause` then `resume`: it reaches the control queue exactly
/// once, and if it started after `pause()` returned, not before `resume()`.
#[test]
fn control_racing_pause_and_resume_is_delivered_once() {
    model(3, || {
        let mb = mailbox(4);
        let paused = Arc::new(AtomicBool::new(false));
        let (m2, p2) = (mb.clone(), paused.clone());
        let sender = thread::spawn(move || {
            let after_pause = p2.load(Ordering::SeqCst);
            m2.send_control(7).expect("open");
            after_pause
        });
        mb.pause();
        paused.store(true, Ordering::SeqCst);
        let before_resume = mb.pop_control();
        mb.resume();
        let after_pause = sender.join().expect("no panic");
        if after_pause {
            assert_eq!(before_resume, None, "a message sent after the pause leaked");
        }
        let rest = mb.pop_control();
        let got = usize::from(before_resume.is_some()) + usize::from(rest.is_some());
        assert_eq!(got, 1, "delivered once");
        assert_eq!(mb.pop_control(), None);
    });
}

/// A sender that finds the mailbox paused waits, and the resume lets it in.
#[test]
fn a_sender_waiting_on_a_pause_gets_in_at_resume() {
    model(2, || {
        let mb = mailbox(2);
        mb.pause();
        let m2 = mb.clone();
        let sender = thread::spawn(move || {
            m2.send(
                1,
                1,
                Class::Write,
                Wait::for_at_most(std::time::Duration::MAX),
            )
        });
        mb.resume();
        assert_eq!(sender.join().expect("no panic"), Ok(()));
        assert_eq!(mb.pop(), Some(1));
    });
}

/// A sender races the pause; the exempt marker goes in after the pause. If the sender's
/// message is behind the marker, it was admitted by a reservation that read the word
/// before the flag was set (it is the sender's one in-flight message): it never gets in
/// after the marker *and* returns after a later send of its own. Here: the sender sends
/// twice; at most the first can be behind the marker, never the second without the
/// first.
#[test]
fn only_one_in_flight_message_per_sender_passes_a_pause() {
    model(2, || {
        let mb = mailbox(4);
        let m2 = mb.clone();
        let sender = thread::spawn(move || {
            let a = m2.send(1, 1, Class::Write, Wait::No).is_ok();
            let b = m2.send(2, 1, Class::Write, Wait::No).is_ok();
            (a, b)
        });
        mb.pause();
        mb.send_exempt(99, Wait::No).expect("exempt");
        let mut order = Vec::new();
        while let Some(m) = mb.pop() {
            order.push(m);
        }
        let (a, b) = sender.join().expect("no panic");
        if b {
            assert!(a, "the second send got in while the first was refused");
            let marker = order.iter().position(|&m| m == 99).expect("marker");
            assert!(
                order[..marker].contains(&1),
                "a sender's second message passed the pause while its first is behind the marker"
            );
        }
    });
}
