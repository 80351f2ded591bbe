//! `mabeam`: the command-line tool of the mabeam engine (built with the default `cli`
//! feature). Its command `load` runs the original MABEAM concurrency test against the
//! sharded and the centralized engine (see `mabeam load --help`), closed loop or open
//! loop (`--rate`, `--rate-sweep`), with `--json` and an HTML `--report`;
//! `cargo run --release` runs it with the defaults. `soak` runs the same load with
//! injected faults and watches memory and queues (`mabeam soak --help`).
//!
//! Exit codes: 0 done, 1 the engine failed or lost commands, 2 bad command line,
//! 3 an output file cannot be written.

mod load;

use std::process::ExitCode;

use load::args::{self, Command};

fn main() -> ExitCode {
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Print(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Command::Load(load_args)) => load::run(&load_args),
        Ok(Command::Soak(soak_args)) => load::soak::run(&soak_args),
        Err(e) => {
            let soak = std::env::args_os().nth(1).is_some_and(|a| a == "soak");
            let command = if soak { "soak" } else { "load" };
            eprintln!("mabeam: {e}\nSee `mabeam {command} --help`.");
            ExitCode::from(2)
        }
    }
}
