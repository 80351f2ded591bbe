//! The state file (`EngineState::write_to` / `read_from`, `to_bytes` / `from_bytes`):
//! round trips, and every corruption, truncation and foreign version refused with its
//! typed error, never a panic.

mod common;

use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionKind, AuctionSpec, Bid};
use mabeam::market::MarketUpdate;
use mabeam::registry::MetadataSpec;
use mabeam::state::{EngineState, StateFileError, FORMAT_VERSION, MAGIC};
use mabeam::Engine;

/// A small state with something of most parts in it.
fn small_state() -> EngineState {
    let engine = Engine::start(common::config(2)).unwrap();
    // Held until the engine has shut down (dropping it before would remove the entry).
    let lease = engine
        .registry()
        .register("a", 1, &MetadataSpec::with_capabilities(&["c"]))
        .unwrap();
    engine.agents().update(3, AgentState::default()).unwrap();
    let id = engine
        .auctions()
        .create(AuctionSpec {
            kind: AuctionKind::English {
                reserve: 1,
                min_increment: 1,
            },
            seller: 1,
            category: 2,
            deadline: None,
            buy_now: None,
        })
        .wait()
        .unwrap()
        .unwrap();
    engine
        .auctions()
        .bid(
            id,
            Bid {
                bidder: 5,
                amount: 3,
                bundle: 0,
            },
        )
        .wait()
        .unwrap()
        .unwrap();
    engine.auctions().close(id).wait().unwrap().unwrap();
    engine
        .market()
        .update(MarketUpdate {
            key: 9,
            price: 4,
            volume: 2,
        })
        .unwrap();
    engine.barriers().create(1, 2).unwrap();
    engine
        .events()
        .publish("host.x", b"payload", Some(1))
        .unwrap();
    engine.flush().unwrap();
    let state = engine.export().unwrap();
    engine.shutdown();
    drop(lease);
    state
}

#[test]
fn a_state_round_trips_through_bytes_a_writer_and_a_file() {
    let state = small_state();
    assert!(!state.auctions.is_empty() && !state.events.is_empty());
    let bytes = state.to_bytes();
    assert_eq!(bytes[..8], MAGIC);
    assert_eq!(EngineState::from_bytes(&bytes).unwrap(), state);
    let mut buf = Vec::new();
    state.write(&mut buf).unwrap();
    assert_eq!(buf, bytes);
    assert_eq!(EngineState::read(&mut buf.as_slice()).unwrap(), state);
    let path = std::env::temp_dir().join(format!("mabeam-state-{}.bin", std::process::id()));
    state.write_to(&path).unwrap();
    let read = EngineState::read_from(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(read.unwrap(), state);
}

#[test]
fn every_truncation_is_refused_as_truncated_or_bad_magic() {
    let bytes = small_state().to_bytes();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        match EngineState::from_bytes(cut) {
            Err(StateFileError::Truncated) => {}
            other => panic!("truncated to {len} of {}: {other:?}", bytes.len()),
        }
        match EngineState::read(&mut &cut[..]) {
            Err(StateFileError::Truncated) => {}
            other => panic!("read truncated to {len}: {other:?}"),
        }
    }
}

#[test]
fn every_single_byte_corruption_is_refused_with_its_error() {
    let bytes = small_state().to_bytes();
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            let r = EngineState::from_bytes(&bad);
            match (at, r) {
                (0..=7, Err(StateFileError::BadMagic)) => {}
                (8..=11, Err(StateFileError::UnknownVersion { found })) => {
                    assert_ne!(found, FORMAT_VERSION)
                }
                // The length: the file is then too short or too long for it.
                (12..=19, Err(StateFileError::Truncated | StateFileError::Corrupt { .. })) => {}
                (_, Err(StateFileError::Checksum)) if at >= 20 => {}
                (at, other) => panic!("byte {at} ^ {flip:#x}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_bumped_version_is_refused_as_unknown() {
    let mut bytes = small_state().to_bytes();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert!(matches!(
        EngineState::from_bytes(&bytes),
        Err(StateFileError::UnknownVersion { found }) if found == FORMAT_VERSION + 1
    ));
}

/// A file whose checksum matches but whose body lies (a writer bug, or a crafted file):
/// huge length fields do not allocate, bad tags are refused.
#[test]
fn a_well_checksummed_lying_body_is_corrupt_not_a_panic_or_an_allocation() {
    fn with_body(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in &out[8..] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.extend_from_slice(&h.to_le_bytes());
        out
    }
    // taken_at, then a capability list claiming u32::MAX names.
    let mut body = 0u64.to_le_bytes().to_vec();
    body.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        EngineState::from_bytes(&with_body(&body)),
        Err(StateFileError::Corrupt { .. })
    ));
    // An empty body.
    assert!(matches!(
        EngineState::from_bytes(&with_body(&[])),
        Err(StateFileError::Corrupt { .. })
    ));
    // Every prefix of a real body, re-checksummed: corrupt, never a panic.
    let bytes = small_state().to_bytes();
    let body = &bytes[20..bytes.len() - 8];
    for len in 0..body.len() {
        assert!(matches!(
            EngineState::from_bytes(&with_body(&body[..len])),
            Err(StateFileError::Corrupt { .. })
        ));
    }
    // A length field of u64::MAX read from a stream allocates nothing up front.
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        EngineState::read(&mut header.as_slice()),
        Err(StateFileError::Truncated)
    ));
}

/// With the `serde` feature, the state and every part implement `Serialize` and
/// `Deserialize`: checked at compile time (this test only builds if they do); no format
/// crate is a dependency, so no encoding round trip is run here.
#[cfg(feature = "serde")]
#[test]
fn the_state_is_serde_with_the_feature() {
    fn bounds<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    bounds::<EngineState>();
    bounds::<mabeam::state::EventPayload>();
    bounds::<mabeam::state::RegistryRecord>();
    let state = small_state();
    assert!(!state.registry.is_empty());
}
