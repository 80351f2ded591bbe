//! Stress test of the oneshot cell's documented re-entry: wait, get the value, then wait
//! again ("every later call reports Canceled") with no spin, while the completer may still
//! be inside `complete` (between its swap of WAITING → READY and its unpark).
//!
//! Before the fix, the second call wrote the waiter's thread handle into the cell while
//! the completer was taking it out: a data race on the handle that crashed release builds
//! (`cargo test --release -p mabeam-shards --test oneshot_reentry` segfaulted or aborted
//! within seconds) and that ThreadSanitizer reports. Loom cannot find it: there is no
//! scheduling point between the completer's swap, its take of the handle and its unpark.
//!
//! The window is hit when the waiter's `park` returns early (a wake-up token left by an
//! earlier round's unpark, or a spurious wake-up) just after the completer's swap: the
//! waiter sees READY, takes the value and re-enters while the completer still holds the
//! handle.

use std::sync::mpsc;
use std::time::Duration;

use mabeam_shards::oneshot::{oneshot, WaitError};

/// Rounds per run by default: few enough for a debug `cargo test` in CI;
/// `MABEAM_ONESHOT_ROUNDS` sets another count (the old protocol needed millions of
/// release rounds to crash).
fn rounds() -> u32 {
    std::env::var("MABEAM_ONESHOT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            20_000
        } else {
            400_000
        })
}

#[test]
fn waiting_again_after_the_value_never_races_the_completer() {
    let (to_completer, completions) = mpsc::sync_channel(64);
    let completer = std::thread::spawn(move || {
        for (c, value) in completions {
            mabeam_shards::oneshot::Completer::complete(c, value);
        }
    });
    for round in 0..rounds() {
        let (c, mut w) = oneshot::<u32>();
        to_completer
            .send((c, round))
            .expect("the completer thread runs until the channel closes");
        // No spin: register and park at once, so the completer usually finds WAITING.
        assert_eq!(w.wait_timeout(0, Duration::MAX), Ok(round));
        // Documented: every later call reports Canceled, whatever the completer is doing.
        assert_eq!(w.wait_timeout(0, Duration::MAX), Err(WaitError::Canceled));
        assert_eq!(w.wait_timeout(0, Duration::ZERO), Err(WaitError::Canceled));
        assert_eq!(w.try_take(), Some(Err(mabeam_shards::oneshot::Canceled)));
    }
    drop(to_completer);
    completer
        .join()
        .expect("the completer thread does not panic");
}
