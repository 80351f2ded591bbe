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
    Config::default()
        .with_shards(shards)
        .with_pin_threads(false)
        .with_idle_spin(std::time::Duration::from_micros(5))
        .with_ticket_spin(std::time::Duration::from_micros(1))
}

/// An engine like [`engine`] whose clock only moves by hand, starting at 1,000 ns.
pub fn manual_engine(shards: usize) -> (Engine, ManualClock) {
    let clock = ManualClock::new(1_000);
    let engine = Engine::start(config(shards).with_clock(Clock::Manual(clock.clone())))
        .expect("test config is valid");
    (engine, clock)
}
