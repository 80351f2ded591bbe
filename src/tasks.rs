//! The task pool: a bounded set of worker threads for heavy work (pricing and whatever
//! the host delegates), never run on a shard thread — the original's Task.Supervisor.
//!
//! Bounds: `Config::task_workers` threads and a queue of `Config::task_queue` jobs; a
//! spawn into a full queue resolves its ticket with [`Error::Busy`] at once. A job that
//! panics resolves its ticket with [`TaskError::Panicked`] and the message, is counted,
//! and its worker goes on to the next job, so the pool never shrinks.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use flume::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::engine::Inner;
use crate::ticket::{DropScope, Ticket};
use crate::Error;

/// Why a task produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The task panicked; the panic message (or a placeholder if it was not a string).
    Panicked(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(msg) => write!(f, "task panicked: {msg}"),
        }
    }
}

impl std::error::Error for TaskError {}

type Job = Box<dyn FnOnce() + Send>;

/// What a worker receives.
enum Msg {
    /// Run this.
    Job(Job),
    /// Leave the loop (queued once per worker at shutdown, behind every job).
    Stop,
}

/// Counters of the pool.
#[derive(Debug, Default)]
struct PoolStats {
    spawned: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
}

/// A snapshot of the pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStats {
    /// Worker threads.
    pub workers: usize,
    /// Jobs accepted.
    pub spawned: u64,
    /// Jobs finished (including those that panicked).
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs waiting in the queue.
    pub queued: usize,
}

/// The worker threads and their queue.
pub(crate) struct TaskPool {
    tx: Sender<Msg>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    worker_count: usize,
    stats: Arc<PoolStats>,
}

impl TaskPool {
    /// Starts `workers` threads `mabeam-task-{i}` on a queue of `queue` jobs.
    pub(crate) fn start(workers: usize, queue: usize) -> std::io::Result<Self> {
        let (tx, rx): (Sender<Msg>, Receiver<Msg>) = flume::bounded(queue);
        let stats = Arc::new(PoolStats::default());
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            let stats = stats.clone();
            let handle = std::thread::Builder::new()
                .name(format!("mabeam-task-{i}"))
                .spawn(move || {
                    while let Ok(Msg::Job(job)) = rx.recv() {
                        // Jobs catch their own panics (`run_caught`); this guard keeps
                        // the worker alive even if a reply's drop were to panic.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            stats.panicked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })?;
            handles.push(handle);
        }
        Ok(Self {
            tx,
            workers: Mutex::new(handles),
            worker_count: workers,
            stats,
        })
    }

    /// Queues `job`, or says why not (the job is handed back to be dropped).
    pub(crate) fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
        match self.tx.try_send(Msg::Job(job)) {
            Ok(()) => {
                self.stats.spawned.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(Msg::Job(job))) => Err((job, Error::Busy)),
            Err(TrySendError::Disconnected(Msg::Job(job))) => Err((job, Error::ShutDown)),
            Err(_) => unreachable!("submit only sends Msg::Job"),
        }
    }

    /// Queues `job`; if the queue refuses it, drops it so that the replies it owns
    /// resolve with the refusal (`Busy` or `ShutDown`).
    pub(crate) fn submit_or_refuse(&self, job: Job) {
        if let Err((job, e)) = self.submit(job) {
            let _scope = (e == Error::Busy).then(DropScope::busy);
            drop(job);
        }
    }

    /// Runs `f` on a worker, catching and counting a panic. Counted before the caller
    /// answers, so a ticket that resolved is already in the counters.
    pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, TaskError> {
        let r = run_caught(f);
        if r.is_err() {
            self.stats.panicked.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.completed.fetch_add(1, Ordering::Relaxed);
        r
    }

    pub(crate) fn stats(&self) -> TaskStats {
        TaskStats {
            workers: self.worker_count,
            spawned: self.stats.spawned.load(Ordering::Relaxed),
            completed: self.stats.completed.load(Ordering::Relaxed),
            panicked: self.stats.panicked.load(Ordering::Relaxed),
            queued: self.tx.len(),
        }
    }

    /// Lets the workers finish every queued job, then joins them.
    pub(crate) fn shutdown(&self) {
        let mut workers = self.workers.lock();
        for _ in 0..workers.len() {
            let _ = self.tx.send(Msg::Stop);
        }
        for w in workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Runs `f`, turning a panic into [`TaskError::Panicked`] with its message.
fn run_caught<T>(f: impl FnOnce() -> T) -> Result<T, TaskError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| TaskError::Panicked(panic_message(&*payload)))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The task pool of an engine; get it with [`Engine::tasks`](crate::Engine::tasks).
#[derive(Clone, Copy)]
pub struct Tasks<'e> {
    inner: &'e Arc<Inner>,
}

impl<'e> Tasks<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Runs `f` on a pool worker. The ticket resolves with `Ok(value)`, with
    /// `Ok(Err(TaskError::Panicked(msg)))` if `f` panicked, or with `Err(Busy)` at once
    /// if the queue is full.
    ///
    /// ```
    /// let engine = mabeam::Engine::start(mabeam::Config { shards: 1, pin_threads: false, ..Default::default() })?;
    /// assert_eq!(engine.tasks().spawn(|| 6 * 7).wait()?, Ok(42));
    /// let failed = engine.tasks().spawn(|| -> u32 { panic!("boom") }).wait()?;
    /// assert_eq!(failed, Err(mabeam::TaskError::Panicked("boom".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> Ticket<Result<T, TaskError>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (ticket, reply) = Ticket::new(self.inner.config.ticket_spin);
        if let Err(e) = self.inner.check_open() {
            reply.send(Err(e));
            return ticket;
        }
        let inner = self.inner.clone();
        self.inner.tasks.submit_or_refuse(Box::new(move || {
            let r = inner.tasks.run(f);
            reply.send(Ok(r));
        }));
        ticket
    }

    /// The pool's counters.
    pub fn stats(&self) -> TaskStats {
        self.inner.tasks.stats()
    }
}
