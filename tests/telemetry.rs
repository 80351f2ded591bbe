//! Telemetry: counters add up exactly, refusals and panics are counted, histograms
//! count what was timed, and the Prometheus text parses back to the snapshot's figures.
//! No timing is asserted.

mod common;

use std::collections::HashMap;

use mabeam::agents::{AgentError, AgentState};
use mabeam::auctions::{AuctionError, AuctionKind, AuctionSpec, Bid};
use mabeam::registry::MetadataSpec;
use mabeam::telemetry::{TelemetryConfig, TelemetrySnapshot};
use mabeam::{Config, Engine, Error};

fn english() -> AuctionSpec {
    AuctionSpec {
        kind: AuctionKind::English {
            reserve: 100,
            min_increment: 10,
        },
        seller: 1,
        category: 4,
        deadline: None,
        buy_now: None,
    }
}

/// Every command timed: round trips and apply times then count every call.
fn timed(shards: usize) -> Config {
    common::config(shards).with_telemetry(TelemetryConfig::default().with_sample_every(1))
}

fn count(t: &TelemetrySnapshot, service: &str, op: &str) -> u64 {
    t.operation(service, op)
        .unwrap_or_else(|| panic!("{service}/{op} is an operation"))
        .count
}

fn errors(t: &TelemetrySnapshot, service: &str, op: &str, kind: &str) -> u64 {
    t.operation(service, op)
        .unwrap()
        .errors
        .iter()
        .find(|(k, _)| k == kind)
        .map_or(0, |(_, n)| *n)
}

#[test]
fn operation_counts_add_up_to_what_was_acknowledged() {
    let engine = Engine::start(timed(3)).unwrap();
    let n = 40u64;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(engine.auctions().create(english()).wait().unwrap().unwrap());
    }
    let mut too_low = 0;
    for (i, &id) in ids.iter().enumerate() {
        let ok = engine
            .auctions()
            .bid(
                id,
                Bid {
                    bidder: 2,
                    amount: 150,
                    bundle: 0,
                },
            )
            .wait()
            .unwrap();
        assert!(ok.is_ok());
        if i % 4 == 0 {
            let low = engine
                .auctions()
                .bid(
                    id,
                    Bid {
                        bidder: 3,
                        amount: 151,
                        bundle: 0,
                    },
                )
                .wait()
                .unwrap();
            assert!(matches!(low, Err(AuctionError::BidTooLow { .. })));
            too_low += 1;
        }
    }
    for &id in &ids {
        assert!(engine.auctions().close(id).wait().unwrap().is_ok());
    }
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    assert!(t.enabled);
    assert_eq!(count(&t, "auctions", "create"), n);
    assert_eq!(count(&t, "auctions", "bid"), n + too_low);
    assert_eq!(count(&t, "auctions", "close"), n);
    assert_eq!(errors(&t, "auctions", "bid", "BidTooLow"), too_low);
    assert_eq!(errors(&t, "auctions", "create", "BidTooLow"), 0);
    // Each sale fed its category's market: one shard-to-shard update per close.
    assert_eq!(count(&t, "market", "update"), n);
    // Every call was timed (sample_every = 1), on the shard and by the caller.
    let create = t.operation("auctions", "create").unwrap();
    assert_eq!(create.apply.count, n);
    assert_eq!(create.round_trip.count, n);
    assert!(create.round_trip.p50 <= create.round_trip.max);
    assert_eq!(
        t.operation("auctions", "bid").unwrap().round_trip.count,
        n + too_low
    );
    // Applied per shard = the operations it applied + the flush messages (2 rounds, one
    // per shard each).
    let ops: u64 = t.operations.iter().map(|o| o.count).sum();
    let flushes = 2 * engine.shards() as u64;
    assert_eq!(t.applied(), ops + flushes);
    assert_eq!(t.shards.len(), 3);
    for s in &t.shards {
        assert!(s.alive);
        assert!(s.report.batches > 0);
        assert_eq!(s.batch_sizes.count, s.report.batches);
        assert_eq!(s.mailbox_depth, 0);
        assert_eq!(s.lane_depths.len(), 3);
    }
    // The batch sizes add up to what was applied (each batch's commands counted once).
    let applied_in_batches: u64 = t.shards.iter().map(|s| s.report.applied).sum();
    assert_eq!(applied_in_batches, t.applied());
}

#[test]
fn agents_and_registry_are_counted_per_operation() {
    let engine = Engine::start(timed(2)).unwrap();
    for id in 0..25u64 {
        engine.agents().update(id, AgentState::default()).unwrap();
    }
    for id in 0..5u64 {
        engine.agents().remove(id).wait().unwrap().unwrap();
    }
    let missing = engine.agents().remove(999).wait().unwrap();
    assert!(matches!(missing, Err(AgentError::NotFound)));
    let lease = engine
        .registry()
        .register("a", 1, &MetadataSpec::with_capabilities(&["plan", "bid"]))
        .unwrap();
    let registered = engine.telemetry().snapshot().unwrap();
    assert_eq!(registered.capabilities_used, 2);
    lease
        .update_metadata(&MetadataSpec::with_capabilities(&["plan"]))
        .unwrap();
    let updated = engine.telemetry().snapshot().unwrap();
    assert_eq!(updated.capabilities_used, 1, "the update gave \"bid\" back");
    lease.release().unwrap();
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    assert_eq!(count(&t, "agents", "update"), 25);
    assert_eq!(count(&t, "agents", "remove"), 6);
    assert_eq!(errors(&t, "agents", "remove", "NotFound"), 1);
    assert_eq!(count(&t, "registry", "register"), 1);
    assert_eq!(count(&t, "registry", "update"), 1);
    assert_eq!(count(&t, "registry", "release"), 1);
    assert_eq!(t.capabilities_used, 0, "names no entry holds are freed");
    assert!(t.capabilities_budget >= 2);
}

#[test]
fn snapshot_reads_are_counted_exactly_per_thread() {
    let engine = common::engine(2);
    engine.agents().update(1, AgentState::default()).unwrap();
    engine.flush().unwrap();
    for _ in 0..30 {
        engine.agents().get(1).unwrap();
    }
    let handle = engine.handle();
    std::thread::spawn(move || {
        for _ in 0..12 {
            handle.agents().get(2).unwrap();
        }
        handle.market().state(3).unwrap();
    })
    .join()
    .unwrap();
    engine.registry().lookup("nobody").unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    // The other thread has ended: its slot went back to the engine with its counts.
    assert_eq!(t.reads_of("agents", "get"), 42);
    assert_eq!(t.reads_of("market", "state"), 1);
    assert_eq!(t.reads_of("registry", "lookup"), 1);
    assert_eq!(t.reads_of("auctions", "status"), 0);
    // Reads never reach a shard.
    assert_eq!(count(&t, "agents", "get"), 0);
}

#[test]
fn busy_refusals_are_counted_when_a_mailbox_is_full() {
    let engine = Engine::start(common::config(1).with_mailbox_capacity(2)).unwrap();
    let stall = engine.testing().stall(0).unwrap();
    engine
        .agents()
        .try_update(1, AgentState::default())
        .unwrap();
    for id in 2..5 {
        assert_eq!(
            engine.agents().try_update(id, AgentState::default()),
            Err(AgentError::Engine(Error::Busy))
        );
    }
    let mut refused = engine.auctions().create(english());
    // The call waits up to send_timeout for room, then is refused.
    assert_eq!(
        refused.wait_timeout(std::time::Duration::MAX),
        Err(Error::Busy)
    );
    drop(stall);
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    assert_eq!(t.shards[0].busy_refusals, 4);
    assert_eq!(errors(&t, "agents", "update", "Busy"), 3);
    assert_eq!(errors(&t, "auctions", "create", "Busy"), 1);
    // Refused commands were never applied.
    assert_eq!(count(&t, "agents", "update"), 1);
    assert_eq!(count(&t, "auctions", "create"), 0);
}

#[test]
fn handler_panics_are_counted() {
    let engine = common::engine(2);
    for _ in 0..3 {
        assert!(matches!(
            engine.testing().panic_in_handler(1).wait(),
            Err(Error::Internal(_))
        ));
    }
    let t = engine.telemetry().snapshot().unwrap();
    assert_eq!(t.shards[1].report.panics, 3);
    assert_eq!(t.shards[0].report.panics, 0);
}

#[test]
fn events_published_delivered_and_lagged() {
    let engine = common::engine(2);
    let wide = engine.events().subscribe("app.*", 100).unwrap();
    let narrow = engine.events().subscribe("app.*", 2).unwrap();
    for i in 0..5u64 {
        engine.events().publish("app.tick", b"x", Some(i)).unwrap();
    }
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    assert_eq!(t.events.published, 5);
    assert_eq!(t.events.delivered, 5 + 2);
    assert_eq!(t.events.lagged, 3);
    assert_eq!(t.events.lagged, narrow.lagged());
    assert_eq!(t.events.subscriptions, 2);
    assert_eq!(wide.len(), 5);
    assert_eq!(count(&t, "events", "publish"), 5);
    assert_eq!(
        count(&t, "events", "subscribe"),
        4,
        "two subscriptions on two shards"
    );
}

#[test]
fn tasks_are_counted_with_durations() {
    let engine = common::engine(1);
    assert_eq!(engine.tasks().spawn(|| 1).wait().unwrap(), Ok(1));
    assert_eq!(engine.tasks().spawn(|| 2).wait().unwrap(), Ok(2));
    assert!(engine
        .tasks()
        .spawn(|| -> u8 { panic!("boom") })
        .wait()
        .unwrap()
        .is_err());
    let t = engine.telemetry().snapshot().unwrap();
    assert_eq!(t.tasks.spawned, 3);
    assert_eq!(t.tasks.completed, 3);
    assert_eq!(t.tasks.panicked, 1);
    assert_eq!(t.tasks.queued, 0);
    assert_eq!(t.tasks.running, 0);
    // Recorded after the result was delivered: counted once the worker is back.
    assert!(t.tasks.duration.count <= 3);
}

#[test]
fn off_records_nothing_but_still_reads_what_lives_elsewhere() {
    let engine = Engine::start(
        common::config(2).with_telemetry(TelemetryConfig::default().with_enabled(false)),
    )
    .unwrap();
    engine.auctions().create(english()).wait().unwrap().unwrap();
    engine.agents().get(1).unwrap();
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    assert!(!t.enabled);
    assert_eq!(count(&t, "auctions", "create"), 0);
    assert_eq!(t.reads_of("agents", "get"), 0);
    assert!(t.applied() > 0, "the shard counters are the runtime's own");
}

#[test]
fn a_dead_shard_is_marked_and_the_rest_reported() {
    let engine = common::engine(2);
    engine.testing().kill_shard(1).unwrap();
    assert_eq!(engine.flush(), Err(Error::ShardDown(1)));
    let t = engine.telemetry().snapshot().unwrap();
    assert!(t.shards[0].alive);
    assert!(!t.shards[1].alive);
    assert!(t.shards[1].report.died);
    assert!(t.to_prometheus().contains("mabeam_shard_up{shard=\"1\"} 0"));
}

/// A sample line of Prometheus text: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses Prometheus text exposition (the subset mabeam writes), checking that each
/// family has `# HELP` and `# TYPE` before its samples and that every sample belongs to
/// the family declared last.
fn parse(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
    let mut types = HashMap::new();
    let mut helped = std::collections::HashSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(helped.insert(name.clone()), "one HELP per family: {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            let kind = it.next().unwrap().to_string();
            assert!(helped.contains(&name), "HELP before TYPE for {name}");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                "{kind}"
            );
            assert!(
                types.insert(name.clone(), kind).is_none(),
                "one TYPE per family"
            );
            current = Some(name);
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "unexpected line {line:?}"
        );
        let (head, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = if value == "+Inf" {
            f64::INFINITY
        } else {
            value
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?}"))
        };
        let (name, labels) = match head.split_once('{') {
            None => (head.to_string(), Vec::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap();
                let labels = rest
                    .split("\",")
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap();
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        let family = current.as_deref().expect("a sample after a TYPE line");
        let ok = name == family
            || (types[family] == "histogram"
                && [
                    format!("{family}_bucket"),
                    format!("{family}_sum"),
                    format!("{family}_count"),
                ]
                .contains(&name));
        assert!(ok, "sample {name} outside its family {family}");
        if types[family] == "counter" {
            assert!(family.ends_with("_total"), "counter {family} ends _total");
        }
        samples.push((name, labels, value));
    }
    (types, samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.2)
}

#[test]
fn prometheus_text_parses_back_to_the_snapshot() {
    let engine = Engine::start(timed(2)).unwrap();
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(engine.auctions().create(english()).wait().unwrap().unwrap());
    }
    let low = engine
        .auctions()
        .bid(
            ids[0],
            Bid {
                bidder: 9,
                amount: 1,
                bundle: 0,
            },
        )
        .wait()
        .unwrap();
    assert!(low.is_err());
    engine.agents().get(5).unwrap();
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    let text = t.to_prometheus();
    let (types, samples) = parse(&text);
    assert_eq!(types["mabeam_operation_duration_seconds"], "histogram");
    assert_eq!(types["mabeam_operations_total"], "counter");
    assert_eq!(types["mabeam_shard_mailbox_depth"], "gauge");
    let create = [("service", "auctions"), ("op", "create")];
    assert_eq!(
        value(&samples, "mabeam_operations_total", &create),
        Some(7.0)
    );
    assert_eq!(
        value(
            &samples,
            "mabeam_operation_errors_total",
            &[
                ("service", "auctions"),
                ("op", "bid"),
                ("kind", "BidTooLow")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "mabeam_operation_duration_seconds_count", &create),
        Some(7.0)
    );
    assert_eq!(
        value(
            &samples,
            "mabeam_operation_round_trip_seconds_count",
            &create
        ),
        Some(7.0)
    );
    // Histogram buckets are cumulative and end at the count.
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "mabeam_operation_duration_seconds_bucket"
                && l.contains(&("service".into(), "auctions".into()))
                && l.contains(&("op".into(), "create".into()))
        })
        .map(|(_, l, v)| {
            let le = &l.iter().find(|(k, _)| k == "le").unwrap().1;
            (
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                },
                *v,
            )
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 7.0)));
    assert_eq!(
        value(
            &samples,
            "mabeam_snapshot_reads_total",
            &[("service", "agents"), ("op", "get")]
        ),
        Some(1.0)
    );
    for s in &t.shards {
        let shard = s.shard.to_string();
        assert_eq!(
            value(
                &samples,
                "mabeam_shard_commands_applied_total",
                &[("shard", &shard)]
            ),
            Some(s.report.applied as f64)
        );
    }
}

#[test]
fn pricing_round_trips_are_timed_like_other_acknowledged_calls() {
    let engine = Engine::start(timed(2)).unwrap();
    for i in 0..3u32 {
        let input = mabeam::pricing::PricingInput {
            recent_prices: vec![100.0, 101.0 + f64::from(i)],
            demand: 10.0,
            supply: 4.0,
            base_price: 100.0,
        };
        engine.pricing().calculate(&input).wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    let t = engine.telemetry().snapshot().unwrap();
    let calculate = t.operation("pricing", "calculate").unwrap();
    assert_eq!(calculate.count, 3, "each result cached by its shard");
    assert_eq!(calculate.apply.count, 3);
    assert_eq!(
        calculate.round_trip.count, 3,
        "pool + cache + wake-up, per call"
    );
}
