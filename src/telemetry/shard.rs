//! What a shard records about itself, owned by the shard thread alone: plain integers
//! and `hdrhistogram`s, written without a lock, an atomic or an allocation on the hot
//! path, and read by asking the shard (the runtime's observe message, answered with a
//! copy at the end of a batch, like a flush).
//!
//! - Per operation: commands applied (every one), handler panics, refusals by the
//!   service's rule by kind, and the time applying (one command in `sample_every`, timed
//!   with two clock reads; the others cost a counter increment).
//! - Per batch: its size (commands) and its wall time (busy time; idle time is the rest
//!   of the shard's life).
//!
//! Memory: an operation's duration histogram is allocated on its first sample (one
//! allocation per operation and shard for the engine's life); the rest is allocated at
//! start. Error kinds: at most [`KINDS`] distinct kinds per operation (named by the
//! error's variant), beyond which they count as `other`.

use std::fmt::{self, Write as _};
use std::time::Instant;

use super::histogram::{hdr, record, Hdr, MAX_BATCH, MAX_NANOS};

/// Distinct error kinds kept per operation.
pub(crate) const KINDS: usize = 8;
/// Longest kind name kept (longer ones are cut).
const KIND_LEN: usize = 40;

/// One error kind's name (a variant name) and count.
#[derive(Clone, Copy)]
struct Kind {
    name: [u8; KIND_LEN],
    len: u8,
    count: u64,
}

/// A variant's name: the `Debug` text up to the first `(`, `{` or space, written into a
/// fixed buffer without allocating.
struct VariantName {
    buf: [u8; KIND_LEN],
    len: usize,
    done: bool,
}

impl fmt::Write for VariantName {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.done {
            return Err(fmt::Error);
        }
        for b in s.bytes() {
            if b == b'(' || b == b'{' || b == b' ' || self.len == KIND_LEN {
                self.done = true;
                return Err(fmt::Error);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// The variant name of `e` (`BidTooLow` for `BidTooLow { min: 5 }`).
fn variant_name(e: &dyn fmt::Debug) -> ([u8; KIND_LEN], usize) {
    let mut w = VariantName {
        buf: [0; KIND_LEN],
        len: 0,
        done: false,
    };
    // Stopping early is the point: the error only cuts the formatting short.
    let _ = write!(w, "{e:?}");
    (w.buf, w.len)
}

/// One operation's figures on one shard.
#[derive(Clone)]
pub(crate) struct OpRecord {
    pub count: u64,
    pub panics: u64,
    kinds: [Kind; KINDS],
    pub other_errors: u64,
    pub apply: Option<Box<Hdr>>,
}

impl Default for OpRecord {
    fn default() -> Self {
        Self {
            count: 0,
            panics: 0,
            kinds: [Kind {
                name: [0; KIND_LEN],
                len: 0,
                count: 0,
            }; KINDS],
            other_errors: 0,
            apply: None,
        }
    }
}

impl OpRecord {
    /// Counts a refusal of kind `e`.
    fn error(&mut self, e: &dyn fmt::Debug) {
        let (name, len) = variant_name(e);
        let name = &name[..len];
        for k in self.kinds.iter_mut() {
            if k.count > 0 && &k.name[..k.len as usize] == name {
                k.count += 1;
                return;
            }
            if k.count == 0 {
                k.name[..len].copy_from_slice(name);
                k.len = len as u8;
                k.count = 1;
                return;
            }
        }
        self.other_errors += 1;
    }

    /// The error kinds and their counts (`other` last if any overflowed).
    pub(crate) fn errors(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .kinds
            .iter()
            .filter(|k| k.count > 0)
            .map(|k| {
                (
                    String::from_utf8_lossy(&k.name[..k.len as usize]).into_owned(),
                    k.count,
                )
            })
            .collect();
        if self.other_errors > 0 {
            out.push(("other".into(), self.other_errors));
        }
        out
    }
}

/// A shard's recorder; see the [module docs](self).
pub(crate) struct ShardRecorder {
    enabled: bool,
    sample_every: u32,
    countdown: u32,
    /// The operation being applied (for errors and panics its handler reports).
    current: usize,
    pub ops: Box<[OpRecord]>,
    pub batch_sizes: Box<Hdr>,
    pub busy_nanos: u64,
    pub started: Instant,
}

/// A clock read for a sampled command.
pub(crate) struct Sample(Option<Instant>);

impl ShardRecorder {
    /// A recorder of `ops` operations; off if `!enabled`. One command in
    /// `sample_every` (at least 1) is timed.
    pub(crate) fn new(enabled: bool, ops: usize, sample_every: u32) -> Self {
        Self {
            enabled,
            sample_every: sample_every.max(1),
            countdown: 0,
            current: 0,
            ops: (0..ops.max(1)).map(|_| OpRecord::default()).collect(),
            batch_sizes: Box::new(hdr(MAX_BATCH)),
            busy_nanos: 0,
            started: Instant::now(),
        }
    }

    /// True if the recorder records.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts a command of operation `op` about to be applied; returns the clock read
    /// if this one is sampled.
    #[inline]
    pub(crate) fn begin(&mut self, op: usize) -> Sample {
        if !self.enabled {
            return Sample(None);
        }
        let op = op.min(self.ops.len() - 1);
        self.current = op;
        self.ops[op].count += 1;
        if self.countdown == 0 {
            self.countdown = self.sample_every - 1;
            Sample(Some(Instant::now()))
        } else {
            self.countdown -= 1;
            Sample(None)
        }
    }

    /// Ends the command `begin` counted: its panic, and its time if sampled.
    #[inline]
    pub(crate) fn end(&mut self, sample: Sample, panicked: bool) {
        if !self.enabled {
            return;
        }
        let op = &mut self.ops[self.current];
        if panicked {
            op.panics += 1;
        }
        if let Some(t) = sample.0 {
            let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let h = op.apply.get_or_insert_with(|| Box::new(hdr(MAX_NANOS)));
            record(h, nanos);
        }
    }

    /// The handler of the current command refused it with `e` (the service's rule).
    #[inline]
    pub(crate) fn error(&mut self, e: &dyn fmt::Debug) {
        if self.enabled {
            self.ops[self.current].error(e);
        }
    }

    /// Counts a batch of `size` commands that took `nanos`.
    #[inline]
    pub(crate) fn batch(&mut self, size: u64, nanos: u64) {
        if self.enabled {
            record(&mut self.batch_sizes, size);
            self.busy_nanos = self.busy_nanos.saturating_add(nanos);
        }
    }
}

/// What a shard's services report of themselves when observed (events and what the
/// resource monitor shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShardFigures {
    pub events_published: u64,
    pub events_delivered: u64,
    pub events_lagged: u64,
    /// Subscriptions in the shard's index.
    pub subscriptions: usize,
    /// Events retained in its history, and their host payload bytes.
    pub history: usize,
    pub history_bytes: usize,
}

/// A shard's answer to an observe message: a copy of its recorder and figures, taken at
/// the end of a batch.
pub(crate) struct Observation {
    pub report: crate::runtime::ShardReport,
    pub ops: Vec<OpRecord>,
    pub batch_sizes: Box<Hdr>,
    pub busy_nanos: u64,
    /// Nanoseconds since the shard started.
    pub alive_nanos: u64,
    pub figures: ShardFigures,
    /// The CPU the shard's thread runs on (where the platform says).
    pub cpu: Option<usize>,
}

/// The CPU this thread runs on now, where the platform says: field 39 (`processor`) of
/// `/proc/thread-self/stat` on Linux (read without `libc`, which the library does not
/// depend on; off the hot path: only when telemetry observes the shard).
fn current_cpu() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: the
    // first of them is field 3, so field 39 is the 37th.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(36)?.parse().ok()
}

impl ShardRecorder {
    /// A copy of the recorder, with the shard's `report` and `figures`.
    pub(crate) fn observe(
        &self,
        report: crate::runtime::ShardReport,
        figures: ShardFigures,
    ) -> Observation {
        Observation {
            report,
            ops: self.ops.to_vec(),
            batch_sizes: self.batch_sizes.clone(),
            busy_nanos: self.busy_nanos,
            alive_nanos: u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            figures,
            cpu: current_cpu(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)]
    enum E {
        BidTooLow { min: u64 },
        NotFound(u64),
        Closed,
    }

    #[test]
    fn errors_are_counted_by_variant() {
        let mut r = ShardRecorder::new(true, 2, 1);
        let s = r.begin(1);
        r.error(&E::BidTooLow { min: 3 });
        r.end(s, false);
        let s = r.begin(1);
        r.error(&E::BidTooLow { min: 4 });
        r.end(s, true);
        let s = r.begin(1);
        r.error(&E::NotFound(9));
        r.end(s, false);
        let s = r.begin(0);
        r.error(&E::Closed);
        r.end(s, false);
        assert_eq!(r.ops[1].count, 3);
        assert_eq!(r.ops[1].panics, 1);
        assert_eq!(
            r.ops[1].errors(),
            vec![("BidTooLow".to_string(), 2), ("NotFound".to_string(), 1)]
        );
        assert_eq!(r.ops[0].errors(), vec![("Closed".to_string(), 1)]);
        assert_eq!(r.ops[1].apply.as_ref().map(|h| h.len()), Some(3));
    }

    #[test]
    fn kinds_beyond_the_bound_count_as_other() {
        let mut op = OpRecord::default();
        for i in 0..(KINDS as u64 + 3) {
            op.error(&E::NotFound(i));
            // The same variant is one kind whatever its fields.
        }
        assert_eq!(
            op.errors(),
            vec![("NotFound".to_string(), KINDS as u64 + 3)]
        );
        #[derive(Debug)]
        struct K0;
        #[derive(Debug)]
        struct K1;
        #[derive(Debug)]
        struct K2;
        #[derive(Debug)]
        struct K3;
        #[derive(Debug)]
        struct K4;
        #[derive(Debug)]
        struct K5;
        #[derive(Debug)]
        struct K6;
        #[derive(Debug)]
        struct K7;
        let kinds: [&dyn fmt::Debug; 8] = [&K0, &K1, &K2, &K3, &K4, &K5, &K6, &K7];
        for k in kinds {
            op.error(k);
        }
        let errors = op.errors();
        assert_eq!(errors.len(), KINDS + 1);
        assert_eq!(errors.last(), Some(&("other".to_string(), 1)));
    }

    #[test]
    fn sampling_times_one_in_n_and_counts_all() {
        let mut r = ShardRecorder::new(true, 1, 4);
        for _ in 0..10 {
            let s = r.begin(0);
            r.end(s, false);
        }
        assert_eq!(r.ops[0].count, 10);
        assert_eq!(r.ops[0].apply.as_ref().map(|h| h.len()), Some(3));
        let mut off = ShardRecorder::new(false, 1, 1);
        let s = off.begin(0);
        off.end(s, false);
        assert_eq!(off.ops[0].count, 0);
    }
}
