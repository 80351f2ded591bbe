//! Batching fire-and-forget commands per shard, so that one mailbox message carries many.

use super::ticket::DropScope;
use super::Runtime;
use crate::Error;

/// What a buffered write did; see [`BatchWriter`](crate::BatchWriter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "`Held` means the write is not accepted yet: flush the writer to send it"]
pub enum Buffered {
    /// Held in the writer, **not yet accepted** by the engine: it is sent when its
    /// shard's buffer fills or on [`flush`](crate::BatchWriter::flush); dropping the
    /// writer tries once more and discards what is refused.
    Held,
    /// This write filled its shard's buffer, and the buffer — this write and the `n - 1`
    /// held before it for the same shard — was accepted: it will be applied.
    Sent(usize),
}

/// Per-shard buffers of commands, each sent as one message when it holds `batch`.
///
/// Bound: at most `batch` commands per shard are held (a buffer whose send was refused
/// keeps `batch - 1`, and the write that would have filled it is refused with it).
pub(crate) struct Batcher<C> {
    buffers: Vec<Vec<C>>,
    batch: usize,
}

impl<C: Send + 'static> Batcher<C> {
    /// Buffers for `shards` shards of `batch` commands each (at least 1).
    pub(crate) fn new(shards: usize, batch: usize) -> Self {
        Self {
            buffers: (0..shards).map(|_| Vec::new()).collect(),
            batch: batch.max(1),
        }
    }

    /// Commands held and not yet accepted.
    pub(crate) fn held(&self) -> usize {
        self.buffers.iter().map(Vec::len).sum()
    }

    /// The batch size in force.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// Buffers `cmd` for `shard`; sends the buffer if that fills it. On `Err`, `cmd` was
    /// neither accepted nor kept (it is dropped inside a scope that resolves its reply,
    /// if any, with the error); the buffer stays held.
    pub(crate) fn push(
        &mut self,
        rt: &Runtime<C>,
        shard: usize,
        cmd: C,
    ) -> Result<Buffered, Error> {
        let buffer = &mut self.buffers[shard];
        if buffer.capacity() == 0 {
            buffer.reserve_exact(self.batch);
        }
        buffer.push(cmd);
        if buffer.len() < self.batch {
            return Ok(Buffered::Held);
        }
        let cmds = std::mem::replace(buffer, Vec::with_capacity(self.batch));
        match rt.send_batch(shard, cmds) {
            Ok(n) => Ok(Buffered::Sent(n)),
            Err((mut cmds, error)) => {
                let refused = cmds.pop();
                self.buffers[shard] = cmds;
                let _scope = DropScope::new(error);
                drop(refused);
                Err(error)
            }
        }
    }

    /// Sends every non-empty buffer. Returns the number of commands accepted, or the
    /// first refusal after trying every shard; refused buffers stay held.
    pub(crate) fn flush(&mut self, rt: &Runtime<C>) -> Result<usize, Error> {
        let mut accepted = 0;
        let mut first_error = None;
        for shard in 0..self.buffers.len() {
            if self.buffers[shard].is_empty() {
                continue;
            }
            let cmds = std::mem::take(&mut self.buffers[shard]);
            match rt.send_batch(shard, cmds) {
                Ok(n) => accepted += n,
                Err((cmds, error)) => {
                    self.buffers[shard] = cmds;
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            None => Ok(accepted),
            Some(e) => Err(e),
        }
    }

    /// Drops every held command, resolving their replies with `error`.
    pub(crate) fn discard(&mut self, error: Error) {
        let _scope = DropScope::new(error);
        for buffer in &mut self.buffers {
            buffer.clear();
        }
    }
}
