//! Shared helpers for the integration tests (each test file includes it as a module).
#![allow(dead_code)]

use mabeam::{Clock, Config, Engine, ManualClock};

/// An unpinned engine with `shards` shards, so tests can run in parallel on a small
/// machine.
pub fn engine(shards: usize) -> Engine {
    Engine::start(config(shards)).expect("test config is valid")
}

/// The config of [`engine`].
pub fn config(shards: usize) -> Config {
    Config {
        shards,
        pin_threads: false,
        idle_spin: std::time::Duration::from_micros(5),
        ticket_spin: std::time::Duration::from_micros(1),
        ..Config::default()
    }
}

/// An engine like [`engine`] whose clock only moves by hand, starting at 1,000 ns.
pub fn manual_engine(shards: usize) -> (Engine, ManualClock) {
    let clock = ManualClock::new(1_000);
    let engine = Engine::start(Config {
        clock: Clock::Manual(clock.clone()),
        ..config(shards)
    })
    .expect("test config is valid");
    (engine, clock)
}
