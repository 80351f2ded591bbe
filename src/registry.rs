//! The agent registry: names → handle and metadata, with leases.
//!
//! Writes go to the shard that owns the name (a stable hash of it); lookups, capability
//! searches, queries and counts read the shards' published snapshots and never send a
//! message (in [`Mode::Centralized`](crate::Mode::Centralized) they are round trips, as
//! in the original GenServer).
//!
//! Bounds: names are 1 to [`MAX_NAME_LEN`] bytes of UTF-8 without control characters
//! ([`Name::new`] has the rule; capability names follow it too); at most
//! [`MAX_CAPABILITIES`] distinct capability names in use per engine, where a name is in
//! use while a stored entry holds it (a refused registration holds none, and a name's id
//! is freed for reuse when its last entry goes); at most `Config::registry_capacity`
//! entries per shard.
//!
//! A lease's release (by [`Lease::release`] or by dropping the lease) goes to the shard
//! on its control queue, which is never refused for room: there is at most one release
//! per lease, so that queue is bounded by the number of leases. Dropping a lease never
//! blocks.

use std::sync::Arc;

use mabeam_shards::interner::{InternError, Interner};
use mabeam_shards::registry::{lookup_handle_keyed, lookup_keyed, RegistryShard, RECORD_WORDS};
pub use mabeam_shards::registry::{
    CapabilitySet, Entry, Health, Metadata, Name, RegistryError, MAX_CAPABILITIES, MAX_NAME_LEN,
};
use mabeam_shards::table::TableReader;

use crate::engine::{Inner, ServiceCtx};
use crate::events::Payload;
use crate::runtime::Reply;
use crate::telemetry::ops::read;
use crate::Error;

/// Registry commands; `lease` is the token of the [`Lease`] that asks.
pub(crate) enum RegistryCommand {
    Register {
        entry: Entry,
        /// The references on `entry`'s capabilities; kept by the shard if it stores it.
        held: HeldCapabilities,
        lease: u64,
        reply: Reply<Result<(), RegistryError>>,
    },
    UpdateMetadata {
        name: Name,
        lease: u64,
        metadata: Metadata,
        /// The references on `metadata`'s capabilities; kept by the shard if it stores it.
        held: HeldCapabilities,
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

/// References on capability ids held for metadata on its way to a shard. Dropping it
/// gives them back: a registration or update that is refused, or never applied (refused
/// for room, shut down, its shard dead), spends no names. The shard calls
/// [`keep`](Self::keep) once the metadata is stored: the entry owns them from then on,
/// and the applier gives them back when the entry is removed or its metadata replaced.
pub(crate) struct HeldCapabilities {
    set: CapabilitySet,
    interner: Arc<Interner>,
}

impl HeldCapabilities {
    /// The stored entry owns the references now.
    fn keep(mut self) {
        self.set = CapabilitySet::EMPTY;
    }
}

impl Drop for HeldCapabilities {
    fn drop(&mut self) {
        release_all(&self.interner, &self.set);
    }
}

/// Gives back one reference on every id in `set`.
fn release_all(interner: &Interner, set: &CapabilitySet) {
    for id in set.ids() {
        interner.release(id);
    }
}

/// The shard side: applies one registry command to the shard's registry. The entries a
/// command removes or replaces give their capability references back to `capabilities`
/// after the table no longer publishes them.
pub(crate) fn apply(
    registry: &mut RegistryShard,
    capabilities: &Interner,
    cmd: RegistryCommand,
    ctx: &mut ServiceCtx<'_>,
) {
    match cmd {
        RegistryCommand::Register {
            entry,
            held,
            lease,
            reply,
        } => {
            let r = registry.register(entry, lease);
            if r.is_ok() {
                held.keep();
                let (name, handle) = (entry.name, entry.handle);
                ctx.events.service(
                    "registry.registered",
                    || Payload::Registered { name, handle },
                    Some(handle),
                    ctx.now,
                );
            }
            ctx.answer(reply, r);
        }
        RegistryCommand::UpdateMetadata {
            name,
            lease,
            metadata,
            held,
            reply,
        } => {
            let old = registry.get(&name);
            let r = registry.update_metadata(&name, lease, metadata);
            if r.is_ok() {
                held.keep();
                if let Some(old) = old {
                    release_all(capabilities, &old.metadata.capabilities);
                }
            }
            ctx.answer(reply, r);
        }
        RegistryCommand::Unregister { name, lease, reply } => {
            let r = registry.unregister(&name, lease);
            if let Ok(entry) = &r {
                release_all(capabilities, &entry.metadata.capabilities);
                let handle = entry.handle;
                ctx.events.service(
                    "registry.unregistered",
                    || Payload::Unregistered { name, handle },
                    Some(handle),
                    ctx.now,
                );
            }
            ctx.answer(reply, r);
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

/// Where [`Registry::route_by_name`] sends a read by name.
enum ByName<'t> {
    /// The owning shard's published table, the validated name and its key.
    Table(&'t TableReader<RECORD_WORDS>, Name, u64),
    /// The centralized shape: a round trip to the one shard.
    Centralized(Name),
}

/// The registry of an engine; get it with [`Engine::registry`](crate::EngineHandle::registry).
#[derive(Clone, Copy)]
pub struct Registry<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Registry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Registry", f)
    }
}

impl<'e> Registry<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Checks every capability name, then takes one reference on each (interning new
    /// ones); the references go back when the returned guard drops, unless a shard keeps
    /// them with the entry.
    fn resolve(&self, spec: &MetadataSpec) -> Result<(Metadata, HeldCapabilities), RegistryError> {
        // Capability names follow the registry's name rule (see `Name::new`); all are
        // checked before any reference is taken.
        if spec.capabilities.iter().any(|c| Name::new(c).is_err()) {
            return Err(RegistryError::InvalidCapability);
        }
        let mut held = HeldCapabilities {
            set: CapabilitySet::EMPTY,
            interner: Arc::clone(&self.inner.capabilities),
        };
        for c in &spec.capabilities {
            let id = match self.inner.capabilities.acquire(c) {
                Ok(id) => id,
                Err(InternError::Full) => return Err(RegistryError::TooManyCapabilities),
                Err(InternError::BadLength) => return Err(RegistryError::InvalidCapability),
            };
            if held.set.contains(id) {
                self.inner.capabilities.release(id); // listed twice: one reference
            } else {
                held.set.insert(id)?;
            }
        }
        let metadata = Metadata {
            capabilities: held.set,
            health: spec.health,
            load: spec.load,
            node: spec.node,
        };
        Ok((metadata, held))
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
        let (metadata, held) = self.resolve(metadata)?;
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
                held,
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
    #[inline(always)]
    pub fn lookup(&self, name: &str) -> Result<Option<Entry>, RegistryError> {
        Ok(match self.route_by_name(name)? {
            ByName::Table(table, name, key) => lookup_keyed(table, &name, key),
            ByName::Centralized(name) => self.lookup_round_trip(name)?,
        })
    }

    /// The handle registered under `name`: [`lookup`](Self::lookup) for a caller that
    /// needs only the handle (a snapshot read that copies out one word instead of the
    /// whole [`Entry`]). Counted in telemetry as a lookup.
    #[inline(always)]
    pub fn handle(&self, name: &str) -> Result<Option<u64>, RegistryError> {
        Ok(match self.route_by_name(name)? {
            ByName::Table(table, name, key) => lookup_handle_keyed(table, &name, key),
            ByName::Centralized(name) => self.lookup_round_trip(name)?.map(|e| e.handle),
        })
    }

    /// Where a read of what is registered under `name` goes (counted as a lookup): the
    /// name's shard's snapshot table with the name and its key (hashed once, for the
    /// routing and the table), or in the centralized shape a round trip.
    ///
    /// The table read itself stays in [`lookup`](Self::lookup) and
    /// [`handle`](Self::handle), each a direct call the compiler inlines: the decoded
    /// entry is then built where the caller keeps it, instead of in a returned temporary
    /// that the caller copies (a copy that waits on the narrower stores just made).
    #[inline(always)]
    fn route_by_name(&self, name: &str) -> Result<ByName<'_>, RegistryError> {
        let name = Name::new(name)?;
        let key = name.key();
        let shard = self.inner.shard_of(key);
        self.inner.rt.check_readable(shard)?;
        self.inner.read(read::REGISTRY_LOOKUP);
        if self.inner.centralized() {
            return Ok(ByName::Centralized(name));
        }
        Ok(ByName::Table(&self.inner.ports[shard].registry, name, key))
    }

    /// The centralized shape's lookup: a round trip to the one shard.
    #[inline(never)]
    fn lookup_round_trip(&self, name: Name) -> Result<Option<Entry>, RegistryError> {
        Ok(self
            .inner
            .round_trip(|reply| RegistryCommand::Lookup { name, reply })?)
    }

    /// Every entry, read shard by shard from the snapshots (each entry as it was when
    /// its shard was read).
    pub fn entries(&self) -> Result<Vec<Entry>, RegistryError> {
        self.inner.check_open()?;
        self.inner.read(read::REGISTRY_ENTRIES);
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
    ///
    /// Capability ids are reused once no entry holds a name: if one of the asked names
    /// was freed and its id given to another name while the shards were read, the read
    /// is taken again (as a seqlock read is), so an entry is only ever matched by a name
    /// it holds.
    pub fn find_by_capability<S: AsRef<str>>(
        &self,
        capabilities: &[S],
    ) -> Result<Vec<Entry>, RegistryError> {
        self.inner.read(read::REGISTRY_FIND);
        let interner = &self.inner.capabilities;
        loop {
            let mut wanted = CapabilitySet::EMPTY;
            let mut resolved = Vec::with_capacity(capabilities.len());
            for c in capabilities {
                match interner.resolve(c.as_ref()) {
                    Some(r) => {
                        wanted.insert(r.id)?;
                        resolved.push(r);
                    }
                    None => {
                        self.inner.check_open()?;
                        return Ok(Vec::new());
                    }
                }
            }
            let mut entries = self.entries()?;
            if resolved
                .iter()
                .all(|r| interner.generation(r.id) == Some(r.generation))
            {
                entries.retain(|e| e.metadata.capabilities.is_superset(&wanted));
                return Ok(entries);
            }
        }
    }

    /// The entries that satisfy every filter.
    pub fn query(&self, filters: &[Filter]) -> Result<Vec<Entry>, RegistryError> {
        self.inner.read(read::REGISTRY_QUERY);
        let mut entries = self.entries()?;
        entries.retain(|e| filters.iter().all(|f| f.matches(e)));
        Ok(entries)
    }

    /// Number of entries, summed over the shards' published counts.
    pub fn count(&self) -> Result<usize, RegistryError> {
        self.inner.rt.check_all_readable()?;
        self.inner.read(read::REGISTRY_COUNT);
        if self.inner.centralized() {
            return Ok(self.entries()?.len());
        }
        Ok(self.inner.ports.iter().map(|p| p.registry.len()).sum())
    }

    /// The names of the capabilities in `set`, in id order.
    ///
    /// Ids are resolved as they are now: an id whose last entry is gone may have been
    /// given to another name since `set` was read, so resolve the names of an entry
    /// while it is registered (a freed id with no new name is left out).
    pub fn capability_names(&self, set: &CapabilitySet) -> Vec<String> {
        set.ids()
            .filter_map(|id| self.inner.capabilities.name(id))
            .collect()
    }

    /// Capability names in use now (held by a stored entry or by a registration on its
    /// way), out of [`MAX_CAPABILITIES`].
    pub fn capabilities_in_use(&self) -> usize {
        self.inner.capabilities.len()
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
        let (metadata, held) = Registry::new(&self.inner).resolve(metadata)?;
        let (name, lease) = (self.name, self.token);
        self.inner
            .call(self.shard, |reply| RegistryCommand::UpdateMetadata {
                name,
                lease,
                metadata,
                held,
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
