//! The `sync` shim: std's atomics, threads and cells in normal builds, loom's under
//! `--cfg mabeam_loom`.
//!
//! Every primitive in this crate that shares memory between threads imports its atomics,
//! fences, `UnsafeCell` and thread parking from here and nowhere else, so the loom models
//! in `loom-tests/` check exactly the code the engine runs.

#[cfg(not(mabeam_loom))]
pub use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(mabeam_loom))]
pub use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(mabeam_loom))]
pub use std::thread;

#[cfg(mabeam_loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(mabeam_loom)]
pub use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(mabeam_loom)]
pub use loom::thread;

/// Spin-loop hint: `std::hint::spin_loop` normally, a loom yield under the model checker
/// (a loom model that spins without yielding never terminates).
#[inline]
pub fn spin_loop() {
    #[cfg(not(mabeam_loom))]
    std::hint::spin_loop();
    #[cfg(mabeam_loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` with loom's closure-based access API, so the same code compiles
/// against both std and loom.
#[derive(Debug)]
pub struct UnsafeCell<T>(
    #[cfg(not(mabeam_loom))] std::cell::UnsafeCell<T>,
    #[cfg(mabeam_loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        #[cfg(not(mabeam_loom))]
        return Self(std::cell::UnsafeCell::new(value));
        #[cfg(mabeam_loom)]
        return Self(loom::cell::UnsafeCell::new(value));
    }

    /// Runs `f` with a shared raw pointer to the value.
    ///
    /// The caller must uphold the aliasing rules when dereferencing the pointer.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(mabeam_loom))]
        return f(self.0.get());
        #[cfg(mabeam_loom)]
        return self.0.with(f);
    }

    /// Runs `f` with an exclusive raw pointer to the value.
    ///
    /// The caller must uphold the aliasing rules when dereferencing the pointer.
    #[inline]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(mabeam_loom))]
        return f(self.0.get());
        #[cfg(mabeam_loom)]
        return self.0.with_mut(f);
    }
}

#[cfg(not(mabeam_loom))]
pub use std::sync::Condvar;

#[cfg(mabeam_loom)]
pub use loom::sync::Condvar;

/// A bounded multi-producer multi-consumer FIFO queue: crossbeam's `ArrayQueue` in
/// normal builds, a loom `Mutex<VecDeque>` under the model checker (loom cannot see
/// inside crossbeam's atomics; the models check the protocols built around the queue and
/// take its linearizability as given).
pub struct BoundedQueue<T> {
    #[cfg(not(mabeam_loom))]
    inner: crossbeam_queue::ArrayQueue<T>,
    #[cfg(mabeam_loom)]
    inner: Mutex<std::collections::VecDeque<T>>,
    #[cfg(mabeam_loom)]
    capacity: usize,
}

impl<T> BoundedQueue<T> {
    /// A queue of at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        #[cfg(not(mabeam_loom))]
        return Self {
            inner: crossbeam_queue::ArrayQueue::new(capacity),
        };
        #[cfg(mabeam_loom)]
        return Self {
            inner: Mutex::new(std::collections::VecDeque::new()),
            capacity,
        };
    }

    /// Appends `value`, or hands it back if the queue is full.
    #[inline]
    pub fn push(&self, value: T) -> Result<(), T> {
        #[cfg(not(mabeam_loom))]
        return self.inner.push(value);
        #[cfg(mabeam_loom)]
        {
            let mut q = self
                .inner
                .lock()
                .expect("a loom queue lock is never poisoned");
            if q.len() >= self.capacity {
                return Err(value);
            }
            q.push_back(value);
            Ok(())
        }
    }

    /// Takes the oldest item.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        #[cfg(not(mabeam_loom))]
        return self.inner.pop();
        #[cfg(mabeam_loom)]
        return self
            .inner
            .lock()
            .expect("a loom queue lock is never poisoned")
            .pop_front();
    }

    /// Items queued now (a snapshot).
    #[inline]
    pub fn len(&self) -> usize {
        #[cfg(not(mabeam_loom))]
        return self.inner.len();
        #[cfg(mabeam_loom)]
        return self
            .inner
            .lock()
            .expect("a loom queue lock is never poisoned")
            .len();
    }

    /// True if nothing is queued now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most items the queue holds.
    pub fn capacity(&self) -> usize {
        #[cfg(not(mabeam_loom))]
        return self.inner.capacity();
        #[cfg(mabeam_loom)]
        return self.capacity;
    }
}

/// An unbounded multi-producer multi-consumer FIFO queue: crossbeam's `SegQueue`, or a
/// loom `Mutex<VecDeque>` under the model checker. Its users bound it by what they put
/// in (see [`Mailbox::send_control`](crate::mailbox::Mailbox::send_control)).
pub struct UnboundedQueue<T> {
    #[cfg(not(mabeam_loom))]
    inner: crossbeam_queue::SegQueue<T>,
    #[cfg(mabeam_loom)]
    inner: Mutex<std::collections::VecDeque<T>>,
}

impl<T> std::fmt::Debug for BoundedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedQueue")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> std::fmt::Debug for UnboundedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnboundedQueue")
            .field("len", &self.len())
            .finish()
    }
}

impl<T> Default for UnboundedQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> UnboundedQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        #[cfg(not(mabeam_loom))]
        return Self {
            inner: crossbeam_queue::SegQueue::new(),
        };
        #[cfg(mabeam_loom)]
        return Self {
            inner: Mutex::new(std::collections::VecDeque::new()),
        };
    }

    /// Appends `value`.
    #[inline]
    pub fn push(&self, value: T) {
        #[cfg(not(mabeam_loom))]
        self.inner.push(value);
        #[cfg(mabeam_loom)]
        self.inner
            .lock()
            .expect("a loom queue lock is never poisoned")
            .push_back(value);
    }

    /// Takes the oldest item.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        #[cfg(not(mabeam_loom))]
        return self.inner.pop();
        #[cfg(mabeam_loom)]
        return self
            .inner
            .lock()
            .expect("a loom queue lock is never poisoned")
            .pop_front();
    }

    /// Items queued now (a snapshot).
    #[inline]
    pub fn len(&self) -> usize {
        #[cfg(not(mabeam_loom))]
        return self.inner.len();
        #[cfg(mabeam_loom)]
        return self
            .inner
            .lock()
            .expect("a loom queue lock is never poisoned")
            .len();
    }

    /// True if nothing is queued now.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
