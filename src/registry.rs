//! The agent registry: names → handle and metadata, with leases.
//!
//! Writes go to the shard that owns the name (a stable hash of it); lookups, capability
//! searches, queries and counts read the shards' published snapshots and never send a
//! message (in [`Mode::Centralized`](crate::Mode::Centralized) they are round trips, as
//! in the original GenServer).
//!
//! Bounds: names are 1 to [`MAX_NAME_LEN`] bytes of UTF-8 without control characters
//! ([`Name::new`] has the rule; capability names follow it too); at most [`MAX_CAPABILITIES`] distinct
//! capability names per engine; at most `Config::registry_capacity` entries per shard.
//!
//! A lease's release (by [`Lease::release`] or by dropping the lease) goes to the shard
//! on its control queue, which is never refused for room: there is at most one release
//! per lease, so that queue is bounded by the number of leases. Dropping a lease never
//! blocks.

use std::sync::Arc;

use mabeam_shards::registry::{lookup, RegistryShard};
pub use mabeam_shards::registry::{
    CapabilitySet, Entry, Health, Metadata, Name, RegistryError, MAX_CAPABILITIES, MAX_NAME_LEN,
};

use crate::engine::{Inner, ServiceCtx};
use crate::events::Payload;
use crate::runtime::Reply;
use crate::Error;

/// Registry commands; `lease` is the token of the [`Lease`] that asks.
pub(crate) enum RegistryCommand {
    Register {
        entry: Entry,
        lease: u64,
        reply: Reply<Result<(), RegistryError>>,
    },
    UpdateMetadata {
        name: Name,
        lease: u64,
        metadata: Metadata,
        reply: Reply<Result<Entry, RegistryError>>,
    },
    Unregister {
        name: Name,
        lease: u64,
        reply: Reply<Result<Entry, RegistryError>>,
    },
    /// Centralized mode's read: a round trip instead of a snapshot read.
    Lookup {
        name: Name,
        reply: Reply<Option<Entry>>,
    },
    /// Centralized mode's scan: every entry of the shard.
    Scan { reply: Reply<Vec<Entry>> },
    /// Hands an entry nobody holds (a restored one) to `lease`.
    Claim {
        name: Name,
        lease: u64,
        reply: Reply<Result<Entry, RegistryError>>,
    },
}

/// The shard side: applies one registry command to the shard's registry.
pub(crate) fn apply(registry: &mut RegistryShard, cmd: RegistryCommand, ctx: &mut ServiceCtx<'_>) {
    match cmd {
        RegistryCommand::Register {
            entry,
            lease,
            reply,
        } => {
            let r = registry.register(entry, lease);
            if r.is_ok() {
                let (name, handle) = (entry.name, entry.handle);
                ctx.events.service(
                    "registry.registered",
                    || Payload::Registered { name, handle },
                    Some(handle),
                    ctx.now,
                );
            }
            ctx.reply(reply, r);
        }
        RegistryCommand::UpdateMetadata {
            name,
            lease,
            metadata,
            reply,
        } => {
            let r = registry.update_metadata(&name, lease, metadata);
            ctx.reply(reply, r);
        }
        RegistryCommand::Unregister { name, lease, reply } => {
            let r = registry.unregister(&name, lease);
            if let Ok(entry) = &r {
                let handle = entry.handle;
                ctx.events.service(
                    "registry.unregistered",
                    || Payload::Unregistered { name, handle },
                    Some(handle),
                    ctx.now,
                );
            }
            ctx.reply(reply, r);
        }
        RegistryCommand::Lookup { name, reply } => {
            let r = registry.get(&name);
            ctx.reply(reply, r);
        }
        RegistryCommand::Scan { reply } => {
            let r = registry.entries().map(|(e, _)| e).collect();
            ctx.reply(reply, r);
        }
        RegistryCommand::Claim { name, lease, reply } => {
            let r = registry.claim(&name, lease);
            ctx.reply(reply, r);
        }
    }
}

/// Metadata as a host gives it, with capability names (interned on registration).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataSpec {
    /// Capability names, each following the name rule of [`Name::new`].
    pub capabilities: Vec<String>,
    /// Health.
    pub health: Health,
    /// Load, in units the host chooses.
    pub load: u64,
    /// The node the agent runs on, as a host-chosen number.
    pub node: u32,
}

impl MetadataSpec {
    /// Metadata with these capabilities, healthy, load 0, node 0.
    pub fn with_capabilities<S: AsRef<str>>(capabilities: &[S]) -> Self {
        Self {
            capabilities: capabilities.iter().map(|c| c.as_ref().to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// A field that [`Filter`]s compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// [`Health::code`]: 0 healthy, 1 degraded, 2 unhealthy.
    Health,
    /// Load.
    Load,
    /// Node number.
    Node,
}

/// A comparison against a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq(u64),
    /// Not equal.
    Neq(u64),
    /// Greater than.
    Gt(u64),
    /// Less than.
    Lt(u64),
    /// Greater than or equal.
    Gte(u64),
    /// Less than or equal.
    Lte(u64),
    /// One of.
    In(Vec<u64>),
    /// None of.
    NotIn(Vec<u64>),
}

/// One condition of a [`Registry::query`].
///
/// ```
/// use mabeam::registry::{Field, Filter, Health, Op};
/// let healthy_and_light = [
///     Filter::new(Field::Health, Op::Eq(Health::Healthy.code())),
///     Filter::new(Field::Load, Op::Lt(10)),
/// ];
/// # let _ = healthy_and_light;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The field compared.
    pub field: Field,
    /// The comparison.
    pub op: Op,
}

impl Filter {
    /// `field op`.
    pub fn new(field: Field, op: Op) -> Self {
        Self { field, op }
    }

    /// True if `entry` satisfies the condition.
    pub fn matches(&self, entry: &Entry) -> bool {
        let v = match self.field {
            Field::Health => entry.metadata.health.code(),
            Field::Load => entry.metadata.load,
            Field::Node => u64::from(entry.metadata.node),
        };
        match &self.op {
            Op::Eq(x) => v == *x,
            Op::Neq(x) => v != *x,
            Op::Gt(x) => v > *x,
            Op::Lt(x) => v < *x,
            Op::Gte(x) => v >= *x,
            Op::Lte(x) => v <= *x,
            Op::In(xs) => xs.contains(&v),
            Op::NotIn(xs) => !xs.contains(&v),
        }
    }
}

/// The registry of an engine; get it with [`Engine::registry`](crate::EngineHandle::registry).
#[derive(Clone, Copy)]
pub struct Registry<'e> {
    inner: &'e Arc<Inner>,
}

impl<'e> Registry<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    fn resolve(&self, spec: &MetadataSpec) -> Result<Metadata, RegistryError> {
        // Every name is checked before any is interned: interned names are never freed,
        // so a refused call must not spend the engine's MAX_CAPABILITIES slots.
        // Capability names follow the registry's name rule (see `Name::new`).
        if spec.capabilities.iter().any(|c| Name::new(c).is_err()) {
            return Err(RegistryError::InvalidCapability);
        }
        let mut capabilities = CapabilitySet::EMPTY;
        for c in &spec.capabilities {
            let id = self
                .inner
                .capabilities
                .intern(c)
                .ok_or(RegistryError::TooManyCapabilities)?;
            capabilities.insert(id)?;
        }
        Ok(Metadata {
            capabilities,
            health: spec.health,
            load: spec.load,
            node: spec.node,
        })
    }

    /// Registers `name` for `handle`. The returned [`Lease`] is the only way to change or
    /// remove the entry; dropping it removes the entry (the original's `:DOWN` monitor).
    ///
    /// `name` must follow the name rule of [`Name::new`]:
    /// 1 to 64 bytes of UTF-8, no control characters, spaces allowed.
    ///
    /// Errors: `InvalidName`, `ControlCharacter`, `InvalidCapability`, `TooManyCapabilities`,
    /// `AlreadyRegistered`, `Full`, `KeyCollision`, or `Engine(Busy | ShutDown)`.
    pub fn register(
        &self,
        name: &str,
        handle: u64,
        metadata: &MetadataSpec,
    ) -> Result<Lease, RegistryError> {
        self.inner.check_open()?;
        let name = Name::new(name)?;
        let metadata = self.resolve(metadata)?;
        let lease = self.inner.next_lease();
        let shard = self.inner.shard_of(name.key());
        let entry = Entry {
            name,
            handle,
            metadata,
        };
        self.inner
            .call(shard, |reply| RegistryCommand::Register {
                entry,
                lease,
                reply,
            })
            .wait()??;
        Ok(Lease {
            inner: self.inner.clone(),
            name,
            token: lease,
            shard,
            released: false,
        })
    }

    /// Takes ownership of an entry that nobody holds — one restored from an
    /// [`EngineState`](crate::state::EngineState) — and returns its lease; from then on
    /// it behaves as if `register` had made it. Refused with `NotLeaseHolder` if someone
    /// holds it (a second claim included), `NotFound` if there is no such entry.
    pub fn claim(&self, name: &str) -> Result<Lease, RegistryError> {
        self.inner.check_open()?;
        let name = Name::new(name)?;
        let lease = self.inner.next_lease();
        let shard = self.inner.shard_of(name.key());
        self.inner
            .call(shard, |reply| RegistryCommand::Claim { name, lease, reply })
            .wait()??;
        Ok(Lease {
            inner: self.inner.clone(),
            name,
            token: lease,
            shard,
            released: false,
        })
    }

    /// The entry registered under `name`: a snapshot read, no message, no lock, no
    /// allocation.
    #[inline]
    pub fn lookup(&self, name: &str) -> Result<Option<Entry>, RegistryError> {
        let name = Name::new(name)?;
        let shard = self.inner.shard_of(name.key());
        self.inner.rt.check_readable(shard)?;
        if self.inner.centralized() {
            return Ok(self
                .inner
                .round_trip(|reply| RegistryCommand::Lookup { name, reply })?);
        }
        Ok(lookup(&self.inner.ports[shard].registry, &name))
    }

    /// Every entry, read shard by shard from the snapshots (each entry as it was when
    /// its shard was read).
    pub fn entries(&self) -> Result<Vec<Entry>, RegistryError> {
        self.inner.check_open()?;
        if self.inner.centralized() {
            return Ok(self
                .inner
                .round_trip(|reply| RegistryCommand::Scan { reply })?);
        }
        let mut out = Vec::new();
        let mut words = Vec::new();
        for (shard, port) in self.inner.ports.iter().enumerate() {
            self.inner.rt.check_readable(shard)?;
            port.registry.scan_into(&mut words);
            out.extend(words.iter().filter_map(|(_, w)| Entry::from_words(w)));
        }
        Ok(out)
    }

    /// The entries that have every capability in `capabilities` (an unknown capability
    /// name matches nothing; an empty list matches every entry).
    pub fn find_by_capability<S: AsRef<str>>(
        &self,
        capabilities: &[S],
    ) -> Result<Vec<Entry>, RegistryError> {
        let mut wanted = CapabilitySet::EMPTY;
        for c in capabilities {
            match self.inner.capabilities.get(c.as_ref()) {
                Some(id) => wanted.insert(id)?,
                None => {
                    self.inner.check_open()?;
                    return Ok(Vec::new());
                }
            }
        }
        let mut entries = self.entries()?;
        entries.retain(|e| e.metadata.capabilities.is_superset(&wanted));
        Ok(entries)
    }

    /// The entries that satisfy every filter.
    pub fn query(&self, filters: &[Filter]) -> Result<Vec<Entry>, RegistryError> {
        let mut entries = self.entries()?;
        entries.retain(|e| filters.iter().all(|f| f.matches(e)));
        Ok(entries)
    }

    /// Number of entries, summed over the shards' published counts.
    pub fn count(&self) -> Result<usize, RegistryError> {
        self.inner.rt.check_all_readable()?;
        if self.inner.centralized() {
            return Ok(self.entries()?.len());
        }
        Ok(self.inner.ports.iter().map(|p| p.registry.len()).sum())
    }

    /// The names of the capabilities in `set`.
    pub fn capability_names(&self, set: &CapabilitySet) -> Vec<String> {
        set.ids()
            .filter_map(|id| self.inner.capabilities.name(id).map(str::to_owned))
            .collect()
    }
}

/// Ownership of a registry entry. Only the lease can change or remove its entry;
/// [`release`](Self::release) or dropping it removes the entry.
///
/// Dropping sends the removal without waiting for the answer, on a queue that always has
/// room, so a release is never lost and never blocks (after shutdown there is nothing to
/// remove).
pub struct Lease {
    inner: Arc<Inner>,
    name: Name,
    token: u64,
    shard: usize,
    released: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("name", &self.name).finish()
    }
}

impl Lease {
    /// The leased name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Replaces the entry's metadata; returns the entry as published.
    pub fn update_metadata(&self, metadata: &MetadataSpec) -> Result<Entry, RegistryError> {
        self.inner.check_open()?;
        let metadata = Registry::new(&self.inner).resolve(metadata)?;
        let (name, lease) = (self.name, self.token);
        self.inner
            .call(self.shard, |reply| RegistryCommand::UpdateMetadata {
                name,
                lease,
                metadata,
                reply,
            })
            .wait()?
    }

    /// Removes the entry and waits until it is gone from the snapshot. The removal is
    /// never refused for room (it goes on the shard's control queue); it is refused with
    /// `ShutDown` once shutdown has begun (the entry then goes with the engine).
    pub fn release(mut self) -> Result<(), RegistryError> {
        self.released = true;
        let (name, lease) = (self.name, self.token);
        let (ticket, reply) = self.inner.rt.ticket();
        self.inner.rt.control(
            self.shard,
            RegistryCommand::Unregister { name, lease, reply }.into(),
        )?;
        ticket.wait()??;
        Ok(())
    }
}

impl Drop for Lease {
    /// Sends the removal without waiting for it, on the shard's control queue: never
    /// blocks, never refused for room. After shutdown there is nothing left to remove.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (name, lease) = (self.name, self.token);
        let cmd = RegistryCommand::Unregister {
            name,
            lease,
            reply: Reply::Nobody,
        };
        let _: Result<(), Error> = self.inner.rt.control(self.shard, cmd.into());
    }
}
