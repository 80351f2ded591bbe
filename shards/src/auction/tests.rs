//! Deterministic state-machine tests of every auction rule, and of the book.

use super::*;

/// The auction id whose raw word is `n` (the tests pick small ids).
const fn aid(n: u64) -> AuctionId {
    AuctionId::from_raw(n)
}

/// Ids for patterns (a `const` matches structurally, a call cannot appear in one).
const ID1: AuctionId = aid(1);
const ID2: AuctionId = aid(2);
const ID3: AuctionId = aid(3);

const SELLER: u64 = 1;

fn spec(kind: AuctionKind) -> AuctionSpec {
    AuctionSpec {
        kind,
        seller: SELLER,
        category: 3,
        deadline: None,
        buy_now: None,
    }
}

fn with_deadline(kind: AuctionKind, deadline: u64) -> AuctionSpec {
    AuctionSpec {
        deadline: Some(deadline),
        ..spec(kind)
    }
}

fn bid(bidder: u64, amount: Amount) -> Bid {
    Bid {
        bidder,
        amount,
        bundle: 0,
    }
}

fn bundle_bid(bidder: u64, amount: Amount, bundle: u64) -> Bid {
    Bid {
        bidder,
        amount,
        bundle,
    }
}

fn english(reserve: Amount, min_increment: Amount) -> AuctionKind {
    AuctionKind::English {
        reserve,
        min_increment,
    }
}

fn dutch(start: Amount, step: Amount, tick_nanos: u64, reserve: Amount) -> AuctionKind {
    AuctionKind::Dutch {
        start,
        step,
        tick_nanos,
        reserve,
    }
}

fn sold(bidder: u64, price: Amount) -> Settlement {
    Settlement::Sold(Award {
        bidder,
        bundle: 0,
        price,
    })
}

fn round_trips(status: AuctionStatus) {
    assert_eq!(AuctionStatus::from_words(&status.to_words()), Some(status));
}

// ---------------------------------------------------------------- specs

#[test]
fn bad_specs_are_refused_with_the_reason() {
    let cases = [
        (spec(english(10, 0)), SpecError::ZeroIncrement),
        (spec(dutch(100, 0, 10, 0)), SpecError::ZeroStep),
        (spec(dutch(100, 1, 0, 0)), SpecError::ZeroTick),
        (spec(dutch(100, 1, 10, 101)), SpecError::StartBelowReserve),
        (
            spec(AuctionKind::Combinatorial {
                items: 0,
                reserve: 0,
            }),
            SpecError::InvalidItems,
        ),
        (
            spec(AuctionKind::Combinatorial {
                items: 65,
                reserve: 0,
            }),
            SpecError::InvalidItems,
        ),
        (
            AuctionSpec {
                buy_now: Some(99),
                ..spec(english(100, 1))
            },
            SpecError::BuyNowBelowReserve,
        ),
        (
            AuctionSpec {
                buy_now: Some(0),
                ..spec(english(0, 1))
            },
            SpecError::BuyNowBelowReserve,
        ),
        (
            AuctionSpec {
                buy_now: Some(500),
                ..spec(AuctionKind::Vickrey { reserve: 1 })
            },
            SpecError::BuyNowNotSupported,
        ),
        (
            AuctionSpec {
                buy_now: Some(500),
                ..spec(AuctionKind::SealedFirstPrice { reserve: 1 })
            },
            SpecError::BuyNowNotSupported,
        ),
        (
            AuctionSpec {
                buy_now: Some(500),
                ..spec(dutch(100, 1, 1, 0))
            },
            SpecError::BuyNowNotSupported,
        ),
        (
            AuctionSpec {
                buy_now: Some(500),
                ..spec(AuctionKind::Combinatorial {
                    items: 2,
                    reserve: 0,
                })
            },
            SpecError::BuyNowNotSupported,
        ),
        (
            with_deadline(english(1, 1), 100),
            SpecError::DeadlineNotInFuture,
        ),
        (
            with_deadline(english(1, 1), 99),
            SpecError::DeadlineNotInFuture,
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(
            Auction::new(aid(1), spec, 100).err(),
            Some(AuctionError::InvalidSpec(expected)),
            "{spec:?}"
        );
    }
    // Edge cases that are fine.
    assert!(Auction::new(aid(1), spec(dutch(100, 1, 1, 100)), 0).is_ok());
    assert!(Auction::new(aid(1), with_deadline(english(1, 1), 101), 100).is_ok());
    let ok = AuctionSpec {
        buy_now: Some(100),
        ..spec(english(100, 1))
    };
    assert!(Auction::new(aid(1), ok, 0).is_ok());
    let items64 = AuctionKind::Combinatorial {
        items: 64,
        reserve: 0,
    };
    assert!(Auction::new(aid(1), spec(items64), 0).is_ok());
}

#[test]
fn errors_display_what_was_wrong() {
    let e = AuctionError::BidTooLow { minimum: 110 };
    assert_eq!(e.to_string(), "bid too low: the minimum is 110");
    let e = AuctionError::InvalidSpec(SpecError::ZeroTick);
    assert!(e.to_string().contains("tick_nanos"));
    assert!(std::error::Error::source(&e).is_some());
    let e = AuctionError::NotOpen {
        state: AuctionState::Expired,
    };
    assert_eq!(e.to_string(), "auction is not open (it is expired)");
}

// ---------------------------------------------------------------- common bid checks

#[test]
fn seller_zero_amount_and_bundles_are_checked_for_every_kind() {
    let kinds = [
        english(0, 1),
        dutch(10, 1, 1, 0),
        AuctionKind::SealedFirstPrice { reserve: 0 },
        AuctionKind::Vickrey { reserve: 0 },
    ];
    for kind in kinds {
        let mut a = Auction::new(aid(1), spec(kind), 0).unwrap();
        assert_eq!(a.bid(bid(SELLER, 50), 0), Err(AuctionError::SellerBid));
        assert_eq!(
            a.bid(bundle_bid(2, 50, 1), 0),
            Err(AuctionError::InvalidBundle { bundle: 1 })
        );
        assert!(matches!(
            a.bid(bid(2, 0), 0),
            Err(AuctionError::BidTooLow { minimum }) if minimum >= 1
        ));
        assert_eq!(a.bid_count(), 0, "{kind:?}: refused bids change nothing");
    }
}

// ---------------------------------------------------------------- English

#[test]
fn english_reserve_and_increment() {
    let mut a = Auction::new(aid(9), spec(english(100, 10)), 0).unwrap();
    assert_eq!(a.status(0).min_bid, Some(100));
    assert_eq!(
        a.bid(bid(2, 99), 1),
        Err(AuctionError::BidTooLow { minimum: 100 })
    );
    let receipt = a.bid(bid(2, 100), 2).unwrap();
    assert_eq!(
        receipt,
        BidReceipt {
            auction: aid(9),
            bidder: 2,
            amount: 100,
            accepted_at: 2,
            closed: None
        }
    );
    assert_eq!(
        a.bid(bid(3, 109), 3),
        Err(AuctionError::BidTooLow { minimum: 110 })
    );
    a.bid(bid(3, 110), 4).unwrap();
    let s = a.status(5);
    assert_eq!(
        (s.price, s.leader, s.min_bid, s.bid_count),
        (Some(110), Some(3), Some(120), 2)
    );
    assert_eq!(s.winner, None);
    round_trips(s);
    // The leader may raise its own bid; a jump above the minimum is fine.
    a.bid(bid(3, 500), 6).unwrap();
    let outcome = a.close(7).unwrap();
    assert_eq!(outcome.settlement, sold(3, 500));
    assert_eq!(outcome.cause, CloseCause::Closed);
    assert_eq!(outcome.closed_at, 7);
    let s = a.status(8);
    assert_eq!(s.state, AuctionState::Closed);
    assert_eq!(
        (s.winner, s.leader, s.price, s.winning_bids),
        (Some(3), Some(3), Some(500), 1)
    );
    assert_eq!((s.min_bid, s.closed_at, s.bid_count), (None, Some(7), 3));
    round_trips(s);
}

#[test]
fn english_zero_reserve_still_needs_a_positive_bid() {
    let mut a = Auction::new(aid(1), spec(english(0, 5)), 0).unwrap();
    assert_eq!(
        a.bid(bid(2, 0), 0),
        Err(AuctionError::BidTooLow { minimum: 1 })
    );
    a.bid(bid(2, 1), 0).unwrap();
    assert_eq!(a.status(0).min_bid, Some(6));
}

#[test]
fn english_close_without_bids_has_no_winner() {
    let mut a = Auction::new(aid(1), spec(english(10, 1)), 0).unwrap();
    let outcome = a.close(5).unwrap();
    assert_eq!(
        outcome.settlement,
        Settlement::NoWinner(NoWinnerReason::NoBids)
    );
    assert_eq!(a.state(), AuctionState::Closed);
    assert_eq!(a.status(5).price, None);
    assert_eq!(
        a.close(6),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
    assert_eq!(
        a.bid(bid(2, 50), 6),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
}

#[test]
fn english_buy_now_closes_at_the_buy_now_price() {
    let s = AuctionSpec {
        buy_now: Some(300),
        ..spec(english(100, 50))
    };
    let mut a = Auction::new(aid(4), s, 0).unwrap();
    a.bid(bid(2, 280), 1).unwrap();
    // 300 is below highest + increment (330) but takes the buy-now offer.
    let receipt = a.bid(bid(3, 300), 2).unwrap();
    let outcome = receipt.closed.expect("buy-now closes the auction");
    assert_eq!(outcome.cause, CloseCause::BuyNow);
    assert_eq!(outcome.settlement, sold(3, 300));
    assert_eq!(a.state(), AuctionState::Closed);
    assert_eq!(a.outcome(), Some(&outcome));

    // A bid above buy-now pays buy-now.
    let mut a = Auction::new(aid(5), s, 0).unwrap();
    let receipt = a.bid(bid(2, 1_000), 1).unwrap();
    assert_eq!(receipt.amount, 1_000);
    assert_eq!(receipt.closed.unwrap().settlement, sold(2, 300));
    assert_eq!(
        a.bid(bid(3, 2_000), 2),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
}

#[test]
fn english_increment_overflow_is_an_error_not_a_wrap() {
    let mut a = Auction::new(aid(1), spec(english(1, 10)), 0).unwrap();
    a.bid(bid(2, u64::MAX - 5), 0).unwrap();
    assert_eq!(a.bid(bid(3, u64::MAX), 1), Err(AuctionError::Overflow));
    assert_eq!(a.status(1).min_bid, None);
    assert_eq!(a.status(1).leader, Some(2));
    round_trips(a.status(1));

    // A buy-now offer can still be taken when the increment rule overflows.
    let s = AuctionSpec {
        buy_now: Some(u64::MAX),
        ..spec(english(1, 10))
    };
    let mut a = Auction::new(aid(1), s, 0).unwrap();
    a.bid(bid(2, u64::MAX - 5), 0).unwrap();
    let outcome = a.bid(bid(3, u64::MAX), 1).unwrap().closed.unwrap();
    assert_eq!(outcome.settlement, sold(3, u64::MAX));
}

// ---------------------------------------------------------------- Dutch

#[test]
fn dutch_clock_falls_per_tick_and_floors_at_the_reserve() {
    let a = Auction::new(aid(1), spec(dutch(1_000, 100, 10, 650)), 1_000).unwrap();
    let expected = [
        (0, 1_000), // before creation: no time has passed
        (1_000, 1_000),
        (1_009, 1_000),
        (1_010, 900),
        (1_025, 800),
        (1_030, 700),
        (1_039, 700),
        (1_040, 650), // 600 is below the reserve
        (1_050, 650),
        (u64::MAX, 650),
    ];
    for (now, price) in expected {
        assert_eq!(a.dutch_price(now), Some(price), "at {now}");
        let s = a.status(now);
        assert_eq!(
            (s.price, s.min_bid, s.leader),
            (Some(price), Some(price), None)
        );
        round_trips(s);
    }
}

#[test]
fn dutch_clock_saturates_instead_of_overflowing() {
    let a = Auction::new(aid(1), spec(dutch(u64::MAX, u64::MAX / 2, 1, 7)), 0).unwrap();
    assert_eq!(a.dutch_price(1), Some(u64::MAX - u64::MAX / 2));
    assert_eq!(a.dutch_price(2), Some(7)); // start - 2*step = 1 < reserve
    assert_eq!(a.dutch_price(3), Some(7)); // 3*step overflows
    let flat = Auction::new(aid(1), spec(dutch(50, 1, 1, 50)), 0).unwrap();
    assert_eq!(flat.dutch_price(1_000), Some(50));
}

#[test]
fn dutch_first_bid_at_the_clock_wins_at_the_clock_price() {
    let mut a = Auction::new(aid(2), spec(dutch(1_000, 100, 10, 500)), 0).unwrap();
    assert_eq!(
        a.bid(bid(2, 750), 20),
        Err(AuctionError::BidTooLow { minimum: 800 })
    );
    let receipt = a.bid(bid(3, 950), 25).unwrap();
    assert_eq!(receipt.amount, 950);
    let outcome = receipt.closed.expect("a Dutch bid closes the auction");
    assert_eq!(outcome.cause, CloseCause::DutchPrice);
    assert_eq!(outcome.settlement, sold(3, 800));
    assert_eq!(outcome.closed_at, 25);
    let s = a.status(100);
    assert_eq!(
        (s.state, s.price, s.winner),
        (AuctionState::Closed, Some(800), Some(3))
    );
    assert_eq!(
        a.bid(bid(4, 2_000), 26),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
}

#[test]
fn dutch_zero_reserve_can_fall_to_zero() {
    let mut a = Auction::new(aid(2), spec(dutch(2, 1, 10, 0)), 0).unwrap();
    assert_eq!(a.dutch_price(25), Some(0));
    assert_eq!(a.status(25).min_bid, Some(1));
    let outcome = a.bid(bid(3, 1), 25).unwrap().closed.unwrap();
    assert_eq!(outcome.settlement, sold(3, 0));
}

#[test]
fn dutch_deadline_without_bids_expires() {
    let mut a = Auction::new(aid(2), with_deadline(dutch(100, 10, 10, 50), 1_000), 0).unwrap();
    assert_eq!(a.expire_if_due(999), None);
    let outcome = a.expire_if_due(1_500).unwrap();
    assert_eq!(
        outcome.settlement,
        Settlement::NoWinner(NoWinnerReason::NoBids)
    );
    assert_eq!(
        (outcome.cause, outcome.closed_at),
        (CloseCause::Deadline, 1_000)
    );
    assert_eq!(a.state(), AuctionState::Expired);
    assert_eq!(a.status(1_500).price, None);
    assert_eq!(a.expire_if_due(2_000), None);
}

// ---------------------------------------------------------------- sealed first-price

#[test]
fn sealed_one_bid_per_bidder_hidden_until_close() {
    let mut a = Auction::new(
        aid(3),
        spec(AuctionKind::SealedFirstPrice { reserve: 50 }),
        0,
    )
    .unwrap();
    assert_eq!(
        a.bid(bid(2, 49), 1),
        Err(AuctionError::BidTooLow { minimum: 50 })
    );
    a.bid(bid(2, 60), 1).unwrap();
    assert_eq!(
        a.bid(bid(2, 90), 2),
        Err(AuctionError::AlreadyBid { bidder: 2 })
    );
    a.bid(bid(3, 80), 3).unwrap();
    a.bid(bid(4, 70), 4).unwrap();
    let s = a.status(5);
    assert_eq!(
        (s.price, s.leader, s.winner, s.bid_count),
        (None, None, None, 3)
    );
    assert_eq!(s.min_bid, Some(50));
    round_trips(s);
    let outcome = a.close(6).unwrap();
    assert_eq!(outcome.settlement, sold(3, 80));
    let s = a.status(6);
    assert_eq!((s.price, s.leader, s.winner), (Some(80), Some(3), Some(3)));
}

#[test]
fn sealed_ties_go_to_the_earliest_bid() {
    let mut a = Auction::new(
        aid(3),
        spec(AuctionKind::SealedFirstPrice { reserve: 1 }),
        0,
    )
    .unwrap();
    a.bid(bid(5, 40), 1).unwrap();
    a.bid(bid(6, 70), 2).unwrap();
    a.bid(bid(7, 70), 3).unwrap();
    a.bid(bid(8, 70), 4).unwrap();
    assert_eq!(a.close(5).unwrap().settlement, sold(6, 70));
}

#[test]
fn sealed_bid_bound_is_enforced() {
    let mut a = Auction::new(
        aid(3),
        spec(AuctionKind::SealedFirstPrice { reserve: 1 }),
        0,
    )
    .unwrap();
    for bidder in 0..MAX_BIDS_PER_AUCTION as u64 {
        a.bid(bid(bidder + 10, bidder + 1), 1).unwrap();
    }
    assert_eq!(
        a.bid(bid(1_000_000, 5), 2),
        Err(AuctionError::TooManyBids {
            limit: MAX_BIDS_PER_AUCTION
        })
    );
    let outcome = a.close(3).unwrap();
    assert_eq!(
        outcome.settlement,
        sold(MAX_BIDS_PER_AUCTION as u64 + 9, 4096)
    );
}

// ---------------------------------------------------------------- Vickrey

#[test]
fn vickrey_single_bid_pays_the_reserve() {
    let mut a = Auction::new(aid(1), spec(AuctionKind::Vickrey { reserve: 30 }), 0).unwrap();
    a.bid(bid(2, 100), 1).unwrap();
    assert_eq!(a.close(2).unwrap().settlement, sold(2, 30));

    let mut a = Auction::new(aid(1), spec(AuctionKind::Vickrey { reserve: 0 }), 0).unwrap();
    a.bid(bid(2, 100), 1).unwrap();
    assert_eq!(a.close(2).unwrap().settlement, sold(2, 0));
}

#[test]
fn vickrey_two_bids_pays_the_second() {
    let mut a = Auction::new(aid(1), spec(AuctionKind::Vickrey { reserve: 30 }), 0).unwrap();
    a.bid(bid(2, 40), 1).unwrap();
    a.bid(bid(3, 100), 2).unwrap();
    assert_eq!(a.status(2).price, None);
    assert_eq!(a.close(3).unwrap().settlement, sold(3, 40));
}

#[test]
fn vickrey_many_bids_pays_the_second_highest() {
    // Every arrival order of the same bids gives the same result.
    let amounts = [55, 90, 31, 72, 88, 40];
    for rotation in 0..amounts.len() {
        let mut a = Auction::new(aid(1), spec(AuctionKind::Vickrey { reserve: 30 }), 0).unwrap();
        for k in 0..amounts.len() {
            let amount = amounts[(k + rotation) % amounts.len()];
            a.bid(bid(amount, amount), k as u64).unwrap();
        }
        assert_eq!(
            a.close(10).unwrap().settlement,
            sold(90, 88),
            "rotation {rotation}"
        );
    }
}

#[test]
fn vickrey_tie_goes_to_the_earliest_at_the_tied_price() {
    let mut a = Auction::new(aid(1), spec(AuctionKind::Vickrey { reserve: 10 }), 0).unwrap();
    a.bid(bid(2, 50), 1).unwrap();
    a.bid(bid(3, 80), 2).unwrap();
    a.bid(bid(4, 80), 3).unwrap();
    assert_eq!(a.close(4).unwrap().settlement, sold(3, 80));
}

#[test]
fn vickrey_deadline_closes_with_the_winner() {
    let mut a = Auction::new(
        aid(1),
        with_deadline(AuctionKind::Vickrey { reserve: 10 }, 100),
        0,
    )
    .unwrap();
    a.bid(bid(2, 50), 1).unwrap();
    a.bid(bid(3, 20), 2).unwrap();
    let outcome = a.expire_if_due(100).unwrap();
    assert_eq!(outcome.settlement, sold(2, 20));
    assert_eq!(
        (outcome.cause, a.state()),
        (CloseCause::Deadline, AuctionState::Closed)
    );
}

// ---------------------------------------------------------------- combinatorial

fn combinatorial(items: u8, reserve: Amount) -> AuctionKind {
    AuctionKind::Combinatorial { items, reserve }
}

#[test]
fn combinatorial_bundles_must_be_non_empty_and_within_items() {
    let mut a = Auction::new(aid(1), spec(combinatorial(3, 0)), 0).unwrap();
    assert_eq!(
        a.bid(bundle_bid(2, 5, 0), 0),
        Err(AuctionError::InvalidBundle { bundle: 0 })
    );
    assert_eq!(
        a.bid(bundle_bid(2, 5, 0b1000), 0),
        Err(AuctionError::InvalidBundle { bundle: 0b1000 })
    );
    a.bid(bundle_bid(2, 5, 0b111), 0).unwrap();
    let mut wide = Auction::new(aid(1), spec(combinatorial(64, 0)), 0).unwrap();
    wide.bid(bundle_bid(2, 5, 1 << 63), 0).unwrap();
    wide.bid(bundle_bid(2, 5, u64::MAX >> 1), 0).unwrap();
}

#[test]
fn combinatorial_picks_the_best_set_and_each_winner_pays_its_bid() {
    let mut a = Auction::new(aid(8), spec(combinatorial(4, 0)), 0).unwrap();
    a.bid(bundle_bid(2, 10, 0b0011), 1).unwrap();
    a.bid(bundle_bid(3, 7, 0b0001), 2).unwrap();
    a.bid(bundle_bid(4, 7, 0b0010), 3).unwrap();
    a.bid(bundle_bid(5, 4, 0b1100), 4).unwrap();
    // The same bidder may bid on another bundle and win both.
    a.bid(bundle_bid(4, 3, 0b0100), 5).unwrap();
    assert_eq!(
        a.bid(bundle_bid(4, 9, 0b0100), 6),
        Err(AuctionError::AlreadyBid { bidder: 4 })
    );
    let s = a.status(6);
    assert_eq!(
        (s.price, s.leader, s.min_bid, s.bid_count),
        (None, None, Some(1), 5)
    );
    let outcome = a.close(7).unwrap();
    // {3: 7, 4: 7, 5: 4} = 18 beats {2: 10, 5: 4} = 14 and {3, 4, 4'} = 17.
    assert_eq!(
        outcome.settlement,
        Settlement::Bundles {
            awards: vec![
                Award {
                    bidder: 3,
                    bundle: 0b0001,
                    price: 7
                },
                Award {
                    bidder: 4,
                    bundle: 0b0010,
                    price: 7
                },
                Award {
                    bidder: 5,
                    bundle: 0b1100,
                    price: 4
                },
            ],
            total: 18,
        }
    );
    let s = a.status(7);
    assert_eq!((s.winner, s.price, s.winning_bids), (Some(3), Some(18), 3));
    round_trips(s);
}

#[test]
fn combinatorial_reserve_applies_to_the_total() {
    let kind = combinatorial(2, 20);
    let mut a = Auction::new(aid(1), spec(kind), 0).unwrap();
    a.bid(bundle_bid(2, 12, 0b01), 1).unwrap();
    a.bid(bundle_bid(3, 7, 0b10), 2).unwrap();
    let outcome = a.close(3).unwrap();
    assert_eq!(
        outcome.settlement,
        Settlement::NoWinner(NoWinnerReason::BelowReserve)
    );
    assert_eq!(a.state(), AuctionState::Closed);

    let mut a = Auction::new(aid(1), with_deadline(kind, 50), 0).unwrap();
    a.bid(bundle_bid(2, 12, 0b01), 1).unwrap();
    a.bid(bundle_bid(3, 7, 0b10), 2).unwrap();
    assert_eq!(
        a.expire_if_due(50).unwrap().settlement,
        Settlement::NoWinner(NoWinnerReason::BelowReserve)
    );
    assert_eq!(a.state(), AuctionState::Expired);

    let mut a = Auction::new(aid(1), spec(kind), 0).unwrap();
    a.bid(bundle_bid(2, 12, 0b01), 1).unwrap();
    a.bid(bundle_bid(3, 8, 0b10), 2).unwrap();
    assert_eq!(a.close(3).unwrap().total_paid(), 20);
}

#[test]
fn combinatorial_twenty_fifth_bid_is_refused() {
    let mut a = Auction::new(aid(1), spec(combinatorial(64, 0)), 0).unwrap();
    for i in 0..MAX_COMBINATORIAL_BIDS as u64 {
        a.bid(bundle_bid(100 + i, i + 1, 1 << i), i).unwrap();
    }
    assert_eq!(
        a.bid(bundle_bid(999, 1_000, 1 << 40), 30),
        Err(AuctionError::TooManyBids {
            limit: MAX_COMBINATORIAL_BIDS
        })
    );
    let outcome = a.close(31).unwrap();
    assert_eq!(outcome.winning_bids(), 24);
    assert_eq!(outcome.total_paid(), (1..=24).sum::<u64>());
    assert_eq!(outcome.winner(), Some(100));
}

#[test]
fn combinatorial_sum_overflow_is_refused_at_bid_time() {
    let mut a = Auction::new(aid(1), spec(combinatorial(2, 0)), 0).unwrap();
    a.bid(bundle_bid(2, u64::MAX - 1, 0b01), 0).unwrap();
    assert_eq!(
        a.bid(bundle_bid(3, 2, 0b10), 0),
        Err(AuctionError::Overflow)
    );
    a.bid(bundle_bid(3, 1, 0b10), 0).unwrap();
    assert_eq!(a.close(1).unwrap().total_paid(), u64::MAX);
}

#[test]
fn combinatorial_close_without_bids_has_no_winner() {
    let mut a = Auction::new(aid(1), spec(combinatorial(2, 0)), 0).unwrap();
    assert_eq!(
        a.close(1).unwrap().settlement,
        Settlement::NoWinner(NoWinnerReason::NoBids)
    );
}

// ---------------------------------------------------------------- deadline and cancel

#[test]
fn deadline_with_qualifying_bids_closes_with_the_winner() {
    let mut a = Auction::new(aid(1), with_deadline(english(10, 1), 100), 0).unwrap();
    assert_eq!(a.next_deadline(), Some(100));
    a.bid(bid(2, 15), 50).unwrap();
    assert_eq!(a.expire_if_due(99), None);
    let outcome = a.expire_if_due(100).unwrap();
    assert_eq!(outcome.settlement, sold(2, 15));
    assert_eq!(
        (outcome.cause, outcome.closed_at),
        (CloseCause::Deadline, 100)
    );
    assert_eq!(a.state(), AuctionState::Closed);
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn deadline_without_bids_expires_without_winner() {
    let mut a = Auction::new(
        aid(1),
        with_deadline(AuctionKind::SealedFirstPrice { reserve: 1 }, 100),
        0,
    )
    .unwrap();
    let outcome = a.expire_if_due(250).unwrap();
    assert_eq!(
        outcome.settlement,
        Settlement::NoWinner(NoWinnerReason::NoBids)
    );
    assert_eq!(a.state(), AuctionState::Expired);
    assert_eq!(a.ended_at(), Some(100));
    let s = a.status(250);
    assert_eq!(
        (s.state, s.winner, s.price, s.closed_at),
        (AuctionState::Expired, None, None, Some(100))
    );
    round_trips(s);
}

#[test]
fn bid_at_or_after_the_deadline_expires_first_then_is_refused() {
    let mut a = Auction::new(aid(1), with_deadline(english(10, 1), 100), 0).unwrap();
    a.bid(bid(2, 15), 99).unwrap();
    assert_eq!(
        a.bid(bid(3, 50), 100),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
    assert_eq!(a.outcome().unwrap().settlement, sold(2, 15));

    let mut a = Auction::new(aid(1), with_deadline(english(10, 1), 100), 0).unwrap();
    assert_eq!(
        a.bid(bid(3, 50), 500),
        Err(AuctionError::NotOpen {
            state: AuctionState::Expired
        })
    );
    assert_eq!(a.bid_count(), 0);
}

#[test]
fn close_after_the_deadline_returns_the_deadline_outcome() {
    let mut a = Auction::new(aid(1), with_deadline(english(10, 1), 100), 0).unwrap();
    a.bid(bid(2, 15), 10).unwrap();
    let outcome = a.close(150).unwrap();
    assert_eq!(
        (outcome.cause, outcome.closed_at),
        (CloseCause::Deadline, 100)
    );
    assert_eq!(outcome.settlement, sold(2, 15));
}

#[test]
fn cancel_only_without_bids() {
    let mut a = Auction::new(aid(1), spec(english(10, 1)), 0).unwrap();
    a.cancel(5).unwrap();
    assert_eq!(a.state(), AuctionState::Cancelled);
    assert_eq!((a.ended_at(), a.outcome()), (Some(5), None));
    assert_eq!(
        a.cancel(6),
        Err(AuctionError::NotOpen {
            state: AuctionState::Cancelled
        })
    );
    assert_eq!(
        a.bid(bid(2, 20), 6),
        Err(AuctionError::NotOpen {
            state: AuctionState::Cancelled
        })
    );
    assert_eq!(
        a.close(6),
        Err(AuctionError::NotOpen {
            state: AuctionState::Cancelled
        })
    );
    round_trips(a.status(6));

    let mut a = Auction::new(aid(1), spec(AuctionKind::Vickrey { reserve: 1 }), 0).unwrap();
    a.bid(bid(2, 20), 1).unwrap();
    assert_eq!(a.cancel(2), Err(AuctionError::HasBids { count: 1 }));
    assert_eq!(a.state(), AuctionState::Open);

    let mut a = Auction::new(aid(1), with_deadline(english(10, 1), 100), 0).unwrap();
    assert_eq!(
        a.cancel(100),
        Err(AuctionError::NotOpen {
            state: AuctionState::Expired
        })
    );
}

// ---------------------------------------------------------------- book

fn limits(max_open: usize, max_retained: usize, retention_nanos: u64) -> BookLimits {
    BookLimits {
        max_open,
        max_retained,
        retention_nanos,
    }
}

#[test]
fn book_reports_events_in_order() {
    let mut book = AuctionBook::new(BookLimits::default());
    let mut out = Vec::new();
    let status = book
        .create(aid(1), spec(english(10, 1)), 0, &mut out)
        .unwrap();
    assert_eq!(out, vec![AuctionEvent::Created(status)]);
    out.clear();
    book.bid(aid(1), bid(2, 10), 1, &mut out).unwrap();
    assert_eq!(
        out,
        vec![AuctionEvent::Bid {
            id: aid(1),
            bidder: 2,
            amount: Some(10)
        }]
    );
    out.clear();
    let outcome = book.close(aid(1), 2, &mut out).unwrap();
    let status = book.status(aid(1), 2).unwrap();
    assert_eq!(
        out,
        vec![AuctionEvent::Closed {
            id: aid(1),
            outcome,
            status
        }]
    );
    out.clear();

    // Sealed bids hide their amount; a Dutch bid reports the bid then the close.
    book.create(
        aid(2),
        spec(AuctionKind::Vickrey { reserve: 1 }),
        3,
        &mut out,
    )
    .unwrap();
    book.create(aid(3), spec(dutch(100, 1, 1, 1)), 3, &mut out)
        .unwrap();
    out.clear();
    book.bid(aid(2), bid(4, 10), 4, &mut out).unwrap();
    assert_eq!(
        out,
        vec![AuctionEvent::Bid {
            id: aid(2),
            bidder: 4,
            amount: None
        }]
    );
    out.clear();
    let receipt = book.bid(aid(3), bid(5, 100), 4, &mut out).unwrap();
    assert_eq!(
        out,
        vec![
            AuctionEvent::Bid {
                id: aid(3),
                bidder: 5,
                amount: Some(100)
            },
            AuctionEvent::Closed {
                id: aid(3),
                outcome: receipt.closed.unwrap(),
                status: book.status(aid(3), 4).unwrap(),
            },
        ]
    );
    out.clear();
    book.create(aid(4), spec(english(1, 1)), 5, &mut out)
        .unwrap();
    out.clear();
    book.cancel(aid(4), 6, &mut out).unwrap();
    assert_eq!(
        out,
        vec![AuctionEvent::Cancelled {
            id: aid(4),
            status: book.status(aid(4), 6).unwrap()
        }]
    );
    assert_eq!(book.open_count(), 1);
    assert_eq!(book.retained_count(), 3);
}

#[test]
fn a_reserved_book_holds_its_reserve_without_growing_its_map() {
    let mut out = Vec::new();
    let mut book = AuctionBook::with_reserve(BookLimits::default(), 5_000);
    let reserved = book.map_capacity();
    assert!(reserved >= 5_000);
    for n in 0..5_000 {
        book.create(aid(n), spec(english(10, 1)), 0, &mut out)
            .unwrap();
    }
    assert_eq!(book.map_capacity(), reserved);
    // Without a reserve the same creates grow it; a reserve is capped by the limits.
    let mut book = AuctionBook::new(BookLimits::default());
    let start = book.map_capacity();
    for n in 0..5_000 {
        book.create(aid(n), spec(english(10, 1)), 0, &mut out)
            .unwrap();
    }
    assert!(book.map_capacity() > start);
    let small = AuctionBook::with_reserve(limits(2, 10, 1_000), 1 << 30);
    assert!(small.map_capacity() < 1 << 10);
}

#[test]
fn book_unknown_duplicate_and_refused_calls() {
    let mut book = AuctionBook::new(limits(2, 10, 1_000));
    let mut out = Vec::new();
    assert_eq!(
        book.status(aid(9), 0),
        Err(AuctionError::NotFound { id: aid(9) })
    );
    assert_eq!(
        book.bid(aid(9), bid(2, 1), 0, &mut out),
        Err(AuctionError::NotFound { id: aid(9) })
    );
    assert_eq!(
        book.close(aid(9), 0, &mut out),
        Err(AuctionError::NotFound { id: aid(9) })
    );
    assert_eq!(
        book.cancel(aid(9), 0, &mut out),
        Err(AuctionError::NotFound { id: aid(9) })
    );
    assert_eq!(
        book.create(aid(1), spec(english(1, 0)), 0, &mut out),
        Err(AuctionError::InvalidSpec(SpecError::ZeroIncrement))
    );
    book.create(aid(1), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    assert_eq!(
        book.create(aid(1), spec(english(1, 1)), 0, &mut out),
        Err(AuctionError::DuplicateId { id: aid(1) })
    );
    book.create(aid(2), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    assert_eq!(
        book.create(aid(3), spec(english(1, 1)), 0, &mut out),
        Err(AuctionError::TooManyAuctions { limit: 2 })
    );
    book.close(aid(1), 1, &mut out).unwrap();
    // Closed auctions do not count against max_open, but their id stays taken.
    book.create(aid(3), spec(english(1, 1)), 1, &mut out)
        .unwrap();
    assert_eq!(
        book.create(aid(1), spec(english(1, 1)), 1, &mut out),
        Err(AuctionError::DuplicateId { id: aid(1) })
    );
    out.clear();
    assert_eq!(
        book.bid(aid(1), bid(2, 5), 2, &mut out),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
    assert!(out.is_empty(), "a refused bid reports nothing");
    assert_eq!(book.len(), 3);
}

#[test]
fn book_advance_applies_deadlines_in_order() {
    let mut book = AuctionBook::new(BookLimits::default());
    let mut out = Vec::new();
    book.create(aid(1), with_deadline(english(1, 1), 300), 0, &mut out)
        .unwrap();
    book.create(aid(2), with_deadline(english(1, 1), 100), 0, &mut out)
        .unwrap();
    book.create(aid(3), with_deadline(english(1, 1), 200), 0, &mut out)
        .unwrap();
    book.create(aid(4), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    book.bid(aid(3), bid(7, 5), 10, &mut out).unwrap();
    assert_eq!(book.next_deadline(), Some(100));
    // Closing auction 2 early leaves a stale heap entry; next_deadline skips it.
    book.close(aid(2), 20, &mut out).unwrap();
    assert_eq!(book.next_deadline(), Some(200));
    out.clear();
    book.advance(199, &mut out);
    assert!(out.is_empty());
    book.advance(1_000, &mut out);
    let closed: Vec<(AuctionId, AuctionState)> = out
        .iter()
        .map(|e| match e {
            AuctionEvent::Closed { id, .. } => (*id, book.status(*id, 1_000).unwrap().state),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        closed,
        vec![
            (aid(3), AuctionState::Closed),
            (aid(1), AuctionState::Expired)
        ]
    );
    assert_eq!(book.next_deadline(), None);
    assert_eq!(book.open_count(), 1);
}

#[test]
fn book_bid_after_deadline_reports_the_expiry_then_refuses() {
    let mut book = AuctionBook::new(BookLimits::default());
    let mut out = Vec::new();
    book.create(aid(1), with_deadline(english(1, 1), 100), 0, &mut out)
        .unwrap();
    book.bid(aid(1), bid(2, 5), 50, &mut out).unwrap();
    out.clear();
    assert_eq!(
        book.bid(aid(1), bid(3, 9), 100, &mut out),
        Err(AuctionError::NotOpen {
            state: AuctionState::Closed
        })
    );
    assert!(matches!(
        out.as_slice(),
        [AuctionEvent::Closed { id: ID1, outcome, .. }] if outcome.winner() == Some(2)
    ));
    assert_eq!(book.next_deadline(), None);
    out.clear();
    book.advance(1_000, &mut out);
    assert!(out
        .iter()
        .all(|e| !matches!(e, AuctionEvent::Closed { .. })));
}

#[test]
fn book_evicts_oldest_ended_by_count() {
    let mut book = AuctionBook::new(limits(100, 3, u64::MAX));
    let mut out = Vec::new();
    for id in 0..5 {
        book.create(aid(id), spec(english(1, 1)), id, &mut out)
            .unwrap();
    }
    out.clear();
    // Ended in this order (not the order of creation), at 10, 11, ... 14.
    for (at, id) in [4, 0, 3, 1, 2].into_iter().enumerate() {
        book.close(aid(id), 10 + at as u64, &mut out).unwrap();
    }
    let evicted: Vec<AuctionId> = out
        .iter()
        .filter_map(|e| match e {
            AuctionEvent::Evicted { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(evicted, vec![aid(4), aid(0)]);
    assert_eq!(
        book.status(aid(4), 20),
        Err(AuctionError::NotFound { id: aid(4) })
    );
    assert_eq!(
        book.close(aid(0), 20, &mut out),
        Err(AuctionError::NotFound { id: aid(0) })
    );
    assert_eq!((book.len(), book.retained_count()), (3, 3));
    // An evicted id can be used again.
    book.create(aid(4), spec(english(1, 1)), 30, &mut out)
        .unwrap();
}

#[test]
fn book_evicts_by_age_on_advance() {
    let mut book = AuctionBook::new(limits(100, 100, 1_000));
    let mut out = Vec::new();
    book.create(aid(1), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    book.create(aid(2), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    book.create(aid(3), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    book.close(aid(1), 100, &mut out).unwrap();
    book.cancel(aid(2), 600, &mut out).unwrap();
    out.clear();
    book.advance(1_099, &mut out);
    assert!(out.is_empty());
    book.advance(1_100, &mut out);
    assert_eq!(out, vec![AuctionEvent::Evicted { id: aid(1) }]);
    out.clear();
    book.advance(1_600, &mut out);
    assert_eq!(out, vec![AuctionEvent::Evicted { id: aid(2) }]);
    assert_eq!(book.len(), 1);
    assert!(
        book.status(aid(3), 10_000).is_ok(),
        "open auctions are never evicted"
    );
}

#[test]
fn book_with_no_retention_evicts_at_once() {
    let mut book = AuctionBook::new(limits(10, 0, 0));
    let mut out = Vec::new();
    book.create(aid(1), spec(dutch(10, 1, 1, 1)), 0, &mut out)
        .unwrap();
    out.clear();
    book.bid(aid(1), bid(2, 10), 0, &mut out).unwrap();
    assert!(matches!(
        out.as_slice(),
        [
            AuctionEvent::Bid { .. },
            AuctionEvent::Closed { .. },
            AuctionEvent::Evicted { id: ID1 }
        ]
    ));
    assert!(book.is_empty());
}

#[test]
fn book_memory_stays_flat_over_many_cycles() {
    let max_retained = 64;
    let mut book = AuctionBook::new(limits(16, max_retained, 5_000));
    let mut out = Vec::new();
    let mut now = 0;
    for id in 0..10_000u64 {
        now += 7;
        // Far deadlines: every close leaves a stale heap entry behind.
        let s = with_deadline(english(1, 1), now + 1_000_000_000 + id);
        book.create(aid(id), s, now, &mut out).unwrap();
        if id % 3 != 0 {
            book.bid(aid(id), bid(2, 5), now, &mut out).unwrap();
        }
        if id % 5 == 0 {
            book.bid(aid(id), bid(3, 6), now, &mut out).unwrap();
        }
        if id % 3 == 0 && id % 5 != 0 {
            book.cancel(aid(id), now, &mut out).unwrap();
        } else {
            book.close(aid(id), now, &mut out).unwrap();
        }
        book.advance(now, &mut out);
        assert!(book.len() <= max_retained + 16);
        assert!(book.deadline_entries() <= 2 * 16 + 65);
        out.clear();
    }
    assert_eq!(book.open_count(), 0);
    assert_eq!(book.len(), max_retained);
    assert_eq!(book.next_deadline(), None);
}

#[test]
fn book_lists_open_auctions_by_kind_and_category() {
    let mut book = AuctionBook::new(BookLimits::default());
    let mut out = Vec::new();
    book.create(aid(1), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    book.create(
        aid(2),
        spec(AuctionKind::Vickrey { reserve: 1 }),
        0,
        &mut out,
    )
    .unwrap();
    let other = AuctionSpec {
        category: 9,
        ..spec(english(1, 1))
    };
    book.create(aid(3), other, 0, &mut out).unwrap();
    book.create(aid(4), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    book.close(aid(4), 1, &mut out).unwrap();
    let mut ids: Vec<_> = book.list_open(1, None, None).map(|s| s.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![aid(1), aid(2), aid(3)]);
    let mut ids: Vec<_> = book
        .list_open(1, Some(KindTag::English), Some(3))
        .map(|s| s.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![aid(1)]);
}

#[test]
fn book_adopts_exported_auctions() {
    let mut source = AuctionBook::new(BookLimits::default());
    let mut out = Vec::new();
    source
        .create(aid(1), with_deadline(english(1, 1), 100), 0, &mut out)
        .unwrap();
    source.bid(aid(1), bid(2, 5), 1, &mut out).unwrap();
    source
        .create(aid(2), spec(english(1, 1)), 0, &mut out)
        .unwrap();
    source.close(aid(2), 3, &mut out).unwrap();

    let mut target = AuctionBook::new(limits(1, 10, 1_000));
    let mut exported: Vec<Auction> = source.iter().cloned().collect();
    exported.sort_by_key(|a| a.id());
    for auction in exported.iter().cloned() {
        target.adopt(auction, &mut out).unwrap();
    }
    assert_eq!(
        target.adopt(exported[0].clone(), &mut out),
        Err(AuctionError::DuplicateId { id: aid(1) })
    );
    assert_eq!((target.open_count(), target.retained_count()), (1, 1));
    assert_eq!(target.next_deadline(), Some(100));
    assert_eq!(target.status(aid(1), 5), source.status(aid(1), 5));
    out.clear();
    target.advance(100, &mut out);
    assert!(matches!(
        out.as_slice(),
        [AuctionEvent::Closed { id: ID1, outcome, .. }] if outcome.winner() == Some(2)
    ));
    let mut full = AuctionBook::new(limits(0, 10, 1_000));
    assert_eq!(
        full.adopt(source.get(aid(1)).unwrap().clone(), &mut out),
        Err(AuctionError::TooManyAuctions { limit: 0 })
    );
}

#[test]
fn book_end_events_carry_the_final_status_when_evicted_at_once() {
    // max_retained = 0 evicts an auction in the call that ends it; the `Closed` and
    // `Cancelled` events still say what it ended as (the engine publishes that and feeds
    // the market from it: the book no longer has the auction to look up).
    let mut book = AuctionBook::new(limits(10, 0, u64::MAX));
    let mut out = Vec::new();
    let sale = AuctionSpec {
        category: 42,
        ..spec(english(1, 1))
    };
    book.create(aid(1), sale, 0, &mut out).unwrap();
    book.bid(aid(1), bid(2, 7), 1, &mut out).unwrap();
    out.clear();
    let outcome = book.close(aid(1), 2, &mut out).unwrap();
    let [AuctionEvent::Closed {
        id: ID1,
        outcome: reported,
        status,
    }, AuctionEvent::Evicted { id: ID1 }] = out.as_slice()
    else {
        panic!("expected Closed then Evicted, got {out:?}");
    };
    assert_eq!(reported, &outcome);
    assert_eq!(
        (status.category, status.state, status.winner, status.price),
        (42, AuctionState::Closed, Some(2), Some(7))
    );
    assert_eq!(status.closed_at, Some(2));
    assert_eq!(
        book.status(aid(1), 2),
        Err(AuctionError::NotFound { id: aid(1) })
    );

    book.create(aid(2), spec(english(1, 1)), 3, &mut out)
        .unwrap();
    out.clear();
    book.cancel(aid(2), 4, &mut out).unwrap();
    let [AuctionEvent::Cancelled { id: ID2, status }, AuctionEvent::Evicted { id: ID2 }] =
        out.as_slice()
    else {
        panic!("expected Cancelled then Evicted, got {out:?}");
    };
    assert_eq!(
        (status.state, status.closed_at),
        (AuctionState::Cancelled, Some(4))
    );

    // A deadline sale swept late, past its retention, is evicted in the same advance.
    let mut book = AuctionBook::new(limits(10, 10, 100));
    book.create(aid(3), with_deadline(english(1, 1), 50), 0, &mut out)
        .unwrap();
    book.bid(aid(3), bid(2, 9), 10, &mut out).unwrap();
    out.clear();
    book.advance(1_000, &mut out);
    let [AuctionEvent::Closed {
        id: ID3, status, ..
    }, AuctionEvent::Evicted { id: ID3 }] = out.as_slice()
    else {
        panic!("expected Closed then Evicted, got {out:?}");
    };
    assert_eq!(
        (status.category, status.winner, status.closed_at),
        (3, Some(2), Some(50))
    );
}

#[test]
fn book_retention_evicts_oldest_closed_at_first_when_a_deadline_is_applied_late() {
    // A has no deadline, B's deadline is 50; A is closed at 60, before B's deadline is
    // applied, so B ends after A in call order but its closed_at (50) is older.
    let setup = |max_retained, retention_nanos| {
        let mut book = AuctionBook::new(limits(10, max_retained, retention_nanos));
        let mut out = Vec::new();
        book.create(aid(1), spec(english(1, 1)), 0, &mut out)
            .unwrap();
        book.create(aid(2), with_deadline(english(1, 1), 50), 0, &mut out)
            .unwrap();
        book.close(aid(1), 60, &mut out).unwrap();
        book
    };
    let evicted = |out: &[AuctionEvent]| -> Vec<AuctionId> {
        out.iter()
            .filter_map(|e| match e {
                AuctionEvent::Evicted { id } => Some(*id),
                _ => None,
            })
            .collect()
    };

    // By age: at 155, B (ended 50) is past retention 100, A (ended 60) is not.
    let mut book = setup(10, 100);
    let mut out = Vec::new();
    book.advance(155, &mut out);
    assert_eq!(evicted(&out), vec![aid(2)]);
    assert_eq!(
        book.status(aid(2), 155),
        Err(AuctionError::NotFound { id: aid(2) })
    );
    assert_eq!(book.status(aid(1), 155).unwrap().closed_at, Some(60));
    out.clear();
    book.advance(159, &mut out);
    assert!(out.is_empty());
    book.advance(160, &mut out);
    assert_eq!(evicted(&out), vec![aid(1)]);

    // By count: with one retained, B's end evicts the oldest-ended auction, B itself.
    let mut book = setup(1, u64::MAX);
    out.clear();
    book.advance(70, &mut out);
    assert_eq!(evicted(&out), vec![aid(2)]);
    assert_eq!(book.status(aid(1), 70).unwrap().closed_at, Some(60));
    assert_eq!(
        book.status(aid(2), 70),
        Err(AuctionError::NotFound { id: aid(2) })
    );
    assert_eq!(book.retained_count(), 1);
}
