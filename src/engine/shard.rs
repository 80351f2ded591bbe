//! What one engine shard owns, and the one enum of commands its mailbox and lanes carry:
//! the composition of the services on the runtime. Adding a service adds a field, a
//! variant and a dispatch arm here; the runtime does not change.

use mabeam_shards::agents::AgentShard;
use std::sync::Arc;

use mabeam_shards::interner::Interner;
use mabeam_shards::registry::RegistryShard;

use crate::agents::{self, AgentCommand};
use crate::coordination::{CoordinationCommand, CoordinationShard};
use crate::economics::{EconomicsCommand, EconomicsShard};
use crate::events::{EventCommand, EventSink};
use crate::registry::{self, RegistryCommand};
use crate::runtime::{Ctx, Reply, ShardState};

/// One message to an engine shard.
pub(crate) enum Command {
    /// A registry command (boxed: registrations are rare and their entries large).
    Registry(Box<RegistryCommand>),
    /// An agent command.
    Agent(AgentCommand),
    /// An auction, market or pricing-cache command.
    Economics(EconomicsCommand),
    /// A coordination-session command.
    Coordination(CoordinationCommand),
    /// An events command (subscriptions, host events, history), boxed: it is large and
    /// off the hot path.
    Events(Box<EventCommand>),
}

impl From<RegistryCommand> for Command {
    fn from(c: RegistryCommand) -> Self {
        Command::Registry(Box::new(c))
    }
}

impl From<AgentCommand> for Command {
    fn from(c: AgentCommand) -> Self {
        Command::Agent(c)
    }
}

impl From<EconomicsCommand> for Command {
    fn from(c: EconomicsCommand) -> Self {
        Command::Economics(c)
    }
}

impl From<CoordinationCommand> for Command {
    fn from(c: CoordinationCommand) -> Self {
        Command::Coordination(c)
    }
}

impl From<EventCommand> for Command {
    fn from(c: EventCommand) -> Self {
        Command::Events(Box::new(c))
    }
}

/// What a service's shard-side applier gets: the batch's time, the shard's event sink,
/// and the runtime's answers and forwards.
pub(crate) struct ServiceCtx<'a> {
    /// Engine time at the start of the batch.
    pub now: u64,
    /// Where services report events.
    pub events: &'a mut EventSink,
    rt: &'a mut Ctx<Command>,
}

impl ServiceCtx<'_> {
    /// Queues `reply` to be answered with `value` once the batch is published.
    #[inline]
    pub(crate) fn reply<T: Send + 'static>(&mut self, reply: Reply<T>, value: T) {
        self.rt.reply(reply, value);
    }

    /// Queues the answer `r` like [`reply`](Self::reply), counting a refusal by the
    /// service's rule (telemetry, by the error's variant name).
    #[inline]
    pub(crate) fn answer<T: Send + 'static, E: std::fmt::Debug + Send + 'static>(
        &mut self,
        reply: Reply<Result<T, E>>,
        r: Result<T, E>,
    ) {
        if let Err(e) = &r {
            self.rt.refused(e);
        }
        self.rt.reply(reply, r);
    }

    /// Sends `cmd` to shard `shard` on the shard-to-shard lane (never refused).
    #[inline]
    pub(crate) fn forward(&mut self, shard: usize, cmd: impl Into<Command>) {
        self.rt.forward(shard, cmd);
    }

    /// The number of shards.
    #[inline]
    pub(crate) fn shards(&self) -> usize {
        self.rt.shards()
    }
}

/// The state one engine shard owns.
pub(crate) struct EngineShard {
    pub registry: RegistryShard,
    /// The engine's capability names: the registry applier gives back the references of
    /// entries it removes or replaces.
    pub capabilities: Arc<Interner>,
    pub agents: AgentShard,
    pub economics: EconomicsShard,
    pub coordination: CoordinationShard,
    pub events: EventSink,
}

impl ShardState for EngineShard {
    type Command = Command;

    fn apply(&mut self, cmd: Command, ctx: &mut Ctx<Command>) {
        let now = ctx.now();
        if let Command::Events(c) = cmd {
            if let Some((reply, found)) = self.events.apply(*c, now) {
                ctx.reply(reply, found);
            }
            return;
        }
        let mut sctx = ServiceCtx {
            now,
            events: &mut self.events,
            rt: ctx,
        };
        match cmd {
            Command::Registry(c) => {
                registry::apply(&mut self.registry, &self.capabilities, *c, &mut sctx)
            }
            Command::Agent(c) => agents::apply(&mut self.agents, c, &mut sctx),
            Command::Economics(c) => self.economics.apply(c, &mut sctx),
            Command::Coordination(c) => self.coordination.apply(c, &mut sctx),
            Command::Events(_) => {}
        }
    }

    fn prefetch<'a>(&mut self, cmds: impl Iterator<Item = &'a Command>) {
        let mut creates = 0;
        for cmd in cmds {
            if let Command::Economics(c) = cmd {
                self.economics.prefetch(c, &mut creates);
            }
        }
    }

    fn advance(&mut self, ctx: &mut Ctx<Command>) {
        let mut sctx = ServiceCtx {
            now: ctx.now(),
            events: &mut self.events,
            rt: ctx,
        };
        self.economics.advance(&mut sctx);
        self.coordination.advance(&mut sctx);
    }

    fn next_deadline(&self) -> Option<u64> {
        match (
            self.economics.next_deadline(),
            self.coordination.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn export(&self, _now: u64) -> Box<dyn std::any::Any + Send> {
        Box::new(self.export_parts())
    }

    fn end_batch(&mut self, ctx: &mut Ctx<Command>) {
        let mut sctx = ServiceCtx {
            now: ctx.now(),
            events: &mut self.events,
            rt: ctx,
        };
        agents::publish(&mut self.agents, &mut sctx);
    }

    const OPS: usize = crate::telemetry::ops::OP_COUNT;

    #[inline]
    fn op_of(cmd: &Command) -> usize {
        crate::telemetry::ops::op_of(cmd)
    }

    fn figures(&self) -> crate::telemetry::shard::ShardFigures {
        self.events.figures()
    }
}

#[cfg(test)]
mod tests {
    /// Every message is moved through the mailbox, the lanes and the batch buffer: keep
    /// the hot variants small (large, rare commands are boxed).
    #[test]
    fn commands_stay_small() {
        assert!(std::mem::size_of::<super::Command>() <= 112);
        assert!(std::mem::size_of::<crate::agents::AgentCommand>() <= 88);
    }
}
