//! What telemetry costs: the original's economics scenario (`benches/economics.rs`: 50
//! client threads × (100 pipelined auction creates + 100 market reads + 100 cached-pricing
//! reads) = 15,000 operations per iteration) on `Config::default()` with telemetry on
//! (the default: every command counted, one in 16 timed) and off, alternating on/off
//! for `ROUNDS` rounds in one run, each sample a fresh engine running `ITERS`
//! iterations. Prints each side's median throughput and ratio, and the median of the
//! per-round ratios (each round's on/off, the two samples taken back to back: drift of
//! the machine between rounds cancels in it, so it is the figure to read on a noisy
//! machine), with its quartiles.
//!
//! Run: `cargo bench --bench telemetry_cost` (plain `main`, no criterion: the point is
//! the same-run alternation). `MABEAM_COST_ROUNDS` overrides the number of rounds,
//! `MABEAM_COST_SAMPLE_EVERY` the timing rate of the "on" side, `MABEAM_COST_ITERS` the
//! iterations per sample.

#[path = "common/economics_scenario.rs"]
mod economics_scenario;

use std::hint::black_box;
use std::time::{Duration, Instant};

use economics_scenario::{close_all, inputs, scenario, Creates};
use economics_scenario::{AUCTIONS_PER_CLIENT, CATEGORIES, CLIENTS};
use mabeam::pricing::PricingInput;
use mabeam::telemetry::TelemetryConfig;
use mabeam::{Config, Engine};

/// Scenario iterations per sample by default.
const ITERS: usize = 20;
/// On/off rounds by default.
const ROUNDS: usize = 21;

fn prepare(telemetry: bool) -> Engine {
    let sample_every = std::env::var("MABEAM_COST_SAMPLE_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TelemetryConfig::default().sample_every);
    let config = Config::default().with_telemetry(
        TelemetryConfig::default()
            .with_enabled(telemetry)
            .with_sample_every(sample_every),
    );
    economics_scenario::prepare(config)
}

/// One sample: a fresh engine, `ITERS` iterations (each one's auctions closed untimed);
/// operations per second.
fn sample(telemetry: bool, inputs: &[PricingInput], iters: usize) -> f64 {
    let engine = prepare(telemetry);
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        let (elapsed, ids) = scenario(&engine, inputs, Creates::OneByOne);
        timed += elapsed;
        close_all(&engine, &ids);
    }
    let ops = (iters * CLIENTS * AUCTIONS_PER_CLIENT * 3) as f64;
    ops / timed.as_secs_f64()
}

/// Snapshot reads on one thread (`market().state`, a hit): reads per second. The read
/// path is where telemetry's per-thread counter is nearest to the work.
fn reads(telemetry: bool) -> f64 {
    let engine = prepare(telemetry);
    let n = 2_000_000u64;
    let t = Instant::now();
    for i in 0..n {
        black_box(engine.market().state(i % CATEGORIES).expect("running"));
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Telemetry on/off in the order round `round` runs them: which side goes first
/// alternates, so drift on a loaded machine hits both.
fn order(round: usize) -> [bool; 2] {
    if round % 2 == 0 {
        [true, false]
    } else {
        [false, true]
    }
}

/// The `q` quantile of `xs` (0.5: the median), interpolated between neighbours.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    let at = q * (xs.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (at - lo as f64)
}

fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// Each round's on/off ratio: the median and quartiles.
fn ratios(on: &[f64], off: &[f64]) -> String {
    let r: Vec<f64> = on.iter().zip(off).map(|(a, b)| a / b).collect();
    format!(
        "per-round on/off median {:.3} (quartiles {:.3}..{:.3})",
        median(&r),
        quantile(&r, 0.25),
        quantile(&r, 0.75)
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run one
    // round so the build is checked without taking long.
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("MABEAM_COST_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if benching { ROUNDS } else { 1 });
    let iters = std::env::var("MABEAM_COST_ITERS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ITERS);
    let inputs = inputs();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for telemetry in order(round) {
            let rate = sample(telemetry, &inputs, iters);
            println!(
                "round {round}: telemetry {:<3} {:>6.3} M ops/s",
                if telemetry { "on" } else { "off" },
                rate / 1e6
            );
            if telemetry { &mut on } else { &mut off }.push(rate);
        }
    }
    let (mut reads_on, mut reads_off) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for telemetry in order(round) {
            let rate = reads(telemetry);
            if telemetry {
                &mut reads_on
            } else {
                &mut reads_off
            }
            .push(rate);
        }
    }
    let (r_on, r_off) = (median(&reads_on), median(&reads_off));
    println!(
        "snapshot reads, 1 thread, median of {rounds} samples each: telemetry on {:.2} M/s, off {:.2} M/s, on/off {:.3}; {}",
        r_on / 1e6,
        r_off / 1e6,
        r_on / r_off,
        ratios(&reads_on, &reads_off)
    );
    let (m_on, m_off) = (median(&on), median(&off));
    println!(
        "economics scenario, median of {rounds} samples each: telemetry on {:.3} M ops/s, off {:.3} M ops/s, on/off {:.3} (cost {:+.1} %); {}",
        m_on / 1e6,
        m_off / 1e6,
        m_on / m_off,
        (1.0 - m_on / m_off) * 100.0,
        ratios(&on, &off)
    );
}
