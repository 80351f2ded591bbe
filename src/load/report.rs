//! The results as a table (stdout) and as JSON (`--json`).

use std::fmt::Write as _;

use super::client::Failure;
use super::histogram::Histogram;
use super::json::Json;
use super::mix::Op;
use super::runner::RunResult;

/// Latency statistics of one operation, in microseconds (`None` when it never ran).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpStats {
    /// Operations run.
    pub count: u64,
    /// Mean.
    pub avg_us: Option<f64>,
    /// Smallest.
    pub min_us: Option<f64>,
    /// Largest.
    pub max_us: Option<f64>,
    /// Median.
    pub p50_us: Option<f64>,
    /// 95th percentile.
    pub p95_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
}

impl OpStats {
    /// The statistics of a histogram of nanoseconds.
    pub fn of(h: &Histogram) -> OpStats {
        let us = |ns: u64| ns as f64 / 1000.0;
        OpStats {
            count: h.count(),
            avg_us: h.mean().map(|ns| ns / 1000.0),
            min_us: h.min().map(us),
            max_us: h.max().map(us),
            p50_us: h.quantile(0.50).map(us),
            p95_us: h.quantile(0.95).map(us),
            p99_us: h.quantile(0.99).map(us),
        }
    }

    fn columns(&self) -> [Option<f64>; 6] {
        [
            self.avg_us,
            self.min_us,
            self.max_us,
            self.p50_us,
            self.p95_us,
            self.p99_us,
        ]
    }
}

/// Sharded end-to-end ops/s over centralized, if both ran.
pub fn ratio(runs: &[RunResult]) -> Option<f64> {
    let rate = |name: &str| {
        runs.iter()
            .find(|r| r.preset.name() == name)
            .map(RunResult::ops_per_sec)
    };
    Some(rate("sharded")? / rate("centralized")?)
}

/// The header of the per-operation table.
pub const HEADER: &str = "operation              count     avg µs     min µs     max µs     p50 µs     p95 µs     p99 µs";

/// The table of one preset's run.
pub fn table(run: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} shard{}, {} clients",
        run.preset.name(),
        run.shards,
        if run.shards == 1 { "" } else { "s" },
        run.clients
    );
    let _ = writeln!(out, "{HEADER}");
    for op in Op::ALL {
        let stats = OpStats::of(&run.latency[op.index()]);
        let _ = write!(out, "{:<18} {:>9}", op.name(), stats.count);
        for value in stats.columns() {
            match value {
                Some(v) => {
                    let _ = write!(out, " {v:>10.3}");
                }
                None => {
                    let _ = write!(out, " {:>10}", "-");
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{:<18} {:>9}", "all", run.ops);
    let _ = writeln!(
        out,
        "ops/s end to end: {:.0} (client side: {:.0}); {:.3} s end to end, {:.3} s client side",
        run.ops_per_sec(),
        run.ops_per_sec_client_side(),
        run.end_to_end.as_secs_f64(),
        run.client_side.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "success rate: {:.2}% ({} of {})",
        run.success_rate() * 100.0,
        run.succeeded,
        run.ops
    );
    if run.failures.total() > 0 {
        let parts: Vec<String> = Failure::ALL
            .into_iter()
            .filter(|&k| run.failures.get(k) > 0)
            .map(|k| format!("{} {}", k.name(), run.failures.get(k)))
            .collect();
        let _ = writeln!(out, "failures: {}", parts.join(", "));
    }
    let c = &run.check;
    let _ = writeln!(
        out,
        "check: {} commands sent, {} applied{}; {} auctions created, {} found; \
         {} bids sent, {} to accept, {} accepted: {}",
        c.commands_sent,
        c.commands_applied,
        if c.handler_panics > 0 {
            format!(" ({} handler panics)", c.handler_panics)
        } else {
            String::new()
        },
        c.auctions_created,
        c.auctions_found,
        c.bids_sent,
        c.bids_to_accept,
        c.bids_accepted,
        if c.passed() { "passed" } else { "FAILED" }
    );
    out
}

/// The closing line: the ratio of the end-to-end rates, when both presets ran.
pub fn ratio_line(runs: &[RunResult]) -> Option<String> {
    ratio(runs).map(|r| format!("ratio sharded / centralized (ops/s end to end): {r:.2}x"))
}

/// Microseconds rounded to nanoseconds (the clock's resolution), as JSON.
fn us(x: Option<f64>) -> Json {
    Json::opt_num(x.map(|v| (v * 1000.0).round() / 1000.0))
}

/// The results in the `--json` schema:
/// `{"machine": {"cpus"}, "runs": [{"preset", "clients", "shards", "ops_per_sec",
/// "ops_per_sec_client_side", "success_rate", "operations": {name: {"count", "avg_us",
/// "min_us", "max_us", "p50_us", "p95_us", "p99_us"}}}], "ratio_sharded_over_centralized"}`.
pub fn json(runs: &[RunResult], cpus: usize) -> Json {
    let run_json = |run: &RunResult| {
        let operations = Op::ALL.into_iter().map(|op| {
            let s = OpStats::of(&run.latency[op.index()]);
            (
                op.name(),
                Json::obj([
                    ("count", Json::Int(s.count)),
                    ("avg_us", us(s.avg_us)),
                    ("min_us", us(s.min_us)),
                    ("max_us", us(s.max_us)),
                    ("p50_us", us(s.p50_us)),
                    ("p95_us", us(s.p95_us)),
                    ("p99_us", us(s.p99_us)),
                ]),
            )
        });
        Json::obj([
            ("preset", Json::Str(run.preset.name().into())),
            ("clients", Json::Int(run.clients as u64)),
            ("shards", Json::Int(run.shards as u64)),
            ("ops_per_sec", Json::Num(run.ops_per_sec().round())),
            (
                "ops_per_sec_client_side",
                Json::Num(run.ops_per_sec_client_side().round()),
            ),
            ("success_rate", Json::Num(run.success_rate())),
            (
                "resident_bytes_peak",
                run.resident_peak.map_or(Json::Null, Json::Int),
            ),
            ("mailbox_depth_peak", Json::Int(run.mailbox_peak)),
            ("operations", Json::obj(operations)),
        ])
    };
    Json::obj([
        ("machine", Json::obj([("cpus", Json::Int(cpus as u64))])),
        ("runs", Json::Arr(runs.iter().map(run_json).collect())),
        ("ratio_sharded_over_centralized", Json::opt_num(ratio(runs))),
    ])
}
