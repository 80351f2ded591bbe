//! The `metrics` feature: the reporter thread hands the snapshot's figures to the
//! installed `metrics` recorder (here `metrics-util`'s debugging recorder). Its last
//! report runs at shutdown, so the test needs no waiting.
#![cfg(feature = "metrics")]

mod common;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

use mabeam::auctions::{AuctionKind, AuctionSpec};
use mabeam::telemetry::TelemetryConfig;
use mabeam::Engine;

/// A counter's value; `None` for a gauge or histogram.
fn counter_of(value: &DebugValue) -> Option<u64> {
    match value {
        DebugValue::Counter(n) => Some(*n),
        _ => None,
    }
}

#[test]
fn figures_arrive_through_the_metrics_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder is installed in this test binary");
    let engine = Engine::start(common::config(2).with_telemetry(
        TelemetryConfig::default().with_report_interval(std::time::Duration::from_secs(3600)),
    ))
    .unwrap();
    let spec = AuctionSpec {
        kind: AuctionKind::English {
            reserve: 1,
            min_increment: 1,
        },
        seller: 1,
        category: 1,
        deadline: None,
        buy_now: None,
    };
    for _ in 0..9 {
        engine.auctions().create(spec).wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    engine.shutdown();
    let figures = snapshotter.snapshot().into_vec();
    let find = |name: &str, labels: &[(&str, &str)]| {
        figures.iter().find_map(|(key, _, _, value)| {
            let k = key.key();
            let matches = k.name() == name
                && labels
                    .iter()
                    .all(|(n, v)| k.labels().any(|l| l.key() == *n && l.value() == *v));
            matches.then(|| (key.kind(), counter_of(value)))
        })
    };
    let creates = find(
        "mabeam_operations_total",
        &[("service", "auctions"), ("op", "create")],
    );
    assert_eq!(creates, Some((MetricKind::Counter, Some(9))));
    let applied: u64 = (0..2)
        .map(|shard| {
            match find(
                "mabeam_shard_commands_applied_total",
                &[("shard", &shard.to_string())],
            ) {
                Some((MetricKind::Counter, Some(n))) => n,
                other => panic!("shard {shard}: {other:?}"),
            }
        })
        .sum();
    // 9 creates and one flush (two rounds on two shards).
    assert_eq!(applied, 9 + 4);
    assert!(matches!(
        find("mabeam_shard_mailbox_depth", &[("shard", "0")]),
        Some((MetricKind::Gauge, None))
    ));
    assert!(matches!(
        find(
            "mabeam_operation_duration_seconds",
            &[
                ("service", "auctions"),
                ("op", "create"),
                ("quantile", "0.99")
            ]
        ),
        Some((MetricKind::Gauge, _))
    ));
}
