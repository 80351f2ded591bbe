//! `mabeam`: a small demonstration of the engine (the load tool replaces it).

use std::time::Instant;

use mabeam::agents::{AgentState, AgentStatus};
use mabeam::registry::MetadataSpec;
use mabeam::{Config, Engine};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::start(Config::default())?;
    let start = engine.start_report().clone();
    println!(
        "started {} shards (pinned: {:?}){}",
        start.shards,
        start.pinned,
        if start.pin_errors.is_empty() {
            String::new()
        } else {
            format!(", pin errors: {:?}", start.pin_errors)
        }
    );

    let registry = engine.registry();
    let leases: Vec<_> = (0..1000)
        .map(|i| {
            let caps: &[&str] = if i % 2 == 0 {
                &["plan", "bid"]
            } else {
                &["bid"]
            };
            registry.register(
                &format!("agent-{i}"),
                i,
                &MetadataSpec::with_capabilities(caps),
            )
        })
        .collect::<Result<_, _>>()?;
    println!(
        "registered {} agents; {} can plan",
        registry.count()?,
        registry.find_by_capability(&["plan"])?.len()
    );

    let t = Instant::now();
    let mut writer = engine.batch_writer(256);
    let updates = 1_000_000u64;
    for i in 0..updates {
        writer.update_agent(
            i % 1000,
            AgentState {
                status: AgentStatus::Busy,
                load: i,
                ..AgentState::default()
            },
        )?;
    }
    writer.flush()?;
    engine.flush()?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "applied {updates} batched agent updates in {:.1} ms ({:.1} M/s end to end)",
        secs * 1e3,
        updates as f64 / secs / 1e6
    );

    let t = Instant::now();
    let agents = engine.agents();
    let mut found = 0u64;
    let reads = 1_000_000u64;
    for i in 0..reads {
        found += u64::from(agents.get(i % 1000)?.is_some());
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{reads} snapshot reads ({found} hits) in {:.1} ms ({:.1} M/s on one thread)",
        secs * 1e3,
        reads as f64 / secs / 1e6
    );

    drop(leases);
    engine.flush()?;
    println!("released every lease; registry count {}", registry.count()?);
    let report = engine.shutdown();
    println!("shutdown: {} commands applied per shard", {
        let per: Vec<_> = report.shards.iter().map(|s| s.applied).collect();
        format!("{per:?}")
    });
    Ok(())
}
