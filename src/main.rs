//! `mabeam`: the command-line tool of the mabeam engine. Its command, `load`, runs the
//! original MABEAM concurrency test against the sharded and the centralized engine (see
//! `mabeam load --help`). `cargo run --release` runs it with the defaults.

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
        Err(e) => {
            eprintln!("mabeam: {e}\nSee `mabeam load --help`.");
            ExitCode::from(2)
        }
    }
}
