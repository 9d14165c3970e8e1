//! The prefix-to-origin table: longest-prefix match of IPv4 and IPv6
//! addresses to the AS that originates them, and its loaders.
//!
//! [`PrefixTable`] holds prefixes with their [`Origin`] (one AS, an AS set,
//! or several origins) and answers [`PrefixTable::lookup`] with the
//! longest matching prefix. Lookups go through a flattened form of the
//! table (disjoint address ranges, an index on the top bits and a binary
//! search; see the `lpm` module), built at the first lookup after a change
//! or by [`PrefixTable::freeze`].
//!
//! Tables are read from files by [`load`] and its relatives: pyasn/IPASN
//! `dat` files, CAIDA pfx2as, iptoasn TSV and MRT RIB dumps
//! (`TABLE_DUMP_V2` and `TABLE_DUMP`, parsed with bgpkit-parser), each
//! plain, gzip or bzip2 compressed (recognised by their first bytes). The
//! format is recognised from the content and the file name ([`Format::detect`])
//! or given. A malformed line is a [`LoadError`] naming the file, the line
//! and the text; a truncated MRT dump is read up to its last whole record
//! and said so in the [`LoadReport`].

mod live;
mod load;
mod lpm;
mod mrt;
mod origin;
pub(crate) mod report;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub use live::{build, LiveTable, TableFileError};
pub use load::{
    load, load_with_report, read, Compression, Format, LineFault, LoadError, LoadReport, MrtFault,
    UnknownFormatName,
};
pub use origin::{Origin, OriginParseError};

/// The fewest prefixes covering an address range (shared with `delegated`).
pub(crate) use lpm::range_to_prefixes;
use lpm::Family;

/// Prefixes of both address families with their origins, and
/// longest-prefix match over them.
///
/// Adding a prefix that is already present replaces its origin, so later
/// sources override earlier ones ([`PrefixTable::merge`], [`Extend`]).
/// Host bits of an added prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
/// The table is `Send + Sync`: share it behind an `Arc` and look up from
/// any thread.
#[derive(Clone, Default)]
pub struct PrefixTable {
    v4: Family<u32>,
    v6: Family<u128>,
}

impl fmt::Debug for PrefixTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixTable")
            .field("ipv4_prefixes", &self.v4.len())
            .field("ipv6_prefixes", &self.v6.len())
            .finish()
    }
}

impl PrefixTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of prefixes, both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of IPv4 prefixes.
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// Number of IPv6 prefixes.
    pub fn len_v6(&self) -> usize {
        self.v6.len()
    }

    /// Adds `net` with `origin`, or replaces the origin of an equal prefix
    /// and returns the one replaced. Host bits of `net` are cleared.
    pub fn insert(&mut self, net: IpNet, origin: Origin) -> Option<Origin> {
        match net {
            IpNet::V4(n) => self.v4.insert(u32::from(n.addr()), n.prefix_len(), origin),
            IpNet::V6(n) => self.v6.insert(u128::from(n.addr()), n.prefix_len(), origin),
        }
    }

    /// The origin of exactly `net` (host bits ignored), not a longest match.
    pub fn get(&self, net: &IpNet) -> Option<&Origin> {
        match net {
            IpNet::V4(n) => self.v4.get(u32::from(n.addr()), n.prefix_len()),
            IpNet::V6(n) => self.v6.get(u128::from(n.addr()), n.prefix_len()),
        }
    }

    /// The longest prefix that holds `addr`, and its origin.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up among
    /// the IPv6 prefixes like any other IPv6 address.
    pub fn lookup(&self, addr: IpAddr) -> Option<(IpNet, &Origin)> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a).map(|(n, o)| (IpNet::V4(n), o)),
            IpAddr::V6(a) => self.lookup_v6(a).map(|(n, o)| (IpNet::V6(n), o)),
        }
    }

    /// [`PrefixTable::lookup`] for an IPv4 address.
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<(Ipv4Net, &Origin)> {
        let ((net, len), origin) = self.v4.lookup(u32::from(addr))?;
        Some((Ipv4Net::new(Ipv4Addr::from(net), len).ok()?, origin))
    }

    /// [`PrefixTable::lookup`] for an IPv6 address.
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<(Ipv6Net, &Origin)> {
        let ((net, len), origin) = self.v6.lookup(u128::from(addr))?;
        Some((Ipv6Net::new(Ipv6Addr::from(net), len).ok()?, origin))
    }

    /// The primary origin AS ([`Origin::primary`]) of the longest prefix
    /// holding `addr`.
    ///
    /// Faster than [`PrefixTable::lookup`]: it reads only the lookup
    /// structure, which keeps the primary ASNs beside the ranges.
    pub fn lookup_asn(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup_asn(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup_asn(u128::from(a)),
        }
    }

    /// Builds the lookup structure now, so that the first lookup after
    /// loading is not slow. Lookups build it themselves when needed;
    /// adding or replacing a prefix drops it.
    pub fn freeze(&self) {
        self.v4.freeze();
        self.v6.freeze();
    }

    /// Number of disjoint address ranges (with or without an origin) of the
    /// lookup structure, both families: a measure of its size.
    pub fn range_count(&self) -> usize {
        self.v4.range_count() + self.v6.range_count()
    }

    /// Moves every prefix of `other` into this table; `other`'s origin wins
    /// for prefixes both hold.
    pub fn merge(&mut self, other: PrefixTable) {
        self.v4.merge(other.v4);
        self.v6.merge(other.v6);
    }

    /// Every prefix with its origin: IPv4 first, each family in the order
    /// the prefixes were first added.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &Origin)> + '_ {
        let v4 = self.v4.iter().filter_map(|((a, l), o)| {
            Some((IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).ok()?), o))
        });
        let v6 = self.v6.iter().filter_map(|((a, l), o)| {
            Some((IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).ok()?), o))
        });
        v4.chain(v6)
    }

    /// Reads a table file, its format and compression recognised from its
    /// content and name. Same as [`load`].
    pub fn load(path: impl AsRef<Path>) -> Result<PrefixTable, LoadError> {
        load(path)
    }

    /// Reads a table file in `format` (or the recognised one) into this
    /// table, whose origins it overrides for equal prefixes. On error this
    /// table is left as it was.
    pub fn load_into(
        &mut self,
        path: impl AsRef<Path>,
        format: Option<Format>,
    ) -> Result<LoadReport, LoadError> {
        let (table, report) = load_with_report(path, format)?;
        self.merge(table);
        Ok(report)
    }
}

impl Extend<(IpNet, Origin)> for PrefixTable {
    fn extend<I: IntoIterator<Item = (IpNet, Origin)>>(&mut self, iter: I) {
        for (net, origin) in iter {
            self.insert(net, origin);
        }
    }
}

impl FromIterator<(IpNet, Origin)> for PrefixTable {
    fn from_iter<I: IntoIterator<Item = (IpNet, Origin)>>(iter: I) -> Self {
        let mut table = PrefixTable::new();
        table.extend(iter);
        table
    }
}
