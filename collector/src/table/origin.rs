//! The origin of a prefix: one AS, an AS set, or several origins.

use std::fmt;
use std::str::FromStr;

/// Who originates a prefix.
///
/// Written and parsed in CAIDA pfx2as notation: `13335` is one AS,
/// `64496,64497` an AS set (the route was aggregated and the path ends in
/// an `AS_SET`), and `_` separates the origins of a prefix that several
/// ASes announce (multi-origin, "MOAS"), each of which may itself be an AS
/// set: `64496_64497,64498`.
///
/// Build [`Origin::AsSet`] and [`Origin::Multi`] with [`Origin::as_set`]
/// and [`Origin::multi`], which keep the values in normal form (no
/// one-member set, no nested or one-part multi-origin). The enum's
/// variants are public for matching; an empty set or multi-origin built by
/// hand has no ASN and [`Origin::primary`] answers 0 for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A single origin AS.
    Asn(u32),
    /// An AS set: the members in the order the source gave them.
    AsSet(Box<[u32]>),
    /// Several origins for one prefix, most significant first (for MRT
    /// dumps: the origin seen by the most peers first). Each part is an
    /// [`Origin::Asn`] or an [`Origin::AsSet`].
    Multi(Box<[Origin]>),
}

impl Origin {
    /// An AS set with these members; a one-member set is that AS.
    pub fn as_set(members: Vec<u32>) -> Origin {
        if members.len() == 1 {
            Origin::Asn(members[0])
        } else {
            Origin::AsSet(members.into_boxed_slice())
        }
    }

    /// Several origins for one prefix, in order of significance. Nested
    /// multi-origins are flattened, repeated parts dropped, and a single
    /// remaining part is returned as it is.
    pub fn multi(parts: Vec<Origin>) -> Origin {
        let mut flat: Vec<Origin> = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                Origin::Multi(inner) => {
                    for p in inner.into_vec() {
                        if !flat.contains(&p) {
                            flat.push(p);
                        }
                    }
                }
                p => {
                    if !flat.contains(&p) {
                        flat.push(p);
                    }
                }
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap_or(Origin::Multi(Box::new([])))
        } else {
            Origin::Multi(flat.into_boxed_slice())
        }
    }

    /// The first ASN: the AS itself, the first member of a set, or the
    /// first ASN of the first part of a multi-origin. 0 (AS0, "no AS")
    /// only for an empty set built by hand.
    pub fn primary(&self) -> u32 {
        fn first(o: &Origin) -> Option<u32> {
            match o {
                Origin::Asn(a) => Some(*a),
                Origin::AsSet(m) => m.first().copied(),
                Origin::Multi(_) => None,
            }
        }
        match self {
            Origin::Multi(parts) => parts.iter().find_map(first),
            single => first(single),
        }
        .unwrap_or(0)
    }

    /// Every ASN named, in order (an AS that appears in several parts of a
    /// multi-origin appears as often).
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        let parts: &[Origin] = match self {
            Origin::Multi(parts) => parts,
            single => std::slice::from_ref(single),
        };
        parts.iter().flat_map(|p| {
            let members: &[u32] = match p {
                Origin::Asn(a) => std::slice::from_ref(a),
                Origin::AsSet(m) => m,
                // Not built by `multi`; nothing nested is looked into.
                Origin::Multi(_) => &[],
            };
            members.iter().copied()
        })
    }

    /// Whether `asn` is one of the ASNs named.
    pub fn contains(&self, asn: u32) -> bool {
        self.asns().any(|a| a == asn)
    }

    /// Whether this is a single AS (no set, no multi-origin).
    pub fn is_single(&self) -> bool {
        matches!(self, Origin::Asn(_))
    }
}

impl From<u32> for Origin {
    fn from(asn: u32) -> Self {
        Origin::Asn(asn)
    }
}

impl fmt::Display for Origin {
    /// CAIDA pfx2as notation (`a`, `a,b`, `a_b,c`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn set(f: &mut fmt::Formatter<'_>, members: &[u32]) -> fmt::Result {
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{m}")?;
            }
            Ok(())
        }
        match self {
            Origin::Asn(a) => write!(f, "{a}"),
            Origin::AsSet(m) => set(f, m),
            Origin::Multi(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str("_")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a text is not an origin in CAIDA notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginParseError {
    /// The text, or one of its `_`/`,` separated parts, is empty.
    #[error("empty AS number")]
    Empty,
    /// A part is not a decimal number.
    #[error("{0:?} is not an AS number")]
    NotANumber(String),
    /// A part is larger than 4294967295.
    #[error("{0} is larger than the largest AS number (4294967295)")]
    OutOfRange(String),
}

/// One decimal ASN, digits only.
pub(crate) fn parse_asn(text: &str) -> Result<u32, OriginParseError> {
    if text.is_empty() {
        return Err(OriginParseError::Empty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OriginParseError::NotANumber(text.to_string()));
    }
    text.parse::<u32>()
        .map_err(|_| OriginParseError::OutOfRange(text.to_string()))
}

impl FromStr for Origin {
    type Err = OriginParseError;

    /// Parses CAIDA pfx2as notation: `_` separates origins, `,` the
    /// members of an AS set.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !text.contains(['_', ',']) {
            return parse_asn(text).map(Origin::Asn);
        }
        let mut parts = Vec::new();
        for part in text.split('_') {
            let members = part
                .split(',')
                .map(parse_asn)
                .collect::<Result<Vec<u32>, _>>()?;
            parts.push(Origin::as_set(members));
        }
        Ok(Origin::multi(parts))
    }
}
