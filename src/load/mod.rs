//! `mabeam load`: the original MABEAM concurrency test (create auctions, place bids,
//! read market state, read cached pricing from many clients at once), run against the
//! sharded engine and the centralized one, with latency per operation, end-to-end
//! throughput, success checked against what the engine applied, and their ratio.
//!
//! Modules: [`args`] (command line), [`mix`] (operation weights), [`rng`] (the clients'
//! deterministic generator), [`client`] (one client thread), [`runner`] (one preset:
//! setup, run, flush, check), [`histogram`] (bounded latency histogram), [`progress`]
//! (the stderr bar), [`report`] (table and JSON), [`json`] (the JSON writer); [`soak`] is
//! `mabeam soak`, the same clients with injected faults.

pub mod args;
pub mod client;
pub mod gauges;
pub mod histogram;
pub mod json;
pub mod mix;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runner;
pub mod soak;

use std::process::ExitCode;

use args::{LoadArgs, RunLength};
use progress::Progress;
use runner::RunResult;

/// Runs every preset `args` asks for, prints each table as its run ends and the ratio
/// at the end, writes the JSON if asked. Exit code 0 when every run passed its check,
/// 1 when a run could not be carried out, the check failed, or the JSON could not be
/// written.
pub fn run(args: &LoadArgs) -> ExitCode {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let length = match args.length {
        RunLength::Ops(n) => format!("{n} ops each"),
        RunLength::Duration(d) => format!("{:.3} s each", d.as_secs_f64()),
    };
    println!(
        "mabeam load: {} clients, {length}, mix {}, seed {}, {cpus} cpus\n",
        args.clients, args.mix, args.seed
    );
    let progress = Progress::new(args.length, args.clients);
    let mut runs: Vec<RunResult> = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for &preset in args.preset.presets() {
        match runner::run_preset(preset, args, &progress) {
            Ok(run) => {
                println!("{}", report::table(&run));
                if !run.check.passed() {
                    eprintln!(
                        "mabeam load: the {} engine did not do what it acknowledged (see its check line)",
                        preset.name()
                    );
                    code = ExitCode::FAILURE;
                }
                runs.push(run);
            }
            Err(e) => {
                eprintln!("mabeam load: {} preset: {e}", preset.name());
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(line) = report::ratio_line(&runs) {
        println!("{line}");
    }
    if let Some(path) = &args.json {
        let text = report::json(&runs, cpus).to_pretty();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("mabeam load: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    code
}
