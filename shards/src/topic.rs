//! Event topics, topic patterns and an index of subscriptions by pattern.
//!
//! A **topic** is a dotted name such as `auction.bid`: 1 to [`MAX_SEGMENTS`] non-empty
//! segments of `[A-Za-z0-9_-]`, at most [`MAX_TOPIC_LEN`] bytes in all.
//!
//! A **pattern** is a topic whose segments may also be wildcards:
//!
//! - `*` matches exactly one segment, in any position (`a.*.c`, `*.bid`);
//! - `**` matches **zero** or more segments and may only be the last segment: `a.**`
//!   matches `a`, `a.b` and `a.b.c` (like AMQP's `#`), and `**` alone matches every topic.
//!
//! Wildcards are whole segments: `a*b`, `*a`, `***` are refused, as are empty segments,
//! other characters and a `**` that is not last.
//!
//! ```
//! use mabeam_shards::topic::{Pattern, PatternIndex};
//!
//! let bids = Pattern::parse("auction.*.bid").expect("valid pattern");
//! assert!(bids.matches("auction.42.bid"));
//! assert!(!bids.matches("auction.bid"));
//! let all = Pattern::parse("auction.**").expect("valid pattern");
//! assert!(all.matches("auction") && all.matches("auction.42.bid"));
//!
//! let mut index = PatternIndex::new();
//! index.insert(&bids, "bids");
//! index.insert(&all, "everything");
//! let mut hits = Vec::new();
//! index.for_each_match("auction.42.bid", |&name| hits.push(name));
//! hits.sort();
//! assert_eq!(hits, ["bids", "everything"]);
//! ```

use std::fmt;

use hashbrown::HashMap;

/// Longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;
/// Most segments in a topic or pattern.
pub const MAX_SEGMENTS: usize = 16;

/// Why a topic or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The empty string.
    Empty,
    /// Longer than [`MAX_TOPIC_LEN`] bytes.
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The bound, [`MAX_TOPIC_LEN`].
        max: usize,
    },
    /// More than [`MAX_SEGMENTS`] segments.
    TooManySegments {
        /// Number of segments.
        count: usize,
        /// The bound, [`MAX_SEGMENTS`].
        max: usize,
    },
    /// A segment is empty (`a..b`, `.a`, `a.`).
    EmptySegment {
        /// Index of the segment, from 0.
        segment: usize,
    },
    /// A character outside `[A-Za-z0-9_-]` (or a `*` in a topic).
    InvalidChar {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        ch: char,
    },
    /// A pattern segment mixes `*` with other characters (`a*b`, `*a`, `***`).
    PartialWildcard {
        /// Index of the segment, from 0.
        segment: usize,
    },
    /// A pattern has `**` before its last segment.
    MisplacedRest {
        /// Index of the `**` segment, from 0.
        segment: usize,
    },
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty topic"),
            Self::TooLong { len, max } => {
                write!(f, "topic of {len} bytes exceeds the bound of {max}")
            }
            Self::TooManySegments { count, max } => {
                write!(f, "topic of {count} segments exceeds the bound of {max}")
            }
            Self::EmptySegment { segment } => write!(f, "segment {segment} is empty"),
            Self::InvalidChar { offset, ch } => write!(
                f,
                "character {ch:?} at byte {offset} is not one of A-Z a-z 0-9 _ -"
            ),
            Self::PartialWildcard { segment } => write!(
                f,
                "segment {segment} mixes `*` with other characters; wildcards are `*` or `**`"
            ),
            Self::MisplacedRest { segment } => {
                write!(f, "`**` at segment {segment} must be the last segment")
            }
        }
    }
}

impl std::error::Error for TopicError {}

/// Whether a topic character is allowed.
fn is_topic_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Checks the length bounds and every segment; `wildcards` allows `*` and a final `**`.
fn validate(text: &str, wildcards: bool) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong {
            len: text.len(),
            max: MAX_TOPIC_LEN,
        });
    }
    let count = text.split('.').count();
    if count > MAX_SEGMENTS {
        return Err(TopicError::TooManySegments {
            count,
            max: MAX_SEGMENTS,
        });
    }
    let mut offset = 0;
    for (segment, part) in text.split('.').enumerate() {
        if part.is_empty() {
            return Err(TopicError::EmptySegment { segment });
        }
        if wildcards && part.contains('*') {
            match part {
                "*" => {}
                "**" if segment + 1 == count => {}
                "**" => return Err(TopicError::MisplacedRest { segment }),
                _ => return Err(TopicError::PartialWildcard { segment }),
            }
        } else if let Some((at, ch)) = part
            .char_indices()
            .find(|&(_, ch)| !(ch.is_ascii() && is_topic_byte(ch as u8)))
        {
            return Err(TopicError::InvalidChar {
                offset: offset + at,
                ch,
            });
        }
        offset += part.len() + 1;
    }
    Ok(())
}

/// A validated topic (see the [module documentation](self) for the syntax).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Box<str>);

impl Topic {
    /// Validates and copies `text`.
    ///
    /// ```
    /// use mabeam_shards::topic::{Topic, TopicError};
    /// assert_eq!(Topic::parse("auction.bid").map(|t| t.segments().count()), Ok(2));
    /// assert_eq!(Topic::parse("auction..bid"), Err(TopicError::EmptySegment { segment: 1 }));
    /// ```
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        validate(text, false)?;
        Ok(Self(text.into()))
    }

    /// Checks `text` as [`parse`](Self::parse) does, without copying it.
    pub fn validate(text: &str) -> Result<(), TopicError> {
        validate(text, false)
    }

    /// The dotted name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    /// This exact segment.
    Exact(Box<str>),
    /// `*`: any one segment.
    One,
    /// `**`: zero or more segments (last only).
    Rest,
}

impl Segment {
    fn parse(part: &str) -> Self {
        match part {
            "*" => Self::One,
            "**" => Self::Rest,
            exact => Self::Exact(exact.into()),
        }
    }
}

/// A validated topic pattern (see the [module documentation](self) for the syntax).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    source: Box<str>,
    segments: Box<[Segment]>,
}

impl Pattern {
    /// Validates and parses `text`.
    ///
    /// ```
    /// use mabeam_shards::topic::{Pattern, TopicError};
    /// assert!(Pattern::parse("a.*.c").is_ok());
    /// assert_eq!(Pattern::parse("a.**.c"), Err(TopicError::MisplacedRest { segment: 1 }));
    /// assert_eq!(Pattern::parse("a*b"), Err(TopicError::PartialWildcard { segment: 0 }));
    /// ```
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        validate(text, true)?;
        Ok(Self {
            source: text.into(),
            segments: text.split('.').map(Segment::parse).collect(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no wildcard (it matches one topic only).
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|segment| matches!(segment, Segment::Exact(_)))
    }

    /// Whether `topic` is a valid topic that this pattern matches. Does not allocate;
    /// O(length of `topic`).
    pub fn matches(&self, topic: &str) -> bool {
        validate(topic, false).is_ok() && self.matches_segments(topic)
    }

    /// Whether this pattern matches an already validated topic.
    pub fn matches_topic(&self, topic: &Topic) -> bool {
        self.matches_segments(topic.as_str())
    }

    fn matches_segments(&self, topic: &str) -> bool {
        let mut parts = topic.split('.');
        for segment in self.segments.iter() {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Exact(exact) => {
                    if parts.next() != Some(&**exact) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A segment trie of `(pattern, K)` entries: finds the entries whose pattern matches a
/// topic without looking at unrelated ones.
///
/// Each node stands for a pattern prefix; its children are the exact next segments (a
/// hash map), the `*` child, and two entry lists: patterns that end at this node, and
/// patterns `prefix.**`. A lookup walks the topic's segments from the root, following
/// both the exact child and the `*` child, and collects the `**` entries of every node
/// it passes and the ending entries of the nodes it ends on.
///
/// Cost of [`for_each_match`](Self::for_each_match): one hash lookup per visited node and
/// segment, over the nodes whose prefix matches a prefix of the topic — at most
/// `MAX_SEGMENTS + 1` nodes per distinct wildcard shape of the subscribed patterns, never
/// the unrelated subscriptions — plus one call per matching entry.
///
/// Invariants: every node other than the root holds at least one entry in itself or a
/// descendant (empty nodes are pruned on removal); `len` is the number of entries.
#[derive(Debug, Clone)]
pub struct PatternIndex<K> {
    root: Node<K>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<K> {
    exact: HashMap<Box<str>, Node<K>>,
    one: Option<Box<Node<K>>>,
    /// Entries whose pattern ends at this node.
    here: Vec<K>,
    /// Entries whose pattern is this node's prefix followed by `**`.
    rest: Vec<K>,
}

impl<K> Node<K> {
    fn new() -> Self {
        Self {
            exact: HashMap::new(),
            one: None,
            here: Vec::new(),
            rest: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.one.is_none() && self.here.is_empty() && self.rest.is_empty()
    }

    fn walk<F: FnMut(&K)>(&self, remaining: Option<&str>, f: &mut F) {
        self.rest.iter().for_each(&mut *f);
        let Some(remaining) = remaining else {
            self.here.iter().for_each(f);
            return;
        };
        let (segment, tail) = match remaining.split_once('.') {
            Some((segment, tail)) => (segment, Some(tail)),
            None => (remaining, None),
        };
        if let Some(child) = self.exact.get(segment) {
            child.walk(tail, f);
        }
        if let Some(child) = &self.one {
            child.walk(tail, f);
        }
    }

    /// Removes the entries of the pattern `segments` (from this node) for which `remove`
    /// says so; prunes emptied children. Returns how many were removed.
    fn remove<F: FnMut(&K) -> bool>(&mut self, segments: &[Segment], remove: &mut F) -> usize {
        let Some((first, tail)) = segments.split_first() else {
            return retain_counting(&mut self.here, remove);
        };
        match first {
            Segment::Rest => retain_counting(&mut self.rest, remove),
            Segment::One => {
                let Some(child) = self.one.as_mut() else {
                    return 0;
                };
                let removed = child.remove(tail, remove);
                if child.is_empty() {
                    self.one = None;
                }
                removed
            }
            Segment::Exact(exact) => {
                let Some(child) = self.exact.get_mut(&**exact) else {
                    return 0;
                };
                let removed = child.remove(tail, remove);
                if child.is_empty() {
                    self.exact.remove(&**exact);
                }
                removed
            }
        }
    }

    /// Removes every entry of this subtree for which `remove` says so; prunes.
    fn remove_all<F: FnMut(&K) -> bool>(&mut self, remove: &mut F) -> usize {
        let mut removed = retain_counting(&mut self.here, remove);
        removed += retain_counting(&mut self.rest, remove);
        if let Some(child) = self.one.as_mut() {
            removed += child.remove_all(remove);
            if child.is_empty() {
                self.one = None;
            }
        }
        self.exact.retain(|_, child| {
            removed += child.remove_all(remove);
            !child.is_empty()
        });
        removed
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        1 + self.one.as_ref().map_or(0, |child| child.node_count())
            + self.exact.values().map(Node::node_count).sum::<usize>()
    }
}

/// `entries.retain(|k| !remove(k))`, returning how many were removed.
fn retain_counting<K, F: FnMut(&K) -> bool>(entries: &mut Vec<K>, remove: &mut F) -> usize {
    let before = entries.len();
    entries.retain(|entry| !remove(entry));
    before - entries.len()
}

impl<K> Default for PatternIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> PatternIndex<K> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            root: Node::new(),
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the entry `(pattern, key)`. The same key may be added under several patterns
    /// (or twice under one); each entry is reported separately by
    /// [`for_each_match`](Self::for_each_match). The index's size is bounded by what the
    /// caller inserts (the engine bounds its subscriptions).
    pub fn insert(&mut self, pattern: &Pattern, key: K) {
        let mut node = &mut self.root;
        for segment in pattern.segments.iter() {
            node = match segment {
                Segment::Rest => {
                    node.rest.push(key);
                    self.len += 1;
                    return;
                }
                Segment::One => node.one.get_or_insert_with(|| Box::new(Node::new())),
                Segment::Exact(exact) => node.exact.entry(exact.clone()).or_insert_with(Node::new),
            };
        }
        node.here.push(key);
        self.len += 1;
    }

    /// Removes the entries under exactly `pattern` whose key satisfies `remove`; returns
    /// how many. Costs one trie walk along the pattern plus a scan of its entries.
    pub fn remove<F: FnMut(&K) -> bool>(&mut self, pattern: &Pattern, mut remove: F) -> usize {
        let removed = self.root.remove(&pattern.segments, &mut remove);
        self.len -= removed;
        removed
    }

    /// Removes every entry, under any pattern, whose key satisfies `remove`; returns how
    /// many. Visits the whole trie: O(entries + nodes).
    pub fn remove_where<F: FnMut(&K) -> bool>(&mut self, mut remove: F) -> usize {
        let removed = self.root.remove_all(&mut remove);
        self.len -= removed;
        removed
    }

    /// Calls `f` once for every entry whose pattern matches `topic` (nothing if `topic`
    /// is not a valid topic). Order: unspecified. Does not allocate.
    pub fn for_each_match<F: FnMut(&K)>(&self, topic: &str, mut f: F) {
        if validate(topic, false).is_ok() {
            self.root.walk(Some(topic), &mut f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).expect("valid pattern")
    }

    #[test]
    fn topics_are_validated() {
        assert!(Topic::parse("auction.bid").is_ok());
        assert!(Topic::parse("a-b_C9").is_ok());
        assert_eq!(Topic::parse(""), Err(TopicError::Empty));
        assert_eq!(
            Topic::parse("."),
            Err(TopicError::EmptySegment { segment: 0 })
        );
        assert_eq!(
            Topic::parse("a."),
            Err(TopicError::EmptySegment { segment: 1 })
        );
        assert_eq!(
            Topic::parse("ab.c d"),
            Err(TopicError::InvalidChar { offset: 4, ch: ' ' })
        );
        assert_eq!(
            Topic::parse("a.é"),
            Err(TopicError::InvalidChar {
                offset: 2, ch: 'é'
            })
        );
        assert_eq!(
            Topic::parse("a.*"),
            Err(TopicError::InvalidChar { offset: 2, ch: '*' })
        );
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            Topic::parse(&long),
            Err(TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1,
                max: MAX_TOPIC_LEN
            })
        );
        assert!(Topic::parse(&"a".repeat(MAX_TOPIC_LEN)).is_ok());
        let deep = vec!["a"; MAX_SEGMENTS + 1].join(".");
        assert_eq!(
            Topic::parse(&deep),
            Err(TopicError::TooManySegments {
                count: MAX_SEGMENTS + 1,
                max: MAX_SEGMENTS
            })
        );
        assert!(Topic::parse(&vec!["a"; MAX_SEGMENTS].join(".")).is_ok());
        let topic = Topic::parse("x.y.z").expect("valid");
        assert_eq!(topic.segments().collect::<Vec<_>>(), ["x", "y", "z"]);
        assert_eq!(topic.to_string(), "x.y.z");
    }

    #[test]
    fn patterns_are_validated() {
        for ok in [
            "a", "a.b", "*", "**", "a.*", "*.b", "a.*.c", "a.**", "*.*.**",
        ] {
            assert!(Pattern::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Pattern::parse(""), Err(TopicError::Empty));
        assert_eq!(
            Pattern::parse("**.a"),
            Err(TopicError::MisplacedRest { segment: 0 })
        );
        assert_eq!(
            Pattern::parse("a.**.**"),
            Err(TopicError::MisplacedRest { segment: 1 })
        );
        for partial in ["a*b", "*a", "a*", "***", "a.b*"] {
            assert!(
                matches!(
                    Pattern::parse(partial),
                    Err(TopicError::PartialWildcard { .. })
                ),
                "{partial}"
            );
        }
        assert_eq!(
            Pattern::parse("a..*"),
            Err(TopicError::EmptySegment { segment: 1 })
        );
        assert_eq!(
            Pattern::parse("a.b!"),
            Err(TopicError::InvalidChar { offset: 3, ch: '!' })
        );
        assert!(pattern("a.b").is_exact());
        assert!(!pattern("a.*").is_exact());
        assert_eq!(pattern("a.**").to_string(), "a.**");
    }

    #[test]
    fn wildcards_match_as_documented() {
        let cases: &[(&str, &str, bool)] = &[
            ("a.b", "a.b", true),
            ("a.b", "a.b.c", false),
            ("a.b", "a", false),
            ("a.*", "a.b", true),
            ("a.*", "a", false),
            ("a.*", "a.b.c", false),
            ("*.b", "x.b", true),
            ("a.*.c", "a.x.c", true),
            ("a.*.c", "a.x.d", false),
            ("a.**", "a", true),
            ("a.**", "a.b", true),
            ("a.**", "a.b.c.d", true),
            ("a.**", "ab", false),
            ("a.**", "b.a", false),
            ("**", "x", true),
            ("**", "x.y.z", true),
            ("*.**", "x", true),
            ("a.*.**", "a", false),
            ("a.*.**", "a.b", true),
            ("a.b", "a..b", false),
            ("**", "", false),
            ("**", "bad topic", false),
        ];
        for &(p, topic, expected) in cases {
            assert_eq!(pattern(p).matches(topic), expected, "{p} ~ {topic}");
        }
        let topic = Topic::parse("a.b").expect("valid");
        assert!(pattern("a.*").matches_topic(&topic));
    }

    #[test]
    fn index_finds_matches_and_removes() {
        let mut index = PatternIndex::new();
        index.insert(&pattern("a.b"), 1);
        index.insert(&pattern("a.*"), 2);
        index.insert(&pattern("a.**"), 3);
        index.insert(&pattern("**"), 4);
        index.insert(&pattern("b.c"), 5);
        index.insert(&pattern("a.b"), 6);
        assert_eq!(index.len(), 6);
        let hits = |index: &PatternIndex<i32>, topic: &str| {
            let mut hits = Vec::new();
            index.for_each_match(topic, |&k| hits.push(k));
            hits.sort_unstable();
            hits
        };
        assert_eq!(hits(&index, "a.b"), [1, 2, 3, 4, 6]);
        assert_eq!(hits(&index, "a"), [3, 4]);
        assert_eq!(hits(&index, "a.x.y"), [3, 4]);
        assert_eq!(hits(&index, "b.c"), [4, 5]);
        assert_eq!(hits(&index, "a..b"), Vec::<i32>::new(), "invalid topic");

        assert_eq!(index.remove(&pattern("a.b"), |&k| k == 1), 1);
        assert_eq!(index.remove(&pattern("a.b"), |&k| k == 1), 0);
        assert_eq!(
            index.remove(&pattern("x.y"), |_| true),
            0,
            "unknown pattern"
        );
        assert_eq!(hits(&index, "a.b"), [2, 3, 4, 6]);
        assert_eq!(index.remove_where(|&k| k % 2 == 0), 3);
        assert_eq!(index.len(), 2);
        assert_eq!(hits(&index, "a.b"), [3]);
        assert_eq!(index.remove_where(|_| true), 2);
        assert!(index.is_empty());
        assert_eq!(index.root.node_count(), 1, "emptied nodes are pruned");
    }

    /// xorshift64: a tiny deterministic generator for the property test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_topic(rng: &mut Rng) -> String {
        let depth = 1 + rng.below(4);
        (0..depth)
            .map(|_| ["a", "b", "c"][rng.below(3)])
            .collect::<Vec<_>>()
            .join(".")
    }

    fn random_pattern(rng: &mut Rng) -> String {
        let depth = rng.below(4);
        let mut parts: Vec<&str> = (0..depth)
            .map(|_| ["a", "b", "c", "*"][rng.below(4)])
            .collect();
        if depth == 0 || rng.below(3) == 0 {
            parts.push("**");
        }
        parts.join(".")
    }

    #[test]
    fn index_agrees_with_brute_force_matching() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let patterns: Vec<Pattern> = (0..300)
            .map(|_| pattern(&random_pattern(&mut rng)))
            .collect();
        let mut index = PatternIndex::new();
        for (key, p) in patterns.iter().enumerate() {
            index.insert(p, key);
        }
        let topics: Vec<String> = (0..400).map(|_| random_topic(&mut rng)).collect();
        let check = |index: &PatternIndex<usize>, live: &dyn Fn(usize) -> bool| {
            for topic in &topics {
                let mut found = Vec::new();
                index.for_each_match(topic, |&k| found.push(k));
                found.sort_unstable();
                let expected: Vec<usize> = (0..patterns.len())
                    .filter(|&k| live(k) && patterns[k].matches(topic))
                    .collect();
                assert_eq!(found, expected, "topic {topic}");
            }
        };
        check(&index, &|_| true);
        assert_eq!(index.len(), patterns.len());

        // Remove every third entry by its pattern, then every key divisible by 5 anywhere.
        for key in (0..patterns.len()).step_by(3) {
            assert_eq!(index.remove(&patterns[key], |&k| k == key), 1);
        }
        check(&index, &|k| k % 3 != 0);
        index.remove_where(|&k| k % 5 == 0);
        check(&index, &|k| k % 3 != 0 && k % 5 != 0);
        assert_eq!(
            index.len(),
            (0..patterns.len())
                .filter(|k| k % 3 != 0 && k % 5 != 0)
                .count()
        );
        index.remove_where(|_| true);
        assert!(index.is_empty());
        assert_eq!(index.root.node_count(), 1);
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            TopicError::MisplacedRest { segment: 1 }.to_string(),
            "`**` at segment 1 must be the last segment"
        );
        assert_eq!(
            TopicError::InvalidChar { offset: 3, ch: '!' }.to_string(),
            "character '!' at byte 3 is not one of A-Z a-z 0-9 _ -"
        );
    }
}
