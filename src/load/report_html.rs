//! `--report`: the results as one self-contained HTML page (inline SVG from [`svg`],
//! inline CSS, no script, nothing fetched), well-formed as XML (every element closed).
//!
//! Plots: per operation, the latency percentile distribution of each run on log
//! scales (x: the percentile as "nines", y: µs; `id="dist-OP"`, one series per preset,
//! `data-preset`, `data-op`); the throughput of each run over time (`id="throughput"`);
//! with `--rate-sweep`, per operation, p50 and p99 against the achieved rate of each
//! preset's steps (`id="sweep-OP"`).

use std::fmt::Write as _;

use super::args::{LoadArgs, Pace, RunLength};
use super::mix::Op;
use super::progress::throughput;
use super::report::{CpuJson, OpStats};
use super::runner::RunResult;
use super::svg::{self, escape, Axis, Plot, Scale, Series};

/// The colour of a preset's lines.
fn color(run: &RunResult) -> &'static str {
    match run.preset.name() {
        "sharded" => "#1f77b4",
        _ => "#d62728",
    }
}

/// The legend name of a run.
fn run_name(run: &RunResult) -> String {
    match run.offered_rate {
        Some(rate) => format!("{} @{}/s", run.preset.name(), svg::si(rate as f64)),
        None => run.preset.name().to_string(),
    }
}

/// The ticks of the percentile axis, in nines (`-log10(1 - q)`).
fn nines_ticks(max: f64) -> Vec<(f64, String)> {
    let mut ticks = vec![(0.0, "0%".to_string()), (2f64.log10(), "50%".to_string())];
    let labels = ["90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
    for (i, label) in labels.iter().enumerate() {
        let x = (i + 1) as f64;
        if x > max.max(1.0) + 1e-9 {
            break;
        }
        ticks.push((x, (*label).to_string()));
    }
    ticks
}

/// The points of one latency distribution: `(nines, µs)` from the median region to the
/// maximum, every 0.05 nines up to `log10(count)` (beyond, percentiles repeat the max).
fn distribution(run: &RunResult, op: Op) -> Vec<(f64, f64)> {
    let h = &run.latency[op.index()];
    if h.count() == 0 {
        return Vec::new();
    }
    let top = (h.count() as f64).log10().max(0.05);
    let steps = (top / 0.05).ceil() as usize;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let x = (i as f64 * 0.05).min(top);
            let q = 1.0 - 10f64.powf(-x);
            let ns = h.quantile(q).unwrap_or(0);
            (x, (ns as f64 / 1000.0).max(0.001))
        })
        .collect();
    if let Some(max) = h.max() {
        points.push((top, (max as f64 / 1000.0).max(0.001)));
    }
    points
}

fn distribution_plot(op: Op, runs: &[RunResult]) -> Plot {
    let top = runs
        .iter()
        .map(|r| (r.latency[op.index()].count() as f64).log10())
        .fold(1.0, f64::max);
    Plot {
        id: format!("dist-{}", op.name()),
        kind: "distribution",
        title: format!("{}: latency by percentile", op.name()),
        x: Axis {
            label: "percentile".into(),
            scale: Scale::Ticks(nines_ticks(top)),
        },
        y: Axis {
            label: "latency (µs, log scale)".into(),
            scale: Scale::Log,
        },
        series: runs
            .iter()
            .map(|run| Series {
                name: run_name(run),
                color: color(run),
                dashed: false,
                markers: false,
                data: vec![
                    ("preset", run.preset.name().to_string()),
                    ("op", op.name().to_string()),
                ],
                points: distribution(run, op),
            })
            .collect(),
    }
}

fn throughput_plot(runs: &[RunResult]) -> Plot {
    Plot {
        id: "throughput".into(),
        kind: "throughput",
        title: "throughput over time".into(),
        x: Axis {
            label: "seconds since the start".into(),
            scale: Scale::Linear,
        },
        y: Axis {
            label: "operations per second (log scale)".into(),
            scale: Scale::Log,
        },
        series: runs
            .iter()
            .map(|run| {
                let points = throughput(&run.samples);
                Series {
                    name: run_name(run),
                    color: color(run),
                    dashed: false,
                    // A run shorter than a few samples shows as points.
                    markers: points.len() <= 3,
                    data: vec![("preset", run.preset.name().to_string())],
                    points,
                }
            })
            .collect(),
    }
}

fn sweep_plot(op: Op, closed: &[RunResult], steps: &[RunResult]) -> Plot {
    let mut series = Vec::new();
    for preset_run in closed {
        let preset = preset_run.preset;
        let mut mine: Vec<&RunResult> = steps.iter().filter(|r| r.preset == preset).collect();
        mine.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
        for (label, q, dashed) in [("p50", 0.5, true), ("p99", 0.99, false)] {
            series.push(Series {
                name: format!("{} {label}", preset.name()),
                color: color(preset_run),
                dashed,
                markers: true,
                data: vec![
                    ("preset", preset.name().to_string()),
                    ("op", op.name().to_string()),
                    ("quantile", label.to_string()),
                ],
                points: mine
                    .iter()
                    .filter_map(|r| {
                        let ns = r.latency[op.index()].quantile(q)?;
                        Some((r.ops_per_sec(), (ns as f64 / 1000.0).max(0.001)))
                    })
                    .collect(),
            });
        }
    }
    Plot {
        id: format!("sweep-{}", op.name()),
        kind: "sweep",
        title: format!("{}: latency against throughput", op.name()),
        x: Axis {
            label: "achieved operations per second, all operations (log scale)".into(),
            scale: Scale::Log,
        },
        y: Axis {
            label: "latency from the intended send time (µs, log scale)".into(),
            scale: Scale::Log,
        },
        series,
    }
}

const STYLE: &str = "body { font-family: sans-serif; margin: 2em; color: #222222; max-width: 80em }
table { border-collapse: collapse; margin: 1em 0 }
td, th { border: 1px solid #cccccc; padding: 0.2em 0.6em; text-align: right }
th { background: #f0f0f0 }
td.name { text-align: left }
figure { display: inline-block; margin: 0.5em }
.failed { color: #b00000; font-weight: bold }";

/// One row of the summary table.
fn summary_row(out: &mut String, run: &RunResult) {
    let pace = match (run.offered_rate, run.percent_of_max) {
        (None, _) => "closed loop".to_string(),
        (Some(r), Some(p)) => format!("open, {r}/s ({p}%)"),
        (Some(r), None) => format!("open, {r}/s"),
    };
    let check = if run.check.passed() {
        "<td>passed</td>".to_string()
    } else {
        r#"<td class="failed">FAILED</td>"#.to_string()
    };
    let cpu = CpuJson::of(run).map_or("-".to_string(), |c| {
        let shards = c
            .shards_cores
            .map_or("-".to_string(), |s| format!("{s:.2}"));
        format!("{:.2} / {shards} / {:.2}", c.clients_cores, c.cores_busy)
    });
    let _ = write!(
        out,
        r#"<tr><td class="name">{}</td><td class="name">{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{cpu}</td><td>{:.2}%</td>{check}"#,
        escape(run.preset.name()),
        escape(&pace),
        run.shards,
        run.clients,
        run.ops_per_sec(),
        run.success_rate() * 100.0,
    );
    for op in Op::ALL {
        let s = OpStats::of(&run.latency[op.index()]);
        let cell = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        let _ = write!(out, "<td>{} / {}</td>", cell(s.p50_us), cell(s.p99_us));
    }
    out.push_str("</tr>\n");
}

/// The report page of the runs `runs` (closed loop or `--rate`) and the sweep steps
/// `sweep` of a load run with `args` on `cpus` cpus.
pub fn page(args: &LoadArgs, runs: &[RunResult], sweep: &[RunResult], cpus: usize) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<title>mabeam load report</title>\n");
    let _ = writeln!(out, "<style>\n{STYLE}\n</style>\n</head>\n<body>");
    out.push_str("<h1>mabeam load report</h1>\n");
    let length = match args.length {
        RunLength::Ops(n) => format!("{n} operations per client"),
        RunLength::Duration(d) => format!("{:.3} s per run", d.as_secs_f64()),
    };
    let mode = match &args.pace {
        Pace::Closed => "closed loop (latency from the call)".to_string(),
        Pace::Rate(r) => format!("open loop at {r} ops/s (latency from the intended send time)"),
        Pace::Sweep(steps) => format!(
            "rate sweep at {} of each preset's closed-loop maximum",
            steps
                .iter()
                .map(|p| format!("{p}%"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let _ = writeln!(
        out,
        "<p>mabeam {}; {} clients, {}, mix {}, seed {}, {} cpus; {}.</p>",
        escape(env!("CARGO_PKG_VERSION")),
        args.clients,
        escape(&length),
        escape(&args.mix.to_string()),
        args.seed,
        cpus,
        escape(&mode)
    );
    out.push_str("<h2>Summary</h2>\n<table>\n<tr><th>preset</th><th>pace</th><th>shards</th><th>clients</th><th>ops/s end to end</th><th>cpu, cores: clients / shards / in all</th><th>success</th><th>check</th>");
    for op in Op::ALL {
        let _ = write!(out, "<th>{} p50 / p99 µs</th>", escape(op.name()));
    }
    out.push_str("</tr>\n");
    for run in runs.iter().chain(sweep) {
        summary_row(&mut out, run);
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Latency distribution per operation</h2>\n");
    out.push_str("<p>Each line is one preset's run: the latency at each percentile, both on log scales (the x axis counts nines: 90%, 99%, 99.9%, …).</p>\n");
    for op in Op::ALL {
        let _ = writeln!(
            out,
            "<figure>{}</figure>",
            svg::render(&distribution_plot(op, runs))
        );
    }
    out.push_str("<h2>Throughput over time</h2>\n");
    let _ = writeln!(
        out,
        "<figure>{}</figure>",
        svg::render(&throughput_plot(runs))
    );
    if !sweep.is_empty() {
        out.push_str("<h2>Latency against throughput (rate sweep)</h2>\n");
        out.push_str("<p>Each point is one open-loop run at a percentage of the preset's closed-loop maximum: the achieved rate against the latency from the intended send time (dashed p50, solid p99).</p>\n");
        for op in Op::ALL {
            let _ = writeln!(
                out,
                "<figure>{}</figure>",
                svg::render(&sweep_plot(op, runs, sweep))
            );
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_ticks_stop_at_the_data() {
        let labels: Vec<String> = nines_ticks(2.5).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%"]);
        assert_eq!(nines_ticks(0.2).len(), 3, "at least up to 90%");
    }
}
