//! The event history is bounded in bytes as well as in events, and `publish` refuses a
//! payload above `Config::events.max_payload` (before, 64 publishes of 16 MiB with no
//! subscriber took resident memory from 3 MB to 1,043 MB).

mod common;

use mabeam::events::{EventError, EventsConfig, HistoryQuery, Payload};
use mabeam::{Engine, StartError};

fn bounded(max_payload: usize, history_bytes: usize) -> Engine {
    Engine::start(
        common::config(1).with_events(
            EventsConfig::default()
                .with_history(1024)
                .with_max_payload(max_payload)
                .with_history_bytes(history_bytes),
        ),
    )
    .expect("valid config")
}

fn host_bytes(events: &[mabeam::events::Event]) -> usize {
    events
        .iter()
        .map(|e| match &e.payload {
            Payload::Host(b) => b.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn history_evicts_oldest_to_stay_within_its_byte_bound() {
    let engine = bounded(100, 1000);
    let events = engine.events();
    // 40 payloads of 100 bytes: 4,000 bytes, four times the bound.
    for i in 0..40u8 {
        events
            .publish("app.big", &[i; 100], None)
            .expect("within max_payload");
    }
    engine.flush().expect("engine alive");
    let kept = events.history(&HistoryQuery::default()).expect("history");
    assert!(
        host_bytes(&kept) <= 1000,
        "{} bytes kept",
        host_bytes(&kept)
    );
    assert_eq!(kept.len(), 10, "exactly the newest ten fit");
    let firsts: Vec<u8> = kept
        .iter()
        .map(|e| match &e.payload {
            Payload::Host(b) => b[0],
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(firsts, (30..40).collect::<Vec<u8>>());
}

#[test]
fn a_payload_one_byte_over_the_bound_is_refused_and_changes_nothing() {
    let engine = bounded(100, 1000);
    let events = engine.events();
    events
        .publish("app.x", &[1; 100], None)
        .expect("at the bound");
    engine.flush().expect("engine alive");
    let before = events.history(&HistoryQuery::default()).expect("history");
    assert_eq!(
        events.publish("app.x", &[2; 101], None),
        Err(EventError::PayloadTooLarge {
            size: 101,
            max: 100
        })
    );
    engine.flush().expect("engine alive");
    let after = events.history(&HistoryQuery::default()).expect("history");
    assert_eq!(before, after);
}

#[test]
fn zero_or_absurd_byte_bounds_are_refused_by_name() {
    let cases = [
        (0, 1000, "events.max_payload"),
        (usize::MAX, usize::MAX, "events.max_payload"),
        (100, 99, "events.history_bytes"),
        (100, usize::MAX, "events.history_bytes"),
    ];
    for (max_payload, history_bytes, name) in cases {
        let config = common::config(1).with_events(
            EventsConfig::default()
                .with_max_payload(max_payload)
                .with_history_bytes(history_bytes),
        );
        match Engine::start(config) {
            Err(StartError::InvalidConfig { field, .. }) => assert_eq!(field, name),
            other => panic!("expected InvalidConfig for {name}, got {other:?}"),
        }
    }
}
