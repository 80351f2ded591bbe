//! The `mabeam` binary from the outside: a tiny load run with both presets and its JSON,
//! the open loop (`--rate`) and the sweep (`--rate-sweep`), output paths checked before
//! the run, and the exit code and message of bad command lines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

fn mabeam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mabeam"))
        .args(args)
        .output()
        .expect("the mabeam binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch file path unique to this test process and `name`.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mabeam-load-cli-{}-{name}", std::process::id()))
}

/// A parsed JSON value (just enough of JSON for the tool's output).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Value>),
    Obj(BTreeMap<String, Value>),
}

impl Value {
    fn get(&self, key: &str) -> &Value {
        match self {
            Value::Obj(map) => map
                .get(key)
                .unwrap_or_else(|| panic!("key {key:?} missing in {self:?}")),
            other => panic!("{other:?} is not an object (looking for {key:?})"),
        }
    }

    fn num(&self) -> f64 {
        match self {
            Value::Num(x) => *x,
            other => panic!("{other:?} is not a number"),
        }
    }

    fn arr(&self) -> &[Value] {
        match self {
            Value::Arr(items) => items,
            other => panic!("{other:?} is not an array"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Value::Obj(map) => map.keys().map(String::as_str).collect(),
            other => panic!("{other:?} is not an object"),
        }
    }
}

/// A strict recursive-descent JSON parser: the whole input must be one value.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.at != p.s.len() {
            return Err(format!("trailing input at {}", p.at));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.at < self.s.len() && b" \t\r\n".contains(&self.s[self.at]) {
            self.at += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> Result<(), String> {
        if self.s[self.at..].starts_with(lit.as_bytes()) {
            self.at += lit.len();
            Ok(())
        } else {
            Err(format!("expected {lit:?} at {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.s.get(self.at) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'n') => self.eat("null").map(|()| Value::Null),
            Some(b't') => self.eat("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.eat("false").map(|()| Value::Bool(false)),
            Some(c) if *c == b'-' || c.is_ascii_digit() => self.number(),
            other => Err(format!("unexpected {other:?} at {}", self.at)),
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        self.eat("{")?;
        let mut map = BTreeMap::new();
        self.ws();
        if self.eat("}").is_ok() {
            return Ok(Value::Obj(map));
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(":")?;
            let value = self.value()?;
            if map.insert(key.clone(), value).is_some() {
                return Err(format!("duplicate key {key:?}"));
            }
            self.ws();
            if self.eat(",").is_err() {
                self.eat("}")?;
                return Ok(Value::Obj(map));
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.eat("[")?;
        let mut items = Vec::new();
        self.ws();
        if self.eat("]").is_ok() {
            return Ok(Value::Arr(items));
        }
        loop {
            items.push(self.value()?);
            self.ws();
            if self.eat(",").is_err() {
                self.eat("]")?;
                return Ok(Value::Arr(items));
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = *self.s.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.at..self.at + 4])
                                .map_err(|e| e.to_string())?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            out.push(char::from_u32(code).ok_or("bad \\u escape")?);
                            self.at += 4;
                        }
                        _ => return Err(format!("bad escape at {}", self.at)),
                    }
                }
                c if c < 0x20 => return Err(format!("control character at {}", self.at)),
                _ => {
                    // Copy the whole UTF-8 sequence starting here.
                    let start = self.at - 1;
                    while self.at < self.s.len() && (self.s[self.at] & 0xc0) == 0x80 {
                        self.at += 1;
                    }
                    out.push_str(
                        std::str::from_utf8(&self.s[start..self.at]).map_err(|e| e.to_string())?,
                    );
                }
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self.at < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.at]) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).map_err(|e| e.to_string())?;
        text.parse()
            .map(Value::Num)
            .map_err(|_| format!("bad number {text:?}"))
    }
}

const OPERATIONS: [&str; 4] = [
    "create_auction",
    "place_bid",
    "get_market_state",
    "get_cached_pricing",
];

#[test]
fn reserve_auctions_reaches_both_presets_configs() {
    let path = scratch("reserve.json");
    let out = mabeam(&[
        "load",
        "--clients",
        "2",
        "--ops",
        "50",
        "--reserve-auctions",
        "5000",
        "--json",
        path.to_str().expect("temp paths are UTF-8 here"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&path).expect("the JSON file was written");
    let _ = std::fs::remove_file(&path);
    let doc = Parser::parse(&json).unwrap_or_else(|e| panic!("{e}:\n{json}"));
    let runs = doc.get("runs").arr();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run.get("config").get("reserve_auctions").num(), 5000.0);
        assert_eq!(run.get("check").get("passed"), &Value::Bool(true));
    }
}

#[test]
fn a_tiny_run_of_both_presets_prints_the_table_and_writes_the_json() {
    let path = scratch("both.json");
    let out = mabeam(&[
        "load",
        "--clients",
        "2",
        "--ops",
        "50",
        "--preset",
        "both",
        "--json",
        path.to_str().expect("temp paths are UTF-8 here"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    for header in [
        "operation",
        "count",
        "avg µs",
        "min µs",
        "max µs",
        "p50 µs",
        "p95 µs",
        "p99 µs",
    ] {
        assert!(
            stdout.contains(header),
            "header {header:?} missing:\n{stdout}"
        );
    }
    for line in OPERATIONS.iter().chain(&["sharded:", "centralized:"]) {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
    assert!(stdout.contains("ops/s end to end"), "{stdout}");
    if cfg!(target_os = "linux") {
        assert_eq!(
            stdout.matches("cpu, cores' worth over the run: ").count(),
            2,
            "{stdout}"
        );
        assert_eq!(
            stdout.matches(" ns per command), other threads ").count(),
            2
        );
    }
    assert!(
        stdout.contains("success rate: 100.00% (100 of 100)"),
        "{stdout}"
    );
    assert_eq!(stdout.matches(": passed").count(), 2, "{stdout}");
    assert!(stdout.contains("ratio sharded / centralized"), "{stdout}");

    let json = std::fs::read_to_string(&path).expect("the JSON file was written");
    let _ = std::fs::remove_file(&path);
    let doc = Parser::parse(&json).unwrap_or_else(|e| panic!("{e}:\n{json}"));
    assert_eq!(
        doc.keys(),
        [
            "check_passed",
            "clients",
            "length",
            "machine",
            "mix",
            "mode",
            "rate",
            "rate_sweep",
            "ratio_sharded_over_centralized",
            "runs",
            "seed",
            "shards",
            "sweep",
            "version"
        ]
    );
    assert!(doc.get("machine").get("cpus").num() >= 1.0);
    assert_eq!(
        doc.get("version"),
        &Value::Str(env!("CARGO_PKG_VERSION").into())
    );
    assert_eq!(doc.get("mode"), &Value::Str("closed".into()));
    assert_eq!(doc.get("seed").num(), 1.0);
    assert_eq!(
        doc.get("mix"),
        &Value::Str("create_auction=1,place_bid=4,get_market_state=10,get_cached_pricing=2".into())
    );
    assert_eq!(doc.get("clients").num(), 2.0);
    assert_eq!(doc.get("length").get("ops").num(), 50.0);
    assert_eq!(doc.get("length").get("duration_s"), &Value::Null);
    assert_eq!(doc.get("shards"), &Value::Null);
    assert_eq!(doc.get("rate"), &Value::Null);
    assert_eq!(doc.get("rate_sweep"), &Value::Null);
    assert_eq!(doc.get("check_passed"), &Value::Bool(true));
    assert!(doc.get("sweep").arr().is_empty());
    assert!(doc.get("ratio_sharded_over_centralized").num() > 0.0);
    let Value::Arr(runs) = doc.get("runs") else {
        panic!("runs is not an array:\n{json}");
    };
    assert_eq!(runs.len(), 2);
    for (run, preset) in runs.iter().zip(["sharded", "centralized"]) {
        assert_eq!(run.get("preset"), &Value::Str(preset.into()));
        assert_eq!(run.get("clients").num(), 2.0);
        assert!(run.get("shards").num() >= 1.0);
        assert!(run.get("ops_per_sec").num() > 0.0);
        assert!(run.get("ops_per_sec_client_side").num() > 0.0);
        assert_eq!(run.get("success_rate").num(), 1.0);
        let ops = run.get("operations");
        assert_eq!(ops.keys().len(), 4);
        let mut total = 0.0;
        for name in OPERATIONS {
            let op = ops.get(name);
            total += op.get("count").num();
            for key in ["avg_us", "min_us", "max_us", "p50_us", "p95_us", "p99_us"] {
                // Every operation of the default mix ran in 100 operations with this
                // seed, so every statistic is a number.
                let v = op.get(key).num();
                assert!(v >= 0.0, "{preset} {name} {key} = {v}");
            }
            assert!(op.get("min_us").num() <= op.get("p50_us").num());
            assert!(op.get("p50_us").num() <= op.get("p99_us").num());
            assert!(op.get("p99_us").num() <= op.get("max_us").num());
        }
        assert_eq!(total, 100.0, "2 clients × 50 operations");
        assert_eq!(run.get("loop"), &Value::Str("closed".into()));
        assert_eq!(run.get("latency_from"), &Value::Str("call".into()));
        assert_eq!(run.get("offered_ops_per_sec"), &Value::Null);
        let check = run.get("check");
        assert_eq!(check.get("passed"), &Value::Bool(true));
        assert_eq!(
            check.get("commands_sent").num(),
            check.get("commands_applied").num()
        );
        assert_eq!(
            check.get("auctions_created").num(),
            check.get("auctions_found").num()
        );
        let config = run.get("config");
        let mode = if preset == "sharded" {
            "Sharded"
        } else {
            "Centralized"
        };
        assert_eq!(config.get("mode"), &Value::Str(mode.into()));
        assert!(config.get("mailbox_capacity").num() >= 1.0);
        assert_eq!(
            config.get("reserve_auctions").num(),
            0.0,
            "no reserve by default"
        );
        // Where the CPU went: on Linux every figure is there, and the parts add up.
        if cfg!(target_os = "linux") {
            let cpu = run.get("cpu");
            let (process, clients) = (cpu.get("process_s").num(), cpu.get("clients_s").num());
            let (shards, other) = (cpu.get("shards_s").num(), cpu.get("other_s").num());
            assert!(
                clients > 0.0 && shards >= 0.0 && other >= 0.0,
                "{preset}: {cpu:?}"
            );
            if clients + shards <= process {
                let sum = clients + shards + other;
                assert!(
                    (sum - process).abs() < 1e-5,
                    "{preset}: parts add up: {cpu:?}"
                );
            } else {
                // The shards' span is read apart from the process's: never below zero.
                assert_eq!(other, 0.0, "{preset}: {cpu:?}");
            }
            assert!(cpu.get("client_ns_per_op").num() > 0.0, "{preset}: {cpu:?}");
            let cores = cpu.get("cores_busy").num();
            let cpus = doc.get("machine").get("cpus").num();
            // Over one span for both readings, a process cannot use more than its cores
            // (a little slack for the rounding of the two clocks).
            assert!(
                cores > 0.0 && cores <= cpus + 0.05,
                "{preset}: {cores} of {cpus}"
            );
        }
        let failures = run.get("failures");
        assert_eq!(failures.keys().len(), 7);
        for kind in failures.keys() {
            assert_eq!(failures.get(kind).num(), 0.0, "{preset} {kind}");
        }
        for point in run.get("throughput").arr() {
            let pair = point.arr();
            assert_eq!(pair.len(), 2);
            assert!(pair[0].num() >= 0.0 && pair[1].num() >= 0.0);
        }
    }
    assert_eq!(
        runs[1].get("shards").num(),
        1.0,
        "centralized has one shard"
    );
}

#[test]
fn one_preset_has_a_null_ratio() {
    let path = scratch("one.json");
    let out = mabeam(&[
        "load",
        "--preset=centralized",
        "--clients=1",
        "--ops=20",
        "--mix=get_market_state=1",
        &format!("--json={}", path.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&path).expect("the JSON file was written");
    let _ = std::fs::remove_file(&path);
    let doc = Parser::parse(&json).unwrap_or_else(|e| panic!("{e}:\n{json}"));
    assert_eq!(doc.get("ratio_sharded_over_centralized"), &Value::Null);
    let Value::Arr(runs) = doc.get("runs") else {
        panic!("runs is not an array:\n{json}");
    };
    let ops = runs[0].get("operations");
    assert_eq!(ops.get("get_market_state").get("count").num(), 20.0);
    assert_eq!(ops.get("place_bid").get("count").num(), 0.0);
    assert_eq!(ops.get("place_bid").get("p50_us"), &Value::Null);
    assert!(!text(&out.stdout).contains("ratio sharded / centralized"));
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    for (args, message) in [
        (&["load", "--clients", "0"][..], "--clients"),
        (&["load", "--bogus"][..], "unknown flag --bogus"),
        (&["load", "--mix", "foo=1"][..], "unknown operation \"foo\""),
        (&["load", "--mix", "create_auction=x"][..], "create_auction"),
        (&["load", "--ops", "ten"][..], "--ops"),
        (
            &["load", "--ops", "5", "--duration", "1s"][..],
            "exclude each other",
        ),
        (&["frobnicate"][..], "unknown command"),
    ] {
        let out = mabeam(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    }
}

#[test]
fn help_explains_every_flag() {
    let top = mabeam(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    assert!(text(&top.stdout).contains("mabeam load --help"));
    let load = mabeam(&["load", "--help"]);
    assert_eq!(load.status.code(), Some(0));
    let help = text(&load.stdout);
    for flag in [
        "--preset",
        "--clients",
        "--ops",
        "--duration",
        "--mix",
        "--shards",
        "--seed",
        "--json",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn an_unwritable_output_path_fails_before_the_run_with_exit_code_3() {
    let missing_dir = scratch("no-such-dir");
    let _ = std::fs::remove_dir_all(&missing_dir);
    for flag in ["--json", "--report"] {
        let path = missing_dir.join("out");
        let out = mabeam(&[
            "load",
            "--clients",
            "1",
            "--ops",
            "10",
            flag,
            path.to_str().expect("temp paths are UTF-8 here"),
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{flag}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("cannot write"),
            "{flag}: {stderr}"
        );
        assert!(
            !text(&out.stdout).contains("sharded:"),
            "{flag}: nothing runs before the check:\n{}",
            text(&out.stdout)
        );
    }
    // A directory is not a writable file either.
    let dir = std::env::temp_dir();
    let out = mabeam(&["load", "--json", dir.to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn an_open_loop_run_offers_its_rate_and_records_it() {
    let path = scratch("rate.json");
    // 2 clients × 100 operations at 2000 ops/s: a tenth of a second.
    let out = mabeam(&[
        "load",
        "--preset=sharded",
        "--clients=2",
        "--ops=100",
        "--rate=2000",
        &format!("--json={}", path.display()),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("open loop at 2000 ops/s"), "{stdout}");
    let json = std::fs::read_to_string(&path).expect("the JSON file was written");
    let _ = std::fs::remove_file(&path);
    let doc = Parser::parse(&json).unwrap_or_else(|e| panic!("{e}:\n{json}"));
    assert_eq!(doc.get("mode"), &Value::Str("open".into()));
    assert_eq!(doc.get("rate").num(), 2000.0);
    let runs = doc.get("runs").arr();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.get("loop"), &Value::Str("open".into()));
    assert_eq!(
        run.get("latency_from"),
        &Value::Str("intended send time".into())
    );
    assert_eq!(run.get("offered_ops_per_sec").num(), 2000.0);
    assert_eq!(run.get("success_rate").num(), 1.0);
    // The schedule never sends early: client 1's last operation is due 99.5 intervals
    // (of 1 ms) after the start, so the clients cannot finish their 200 operations
    // sooner, whatever the machine.
    assert!(
        run.get("client_side_s").num() >= 0.0995,
        "{}",
        run.get("client_side_s").num()
    );
    let ops = run.get("operations");
    let total: f64 = OPERATIONS
        .iter()
        .map(|name| ops.get(name).get("count").num())
        .sum();
    assert_eq!(total, 200.0);
}

#[test]
fn a_rate_sweep_runs_every_step_for_both_presets() {
    let path = scratch("sweep.json");
    let out = mabeam(&[
        "load",
        "--clients=2",
        "--ops=100",
        "--rate-sweep=50%,100%",
        &format!("--json={}", path.display()),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("rate sweep: latency p50 / p99"), "{stdout}");
    // Two closed-loop runs and two steps per preset, each checked.
    assert_eq!(stdout.matches(": passed").count(), 6, "{stdout}");
    let json = std::fs::read_to_string(&path).expect("the JSON file was written");
    let _ = std::fs::remove_file(&path);
    let doc = Parser::parse(&json).unwrap_or_else(|e| panic!("{e}:\n{json}"));
    assert_eq!(doc.get("mode"), &Value::Str("sweep".into()));
    let percents: Vec<f64> = doc.get("rate_sweep").arr().iter().map(Value::num).collect();
    assert_eq!(percents, [50.0, 100.0]);
    let runs = doc.get("runs").arr();
    assert_eq!(runs.len(), 2, "the closed-loop maximum of each preset");
    let sweep = doc.get("sweep").arr();
    assert_eq!(sweep.len(), 4);
    for (step, (preset, percent)) in sweep.iter().zip([
        ("sharded", 50.0),
        ("sharded", 100.0),
        ("centralized", 50.0),
        ("centralized", 100.0),
    ]) {
        assert_eq!(step.get("preset"), &Value::Str(preset.into()));
        assert_eq!(step.get("percent_of_max").num(), percent);
        assert_eq!(step.get("loop"), &Value::Str("open".into()));
        let max = runs
            .iter()
            .find(|r| r.get("preset") == &Value::Str(preset.into()))
            .expect("a closed-loop run per preset")
            .get("ops_per_sec")
            .num();
        let offered = step.get("offered_ops_per_sec").num();
        let expected = (max * percent / 100.0).round().max(1.0);
        // The JSON rounds the maximum; the step's rate is of the unrounded one.
        assert!(
            (offered - expected).abs() <= 1.0,
            "{preset} {percent}%: {offered} vs {expected}"
        );
        assert_eq!(step.get("check").get("passed"), &Value::Bool(true));
        for name in OPERATIONS {
            let op = step.get("operations").get(name);
            if op.get("count").num() > 0.0 {
                assert!(op.get("p50_us").num() <= op.get("p99_us").num());
            }
        }
    }
}
