//! The progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::Scope;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;

use super::args::{Preset, RunLength};
use super::gauges::Gauges;

/// How often the bar is redrawn.
const REDRAW: Duration = Duration::from_millis(100);
/// Width of the bar in characters.
const WIDTH: usize = 30;

/// Draws progress bars for the runs of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
    length: RunLength,
    clients: usize,
}

/// A bar being drawn; dropping it stops the drawing thread, which clears the line
/// (the scope it was started in joins the thread).
#[derive(Debug)]
pub struct Bar {
    _stop: mpsc::Sender<()>,
}

impl Progress {
    /// A progress drawer for runs of `clients` clients of `length`, enabled only if
    /// stderr is a terminal.
    pub fn new(length: RunLength, clients: usize) -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            length,
            clients,
        }
    }

    /// Starts drawing the progress of `preset`'s run that started at `start`, from the
    /// clients' operation counters, on a thread of `scope`. `None` when disabled.
    pub fn start<'scope, 'env>(
        &self,
        scope: &'scope Scope<'scope, 'env>,
        preset: Preset,
        start: Instant,
        counters: &'env [CachePadded<AtomicU64>],
        gauges: &'env Gauges,
    ) -> Option<Bar> {
        if !self.enabled {
            return None;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let this = *self;
        scope.spawn(move || {
            let mut stderr = std::io::stderr();
            // Only a disconnect arrives: the bar was dropped.
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REDRAW) {
                let done: u64 = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
                let line = format!(
                    "{} {}",
                    this.line(preset, done, start.elapsed()),
                    gauges.line()
                );
                let _ = write!(stderr, "\r{line}\x1b[K");
                let _ = stderr.flush();
            }
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        });
        Some(Bar { _stop: stop })
    }

    /// The text of the bar after `done` operations and `elapsed` time.
    fn line(&self, preset: Preset, done: u64, elapsed: Duration) -> String {
        let (fraction, what) = match self.length {
            RunLength::Ops(n) => {
                let total = n.saturating_mul(self.clients as u64);
                (
                    done as f64 / total.max(1) as f64,
                    format!("{done}/{total} ops"),
                )
            }
            RunLength::Duration(d) => (
                elapsed.as_secs_f64() / d.as_secs_f64(),
                format!("{done} ops"),
            ),
        };
        let fraction = fraction.clamp(0.0, 1.0);
        let filled = (fraction * WIDTH as f64).round() as usize;
        format!(
            "{:<11} [{}{}] {:>3.0}% {} {:.1}s",
            preset.name(),
            "=".repeat(filled),
            " ".repeat(WIDTH - filled),
            fraction * 100.0,
            what,
            elapsed.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_text_by_operations_and_by_time() {
        let p = Progress {
            enabled: false,
            length: RunLength::Ops(100),
            clients: 2,
        };
        let line = p.line(Preset::Sharded, 50, Duration::from_millis(1500));
        assert_eq!(
            line,
            format!(
                "sharded     [{}{}]  25% 50/200 ops 1.5s",
                "=".repeat(8),
                " ".repeat(22)
            )
        );
        let p = Progress {
            length: RunLength::Duration(Duration::from_secs(2)),
            ..p
        };
        let line = p.line(Preset::Centralized, 7, Duration::from_secs(3));
        assert!(line.starts_with(&format!("centralized [{}]", "=".repeat(30))));
        assert!(line.ends_with("100% 7 ops 3.0s"), "{line}");
    }
}
