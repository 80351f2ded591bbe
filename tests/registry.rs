//! Registry semantics through the public API.

mod common;

use mabeam::registry::{Field, Filter, Health, MetadataSpec, Op, RegistryError, MAX_CAPABILITIES};
use mabeam::{Config, Engine, Error};

fn spec(caps: &[&str], health: Health, load: u64, node: u32) -> MetadataSpec {
    MetadataSpec {
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        health,
        load,
        node,
    }
}

#[test]
fn register_lookup_and_release() {
    let engine = common::engine(2);
    let reg = engine.registry();
    let lease = reg
        .register("alpha", 11, &spec(&["plan"], Health::Healthy, 3, 1))
        .unwrap();
    let e = reg.lookup("alpha").unwrap().unwrap();
    assert_eq!(e.handle, 11);
    assert_eq!(e.name.as_str(), "alpha");
    assert_eq!(e.metadata.load, 3);
    assert_eq!(reg.capability_names(&e.metadata.capabilities), vec!["plan"]);
    assert_eq!(reg.lookup("beta").unwrap(), None);
    assert_eq!(reg.count().unwrap(), 1);
    lease.release().unwrap();
    assert_eq!(
        reg.lookup("alpha").unwrap(),
        None,
        "release waits for removal"
    );
    assert_eq!(reg.count().unwrap(), 0);
}

#[test]
fn duplicate_names_are_refused() {
    let engine = common::engine(2);
    let reg = engine.registry();
    let _lease = reg.register("dup", 1, &MetadataSpec::default()).unwrap();
    assert_eq!(
        reg.register("dup", 2, &MetadataSpec::default())
            .unwrap_err(),
        RegistryError::AlreadyRegistered
    );
    assert_eq!(reg.lookup("dup").unwrap().unwrap().handle, 1);
}

#[test]
fn dropped_lease_removes_its_entry() {
    let engine = common::engine(2);
    let reg = engine.registry();
    {
        let _lease = reg
            .register("short-lived", 5, &MetadataSpec::default())
            .unwrap();
        assert!(reg.lookup("short-lived").unwrap().is_some());
    }
    engine.flush().unwrap();
    assert_eq!(reg.lookup("short-lived").unwrap(), None);
    // The name is free again.
    let _again = reg
        .register("short-lived", 6, &MetadataSpec::default())
        .unwrap();
}

#[test]
fn only_the_lease_changes_its_entry() {
    let engine = common::engine(2);
    let reg = engine.registry();
    let lease = reg.register("owned", 1, &MetadataSpec::default()).unwrap();
    let updated = lease
        .update_metadata(&spec(&["x", "y"], Health::Degraded, 9, 4))
        .unwrap();
    assert_eq!(updated.metadata.health, Health::Degraded);
    let seen = reg.lookup("owned").unwrap().unwrap();
    assert_eq!(seen, updated, "update_metadata returns after publication");
    // A second registration of the same name cannot take it over.
    assert!(reg.register("owned", 2, &MetadataSpec::default()).is_err());
    assert_eq!(reg.lookup("owned").unwrap().unwrap().handle, 1);
}

#[test]
fn capability_search_and_queries() {
    let engine = common::engine(2);
    let reg = engine.registry();
    let _leases: Vec<_> = (0..40u64)
        .map(|i| {
            let caps: &[&str] = match i % 3 {
                0 => &["plan", "bid"],
                1 => &["bid"],
                _ => &[],
            };
            let health = [Health::Healthy, Health::Degraded, Health::Unhealthy][(i % 3) as usize];
            reg.register(&format!("a{i}"), i, &spec(caps, health, i, (i % 4) as u32))
                .unwrap()
        })
        .collect();
    let names = |mut v: Vec<mabeam::registry::Entry>| {
        v.sort_by_key(|e| e.handle);
        v.into_iter().map(|e| e.handle).collect::<Vec<_>>()
    };
    let plan_bid = names(reg.find_by_capability(&["plan", "bid"]).unwrap());
    assert_eq!(plan_bid, (0..40).filter(|i| i % 3 == 0).collect::<Vec<_>>());
    let bid = names(reg.find_by_capability(&["bid"]).unwrap());
    assert_eq!(bid, (0..40).filter(|i| i % 3 != 2).collect::<Vec<_>>());
    assert!(reg.find_by_capability(&["unknown"]).unwrap().is_empty());
    assert_eq!(reg.find_by_capability::<&str>(&[]).unwrap().len(), 40);

    let q = |filters: &[Filter]| names(reg.query(filters).unwrap());
    let all: Vec<u64> = (0..40).collect();
    let expect =
        |p: &dyn Fn(u64) -> bool| all.iter().copied().filter(|&i| p(i)).collect::<Vec<_>>();
    let h = |x: Health| x.code();
    assert_eq!(
        q(&[Filter::new(Field::Health, Op::Eq(h(Health::Healthy)))]),
        expect(&|i| i % 3 == 0)
    );
    assert_eq!(
        q(&[Filter::new(Field::Health, Op::Neq(h(Health::Healthy)))]),
        expect(&|i| i % 3 != 0)
    );
    assert_eq!(
        q(&[Filter::new(Field::Load, Op::Gt(30))]),
        expect(&|i| i > 30)
    );
    assert_eq!(
        q(&[Filter::new(Field::Load, Op::Lt(5))]),
        expect(&|i| i < 5)
    );
    assert_eq!(
        q(&[Filter::new(Field::Load, Op::Gte(30))]),
        expect(&|i| i >= 30)
    );
    assert_eq!(
        q(&[Filter::new(Field::Load, Op::Lte(5))]),
        expect(&|i| i <= 5)
    );
    assert_eq!(
        q(&[Filter::new(Field::Node, Op::In(vec![1, 2]))]),
        expect(&|i| i % 4 == 1 || i % 4 == 2)
    );
    assert_eq!(
        q(&[Filter::new(Field::Node, Op::NotIn(vec![1, 2]))]),
        expect(&|i| i % 4 == 0 || i % 4 == 3)
    );
    assert_eq!(
        q(&[
            Filter::new(Field::Load, Op::Gte(10)),
            Filter::new(Field::Health, Op::Eq(h(Health::Degraded)))
        ]),
        expect(&|i| i >= 10 && i % 3 == 1)
    );
    assert_eq!(reg.count().unwrap(), 40);
}

#[test]
fn bad_input_gets_its_error_and_the_engine_goes_on() {
    let engine = common::engine(2);
    let reg = engine.registry();
    let long = "n".repeat(65);
    assert_eq!(
        reg.register("", 1, &MetadataSpec::default()).unwrap_err(),
        RegistryError::InvalidName { len: 0 }
    );
    assert_eq!(
        reg.register(&long, 1, &MetadataSpec::default())
            .unwrap_err(),
        RegistryError::InvalidName { len: 65 }
    );
    assert_eq!(
        reg.lookup(&long).unwrap_err(),
        RegistryError::InvalidName { len: 65 }
    );
    assert_eq!(
        reg.register("x", 1, &MetadataSpec::with_capabilities(&[""]))
            .unwrap_err(),
        RegistryError::InvalidCapability
    );
    // 64 bytes of multi-byte UTF-8 is fine.
    let ok = "é".repeat(32);
    let _lease = reg.register(&ok, 1, &MetadataSpec::default()).unwrap();
    assert!(reg.lookup(&ok).unwrap().is_some());
}

#[test]
fn too_many_capabilities_is_refused() {
    let engine = common::engine(1);
    let reg = engine.registry();
    let caps: Vec<String> = (0..mabeam::registry::MAX_CAPABILITIES)
        .map(|i| format!("c{i}"))
        .collect();
    let _lease = reg
        .register("many", 1, &MetadataSpec::with_capabilities(&caps))
        .unwrap();
    assert_eq!(
        reg.register(
            "more",
            1,
            &MetadataSpec::with_capabilities(&["one-too-many"])
        )
        .unwrap_err(),
        RegistryError::TooManyCapabilities
    );
    let e = reg.lookup("many").unwrap().unwrap();
    assert_eq!(
        e.metadata.capabilities.len(),
        mabeam::registry::MAX_CAPABILITIES
    );
}

#[test]
fn a_full_shard_refuses_registrations() {
    let engine = Engine::start(common::config(1).with_registry_capacity(3)).unwrap();
    let reg = engine.registry();
    let leases: Vec<_> = (0..3)
        .map(|i| {
            reg.register(&format!("r{i}"), i, &MetadataSpec::default())
                .unwrap()
        })
        .collect();
    assert_eq!(
        reg.register("r3", 3, &MetadataSpec::default()).unwrap_err(),
        RegistryError::Full { capacity: 3 }
    );
    drop(leases);
    engine.flush().unwrap();
    reg.register("r3", 3, &MetadataSpec::default())
        .unwrap()
        .release()
        .unwrap();
}

/// 1,000 threads register, look up and release concurrently: no entry is lost (each
/// thread sees its own entry right after registering) and none is left behind.
#[test]
fn a_thousand_threads_register_lookup_and_release() {
    let engine = common::engine(2);
    let reg = engine.registry();
    std::thread::scope(|s| {
        for t in 0..1000u64 {
            s.spawn(move || {
                let name = format!("thread-{t}");
                let lease = reg
                    .register(&name, t, &MetadataSpec::with_capabilities(&["worker"]))
                    .unwrap();
                let e = reg
                    .lookup(&name)
                    .unwrap()
                    .expect("own entry visible after register");
                assert_eq!(e.handle, t);
                // Everybody else's entries are either there with their own handle, or not.
                for other in [t.wrapping_sub(1), t + 1] {
                    if let Some(e) = reg.lookup(&format!("thread-{other}")).unwrap() {
                        assert_eq!(e.handle, other, "no phantom or mixed-up entry");
                    }
                }
                lease.release().unwrap();
                assert_eq!(reg.lookup(&name).unwrap(), None);
            });
        }
    });
    engine.flush().unwrap();
    assert_eq!(reg.count().unwrap(), 0);
    assert!(reg.find_by_capability(&["worker"]).unwrap().is_empty());
}

#[test]
fn centralized_mode_has_the_same_semantics() {
    let engine = Engine::start(Config::centralized().with_pin_threads(false)).unwrap();
    let reg = engine.registry();
    let lease = reg
        .register("c", 7, &spec(&["plan"], Health::Healthy, 1, 0))
        .unwrap();
    assert_eq!(reg.lookup("c").unwrap().unwrap().handle, 7);
    assert_eq!(reg.find_by_capability(&["plan"]).unwrap().len(), 1);
    assert_eq!(reg.count().unwrap(), 1);
    drop(lease);
    assert_eq!(
        reg.lookup("c").unwrap(),
        None,
        "a round trip queues behind the release"
    );
}

#[test]
fn after_shutdown_every_call_is_refused() {
    let engine = common::engine(1);
    let lease = engine
        .registry()
        .register("x", 1, &MetadataSpec::default())
        .unwrap();
    let report = engine.shutdown();
    assert_eq!(report.shards.len(), 1);
    assert_eq!(
        lease.update_metadata(&MetadataSpec::default()).unwrap_err(),
        RegistryError::Engine(Error::ShutDown)
    );
    drop(lease); // nothing left to remove, and no hang
}

/// The name rule: 1 to 64 bytes of UTF-8 with no control character (`char::is_control`:
/// C0, DEL, C1). Spaces and other non-control whitespace are allowed; tab, newline and
/// carriage return are control characters and refused. Capability names follow the same rule.
#[test]
fn names_with_control_characters_are_refused() {
    let engine = common::engine(2);
    let reg = engine.registry();
    let accepted = [
        "a",
        "worker 1",
        "a.b-c_d",
        "é",
        "\u{3000}wide space",
        "ab\u{a0}c",
    ];
    for (i, name) in accepted.iter().enumerate() {
        let lease = reg
            .register(name, i as u64, &MetadataSpec::default())
            .unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
        assert_eq!(reg.lookup(name).unwrap().unwrap().handle, i as u64);
        drop(lease);
        let cap = reg.register("holder", 1, &MetadataSpec::with_capabilities(&[name]));
        assert!(cap.is_ok(), "capability {name:?} refused: {cap:?}");
    }
    let refused: [(&str, usize); 7] = [
        ("a\0b\n c", 1),
        ("\n", 0),
        ("tab\there", 3),
        ("cr\r", 2),
        ("del\u{7f}", 3),
        ("c1\u{85}", 2),
        ("é\u{1b}[0m", 2),
    ];
    for (name, at) in refused {
        assert_eq!(
            reg.register(name, 1, &MetadataSpec::default()).unwrap_err(),
            RegistryError::ControlCharacter { at },
            "name {name:?}"
        );
        assert_eq!(
            reg.lookup(name).unwrap_err(),
            RegistryError::ControlCharacter { at },
            "lookup {name:?}"
        );
        assert_eq!(
            reg.register("x", 1, &MetadataSpec::with_capabilities(&[name]))
                .unwrap_err(),
            RegistryError::InvalidCapability,
            "capability {name:?}"
        );
    }
    engine.flush().unwrap();
    assert_eq!(reg.count().unwrap(), 0);
}

/// Defect 4 of the reliability issue: capability names were interned on the host before
/// the shard could refuse the registration, and never freed, so the engine's budget of
/// `MAX_CAPABILITIES` names ran out after 256 fresh names whatever became of the entries
/// (this test failed at its first few hundred iterations). Names now hold a reference
/// per stored entry and free their id when the last one goes.
fn churn_fresh_capability_names(engine: &Engine, rounds: usize) {
    let reg = engine.registry();
    let holder = reg
        .register("taken", 1, &MetadataSpec::with_capabilities(&["base"]))
        .unwrap();
    let mut dropped = 0;
    for i in 0..rounds {
        // Refused by the shard (the name is taken): its fresh capability must not stay.
        let refused = MetadataSpec::with_capabilities(&[format!("refused-{i}"), "base".into()]);
        assert_eq!(
            reg.register("taken", 2, &refused).map(|_| ()),
            Err(RegistryError::AlreadyRegistered),
            "round {i}"
        );
        // Accepted, then updated to another fresh name, then removed.
        let fresh = MetadataSpec::with_capabilities(&[format!("fresh-{i}")]);
        let lease = reg
            .register(&format!("agent-{i}"), i as u64, &fresh)
            .unwrap_or_else(|e| panic!("round {i}: {e:?}"));
        let updated = MetadataSpec::with_capabilities(&[format!("updated-{i}"), "base".into()]);
        let entry = lease.update_metadata(&updated).unwrap();
        let mut names = reg.capability_names(&entry.metadata.capabilities);
        names.sort();
        assert_eq!(names, vec!["base".to_string(), format!("updated-{i}")]);
        if i % 2 == 0 {
            lease.release().unwrap();
        } else {
            drop(lease); // removal without waiting; flushed below
            dropped += 1;
            if dropped % 32 == 0 {
                engine.flush().unwrap();
            }
        }
    }
    engine.flush().unwrap();
    assert_eq!(reg.count().unwrap(), 1);
    assert_eq!(reg.find_by_capability(&["base"]).unwrap().len(), 1);
    assert!(reg.find_by_capability(&["fresh-0"]).unwrap().is_empty());
    // Room for a full budget of new names again, but the one `holder` still uses.
    let many: Vec<String> = (1..MAX_CAPABILITIES)
        .map(|i| format!("after-{i}"))
        .collect();
    let lease = reg
        .register("many", 3, &MetadataSpec::with_capabilities(&many))
        .expect("every freed name gave its id back");
    assert_eq!(
        reg.find_by_capability(&["after-1", "after-255"])
            .unwrap()
            .len(),
        1
    );
    lease.release().unwrap();
    holder.release().unwrap();
}

#[test]
fn churning_fresh_capability_names_never_exhausts_the_budget() {
    // 100,000 rounds (the issue's figure); the sanitizers run fewer (MABEAM_CHURN_ROUNDS).
    let rounds = std::env::var("MABEAM_CHURN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    churn_fresh_capability_names(&common::engine(3), rounds);
}

#[test]
fn churning_fresh_capability_names_never_exhausts_the_budget_centralized() {
    let engine = Engine::start(Config::centralized()).unwrap();
    churn_fresh_capability_names(&engine, 10_000);
}
