//! Shared helpers for the integration tests (each test file includes it as a module).
#![allow(dead_code)]

use mabeam::{Config, Engine};

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
