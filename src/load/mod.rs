//! `mabeam load`: the original MABEAM concurrency test (create auctions, place bids,
//! read market state, read cached pricing from many clients at once), run against the
//! sharded engine and the centralized one, with latency per operation, end-to-end
//! throughput, success checked against what the engine applied, and their ratio.
//! Closed loop by default; open loop at a fixed offered rate with `--rate`, and the
//! latency–throughput curve of both presets with `--rate-sweep`.
//!
//! Modules: [`args`] (command line, clap), [`mix`] (operation weights), [`rng`] (the
//! clients' deterministic generator), [`client`] (one client thread, closed or open
//! loop), [`cpu`] and [`thread_cpu`] (where a run's CPU time went), [`runner`] (one preset: setup, run, flush, check), [`histogram`] (bounded
//! latency histogram, hdrhistogram), [`progress`] (the run's monitor: throughput samples
//! and the indicatif bar), [`report`] (tables and JSON, serde), [`report_html`] and
//! [`svg`] (`--report`: one HTML page of inline SVG plots); [`soak`] is `mabeam soak`,
//! the same clients with injected faults.
//!
//! The whole module is the `mabeam` binary's, built only with the `cli` feature.
//!
//! Output files (`--json`, `--report`, `--metrics`) are checked writable before the first run
//! ([`check_writable`]); one that is not ends the tool at once with
//! [`EXIT_OUTPUT`].

pub mod args;
pub mod client;
pub mod cpu;
pub mod gauges;
pub mod histogram;
pub mod mix;
pub mod progress;
pub mod report;
pub mod report_html;
pub mod rng;
pub mod runner;
pub mod soak;
pub mod svg;
pub mod thread_cpu;

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use args::{LoadArgs, Pace, Preset, RunLength, MAX_RATE};
use progress::{rate_text, Progress};
use runner::{RunPace, RunResult};

/// Exit code when an output file cannot be written (before the run: nothing ran; after
/// it, when writing failed although the check before the run passed).
pub const EXIT_OUTPUT: u8 = 3;

/// Checks that `path` can be written without changing it: an existing file is opened
/// for appending (not truncated); a missing one is created and removed again.
pub fn check_writable(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::other("it is a directory"));
    }
    match OpenOptions::new().append(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            OpenOptions::new().write(true).create_new(true).open(path)?;
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

/// The output files `args` asks for, with their flags (`--metrics` as one file per
/// preset).
fn outputs(args: &LoadArgs) -> Vec<(&'static str, PathBuf)> {
    let mut out: Vec<(&'static str, PathBuf)> =
        [("--json", &args.json), ("--report", &args.report)]
            .into_iter()
            .filter_map(|(flag, path)| path.clone().map(|p| (flag, p)))
            .collect();
    if let Some(path) = &args.metrics {
        for preset in [Preset::Sharded, Preset::Centralized] {
            out.push(("--metrics", gauges::with_preset(path, preset.name())));
        }
    }
    out
}

/// The open-loop rate of a sweep step: `percent` of `max` ops/s, at least 1.
pub fn step_rate(max: f64, percent: f64) -> u64 {
    ((max * percent / 100.0).round().max(1.0) as u64).min(MAX_RATE)
}

/// Runs every preset `args` asks for (and, with `--rate-sweep`, every step of each),
/// prints each table as its run ends and the ratio at the end, writes the JSON and the
/// report if asked. Exit code 0 when every run passed its check, 1 when a run could not
/// be carried out or a check failed, [`EXIT_OUTPUT`] when an output file cannot be
/// written (1 wins when both happen).
pub fn run(args: &LoadArgs) -> ExitCode {
    for (flag, path) in outputs(args) {
        if let Err(e) = check_writable(&path) {
            eprintln!(
                "mabeam load: {flag} {}: cannot write there: {e} (nothing was run)",
                path.display()
            );
            return ExitCode::from(EXIT_OUTPUT);
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let length = match args.length {
        RunLength::Ops(n) => format!("{n} ops each"),
        RunLength::Duration(d) => format!("{:.3} s each", d.as_secs_f64()),
    };
    let pace = match &args.pace {
        Pace::Closed => "closed loop".to_string(),
        Pace::Rate(r) => format!("open loop at {}", rate_text(*r as f64)),
        Pace::Sweep(steps) => format!(
            "rate sweep at {} of each preset's closed-loop maximum",
            steps
                .iter()
                .map(|p| format!("{p}%"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    println!(
        "mabeam load: {} clients, {length}, mix {}, seed {}, {cpus} cpus, {pace}\n",
        args.clients, args.mix, args.seed
    );
    let progress = Progress::new(args.length, args.clients);
    let mut runs: Vec<RunResult> = Vec::new();
    let mut sweep: Vec<RunResult> = Vec::new();
    let mut code = ExitCode::SUCCESS;
    let mut run_one = |preset, pace: RunPace| match runner::run_preset(
        preset, args, pace, &progress,
    ) {
        Ok(run) => {
            println!("{}", report::table(&run));
            if let Some(rate) = run.offered_rate {
                if run.ops_per_sec() < 0.95 * rate as f64 {
                    println!(
                        "note: {:.0} ops/s achieved of {rate} offered: the clients fell behind \
                         their schedule (the engine, or the tool's pacing: one sleep per \
                         operation when a client's interval is {} µs or more); the \
                         latencies include the backlog\n",
                        run.ops_per_sec(),
                        client::SLEEP_AT_LEAST.as_micros()
                    );
                }
            }
            if !run.check.passed() {
                eprintln!(
                    "mabeam load: the {} engine did not do what it acknowledged (see its check line)",
                    preset.name()
                );
                code = ExitCode::FAILURE;
            }
            Ok(run)
        }
        Err(e) => {
            eprintln!("mabeam load: {} preset: {e}", preset.name());
            Err(())
        }
    };
    for &preset in args.preset.presets() {
        let first = match &args.pace {
            Pace::Rate(r) => RunPace {
                rate: Some(*r),
                percent_of_max: None,
            },
            Pace::Closed | Pace::Sweep(_) => RunPace::CLOSED,
        };
        let Ok(run) = run_one(preset, first) else {
            return ExitCode::FAILURE;
        };
        if let Pace::Sweep(steps) = &args.pace {
            let max = run.ops_per_sec();
            for &percent in steps {
                let pace = RunPace {
                    rate: Some(step_rate(max, percent)),
                    percent_of_max: Some(percent),
                };
                let Ok(step) = run_one(preset, pace) else {
                    return ExitCode::FAILURE;
                };
                sweep.push(step);
            }
        }
        runs.push(run);
    }
    if let Some(line) = report::ratio_line(&runs) {
        println!("{line}");
    }
    let busiest = runs
        .iter()
        .filter(|run| run.offered_rate.is_none())
        .max_by_key(|run| run.clients.saturating_add(run.shards));
    if let Some(note) =
        busiest.and_then(|run| report::oversubscribed_note(run.clients, run.shards, cpus))
    {
        println!("\n{note}");
    }
    let table = report::sweep_table(&runs, &sweep);
    if !table.is_empty() {
        println!("\n{table}");
    }
    let mut written = true;
    let mut write = |flag: &str, path: &Path, text: String| {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("mabeam load: {flag} {}: cannot write: {e}", path.display());
            written = false;
        }
    };
    if let Some(path) = &args.json {
        let doc = report::document(args, &runs, &sweep, cpus);
        write("--json", path, report::to_json_text(&doc));
    }
    if let Some(path) = &args.report {
        write(
            "--report",
            path,
            report_html::page(args, &runs, &sweep, cpus),
        );
    }
    if code == ExitCode::SUCCESS && !written {
        return ExitCode::from(EXIT_OUTPUT);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("mabeam-load-mod-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_missing_file_is_writable_and_left_missing() {
        let path = scratch("missing");
        let _ = std::fs::remove_file(&path);
        assert!(check_writable(&path).is_ok());
        assert!(!path.exists(), "the check removes the file it created");
    }

    #[test]
    fn an_existing_file_is_left_unchanged() {
        let path = scratch("existing");
        std::fs::write(&path, "keep me").unwrap();
        assert!(check_writable(&path).is_ok());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_directory_or_a_missing_directory_is_not_writable() {
        assert!(check_writable(&std::env::temp_dir()).is_err());
        let path = scratch("no-such-dir").join("out.json");
        assert!(check_writable(&path).is_err());
    }

    #[test]
    fn sweep_rates_are_percentages_of_the_maximum() {
        assert_eq!(step_rate(1_000_000.0, 10.0), 100_000);
        assert_eq!(step_rate(1_000_000.0, 90.0), 900_000);
        assert_eq!(step_rate(3.0, 10.0), 1);
        assert_eq!(step_rate(1e18, 1000.0), MAX_RATE);
    }
}
