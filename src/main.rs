//! `mabeam`: the command-line tool of the mabeam engine. Its command `load` runs the
//! original MABEAM concurrency test against the sharded and the centralized engine (see
//! `mabeam load --help`); `cargo run --release` runs it with the defaults. `soak` runs
//! the same load with injected faults and watches memory and queues (`mabeam soak
//! --help`).

mod load;

use std::process::ExitCode;

use load::args::{self, Command};

fn main() -> ExitCode {
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", args::help());
            ExitCode::SUCCESS
        }
        Ok(Command::LoadHelp) => {
            print!("{}", args::load_help());
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("mabeam {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Load(load_args)) => load::run(&load_args),
        Ok(Command::SoakHelp) => {
            print!("{}", args::soak_help());
            ExitCode::SUCCESS
        }
        Ok(Command::Soak(soak_args)) => load::soak::run(&soak_args),
        Err(e) => {
            let soak = std::env::args_os().nth(1).is_some_and(|a| a == "soak");
            let command = if soak { "soak" } else { "load" };
            eprintln!("mabeam: {e}\nSee `mabeam {command} --help`.");
            ExitCode::from(2)
        }
    }
}
