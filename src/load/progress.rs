//! The run's monitor: a thread that samples the clients' operation counters every
//! [`SAMPLE_EVERY`], keeps the samples (throughput over time, for the report and the
//! JSON) and draws an [`indicatif`] progress bar with rate and ETA on stderr, only when
//! stderr is a terminal.
//!
//! Bounded: at most [`MAX_SAMPLES`] samples are kept; when full, every second one is
//! dropped and the sampling period doubles, so a run of any length keeps between half
//! and all of [`MAX_SAMPLES`] evenly spaced samples. The thread is paced by a channel's
//! `recv_timeout` and stops when the [`Monitor`] is finished or dropped.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::RunLength;
use super::gauges::Gauges;

/// How often the counters are sampled (and the bar redrawn) at the start of a run.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Most samples a run keeps.
pub const MAX_SAMPLES: usize = 1024;

/// One sample: operations completed by all clients `at` seconds after the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the run's start.
    pub at: f64,
    /// Operations the clients had completed (as far as their counters show).
    pub ops: u64,
}

/// Operations per second between consecutive samples: `(middle of the interval in
/// seconds, rate)`.
pub fn throughput(samples: &[Sample]) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter(|w| w[1].at > w[0].at)
        .map(|w| {
            let dt = w[1].at - w[0].at;
            (
                (w[0].at + w[1].at) / 2.0,
                w[1].ops.saturating_sub(w[0].ops) as f64 / dt,
            )
        })
        .collect()
}

/// Starts monitors for the runs of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
    length: RunLength,
    clients: usize,
}

/// A running monitor; [`Monitor::finish`] stops it and returns its samples.
#[derive(Debug)]
pub struct Monitor<'scope> {
    stop: mpsc::Sender<()>,
    thread: ScopedJoinHandle<'scope, Vec<Sample>>,
}

impl Monitor<'_> {
    /// Stops the monitor (its bar is cleared) and returns the samples, the last taken
    /// now.
    pub fn finish(self) -> Vec<Sample> {
        drop(self.stop);
        // A panic of the monitor thread loses the samples, not the run.
        self.thread.join().unwrap_or_default()
    }
}

/// `x` operations per second, short: `812 ops/s`, `45.3 k ops/s`, `3.21 M ops/s`.
pub fn rate_text(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M ops/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k ops/s", x / 1e3)
    } else {
        format!("{x:.0} ops/s")
    }
}

/// The bar's template for runs of `length`: by operations, the bar is operations done
/// of all; by duration, it is time.
pub fn template(length: RunLength) -> &'static str {
    match length {
        RunLength::Ops(_) => {
            "{prefix:<11} [{bar:30}] {percent:>3}% {human_pos}/{human_len} ops {msg} ETA {eta} ({elapsed})"
        }
        RunLength::Duration(_) => "{prefix:<11} [{bar:30}] {percent:>3}% {msg} ETA {eta} ({elapsed})",
    }
}

impl Progress {
    /// Monitors runs of `clients` clients of `length`; the bar is drawn only if stderr
    /// is a terminal.
    pub fn new(length: RunLength, clients: usize) -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            length,
            clients,
        }
    }

    fn bar(&self, label: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let len = match self.length {
            RunLength::Ops(n) => n.saturating_mul(self.clients as u64),
            RunLength::Duration(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        };
        let style = ProgressStyle::with_template(template(self.length))
            .expect("the bar templates are valid indicatif templates")
            .progress_chars("=> ");
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(label.to_string())
    }

    /// Starts monitoring the run labelled `label` that started at `start`, from the
    /// clients' operation counters, on a thread of `scope`.
    pub fn start<'scope, 'env>(
        &self,
        scope: &'scope Scope<'scope, 'env>,
        label: &str,
        start: Instant,
        counters: &'env [CachePadded<AtomicU64>],
        gauges: &'env Gauges,
    ) -> Monitor<'scope> {
        let (stop, stopped) = mpsc::channel::<()>();
        let bar = self.bar(label);
        let length = self.length;
        let thread = scope.spawn(move || {
            let total = || {
                counters
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .sum::<u64>()
            };
            let mut samples = vec![Sample { at: 0.0, ops: 0 }];
            let mut period = SAMPLE_EVERY;
            let mut next = start + period;
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                // Only a disconnect arrives: the monitor was finished.
                let done = !matches!(
                    stopped.recv_timeout(wait),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                let now = Instant::now();
                let sample = Sample {
                    at: (now - start).as_secs_f64(),
                    ops: total(),
                };
                let last = *samples.last().expect("samples start with the origin");
                if samples.len() == MAX_SAMPLES {
                    // Keep every second sample (the origin stays) and sample half as often.
                    let mut i = 0;
                    samples.retain(|_| {
                        i += 1;
                        i % 2 == 1
                    });
                    period *= 2;
                }
                samples.push(sample);
                if !bar.is_hidden() {
                    let dt = sample.at - last.at;
                    let rate = if dt > 0.0 {
                        sample.ops.saturating_sub(last.ops) as f64 / dt
                    } else {
                        0.0
                    };
                    match length {
                        RunLength::Ops(_) => {
                            bar.set_position(sample.ops);
                            bar.set_message(format!("{}, {}", rate_text(rate), gauges.line()));
                        }
                        RunLength::Duration(_) => {
                            bar.set_position(
                                u64::try_from((now - start).as_millis()).unwrap_or(u64::MAX),
                            );
                            bar.set_message(format!(
                                "{} ops, {}, {}",
                                sample.ops,
                                rate_text(rate),
                                gauges.line()
                            ));
                        }
                    }
                }
                if done {
                    bar.finish_and_clear();
                    return samples;
                }
                next += period;
            }
        });
        Monitor { stop, thread }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_short() {
        assert_eq!(rate_text(812.4), "812 ops/s");
        assert_eq!(rate_text(45_300.0), "45.3 k ops/s");
        assert_eq!(rate_text(3_210_000.0), "3.21 M ops/s");
    }

    #[test]
    fn templates_are_valid_and_show_rate_and_eta() {
        for length in [
            RunLength::Ops(10),
            RunLength::Duration(Duration::from_secs(1)),
        ] {
            assert!(ProgressStyle::with_template(template(length)).is_ok());
            assert!(template(length).contains("{eta}"));
            assert!(
                template(length).contains("{msg}"),
                "the rate is in the message"
            );
        }
    }

    #[test]
    fn throughput_is_the_rate_between_samples() {
        let samples = [
            Sample { at: 0.0, ops: 0 },
            Sample { at: 0.5, ops: 100 },
            Sample { at: 1.0, ops: 400 },
            Sample { at: 1.0, ops: 400 },
        ];
        assert_eq!(throughput(&samples), vec![(0.25, 200.0), (0.75, 600.0)]);
        assert!(throughput(&samples[..1]).is_empty());
    }

    #[test]
    fn the_monitor_samples_until_finished_and_keeps_the_last_count() {
        let counters: Vec<CachePadded<AtomicU64>> = (0..2)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect();
        let progress = Progress {
            enabled: false,
            length: RunLength::Ops(10),
            clients: 2,
        };
        let gauges = Gauges::default();
        let samples = std::thread::scope(|s| {
            let monitor = progress.start(s, "test", Instant::now(), &counters, &gauges);
            counters[0].store(7, Ordering::Relaxed);
            counters[1].store(5, Ordering::Relaxed);
            monitor.finish()
        });
        assert_eq!(samples[0], Sample { at: 0.0, ops: 0 });
        assert_eq!(samples.last().map(|s| s.ops), Some(12));
        assert!(samples.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
