//! Organisations: sibling ASNs grouped under one id (`china-unicom` for
//! AS4837, AS9929, AS4808, AS17621, ...), as the metrics and `infer` name
//! upstreams. An embedded default covers the target's known upstreams and
//! neighbours; a file (`--orgs`) extends or overrides it, one mapping per
//! line: `4837 china-unicom` (`AS4837` also accepted), `#` comments.

use std::collections::HashMap;

/// Embedded ASN -> organisation mapping.
pub const DEFAULT_ORGS: &[(u32, &str)] = &[
    // China Unicom and its siblings (CNC/China Netcom backbone and
    // provincial networks).
    (4837, "china-unicom"),
    (9929, "china-unicom"),
    (4808, "china-unicom"),
    (17621, "china-unicom"),
    (17622, "china-unicom"),
    (17623, "china-unicom"),
    (10099, "china-unicom"),
    // China Telecom.
    (4134, "china-telecom"),
    (4809, "china-telecom"),
    (23764, "china-telecom"),
    // China Mobile.
    (9808, "china-mobile"),
    (58453, "china-mobile"),
    // Russia: TransTeleCom, Rostelecom.
    (20485, "transtelecom"),
    (12389, "rostelecom"),
    // Satellite: Intelsat (2012-2013), SatGate.
    (22351, "intelsat"),
    (30721, "satgate"),
    // Cenbong (China side seen near 103.35.255.254).
    (134544, "cenbong"),
    // Inside the target: Star JV.
    (131279, "star-jv"),
];

/// ASN -> organisation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orgs {
    map: HashMap<u32, String>,
}

impl Default for Orgs {
    fn default() -> Self {
        Self {
            map: DEFAULT_ORGS
                .iter()
                .map(|(a, o)| (*a, (*o).to_string()))
                .collect(),
        }
    }
}

/// A mapping file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {what}")]
pub struct OrgsError {
    pub origin: String,
    pub line: usize,
    pub what: String,
}

impl Orgs {
    /// An empty mapping (every ASN unnamed).
    pub fn empty() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    /// The organisation of `asn`, if known.
    pub fn of(&self, asn: u32) -> Option<&str> {
        self.map.get(&asn).map(String::as_str)
    }

    /// The name an upstream gets in metrics: the organisation, or
    /// `AS<n>` when none is known.
    pub fn label(&self, asn: u32) -> String {
        self.of(asn)
            .map_or_else(|| format!("AS{asn}"), ToString::to_string)
    }

    /// Adds or overrides mappings from `text` (named `origin` in errors).
    pub fn extend_from(&mut self, text: &str, origin: &str) -> Result<usize, OrgsError> {
        let mut n = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |what: String| OrgsError {
                origin: origin.to_string(),
                line: i + 1,
                what,
            };
            let mut parts = line.split_whitespace();
            let (Some(asn), Some(org), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err(format!("expected `ASN organisation`, got {line:?}")));
            };
            let digits = asn
                .strip_prefix("AS")
                .or_else(|| asn.strip_prefix("as"))
                .unwrap_or(asn);
            let asn: u32 = digits
                .parse()
                .map_err(|_| err(format!("{asn:?} is not an AS number")))?;
            if !org
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(format!(
                    "organisation id {org:?}: use lowercase letters, digits and '-' (it becomes a metric label)"
                )));
            }
            self.map.insert(asn, org.to_string());
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_share_an_organisation() {
        let o = Orgs::default();
        for asn in [4837, 9929, 4808, 17621] {
            assert_eq!(o.of(asn), Some("china-unicom"), "AS{asn}");
        }
        assert_eq!(o.of(20485), Some("transtelecom"));
        assert_eq!(o.of(22351), Some("intelsat"));
        assert_eq!(o.of(30721), Some("satgate"));
        assert_eq!(o.label(64496), "AS64496");
    }

    #[test]
    fn a_file_extends_and_overrides() {
        let mut o = Orgs::default();
        let n = o
            .extend_from(
                "# lab\nAS64496 transit-a\n20485 ttk  # renamed\n\n",
                "orgs.txt",
            )
            .expect("ok");
        assert_eq!(n, 2);
        assert_eq!(o.of(64496), Some("transit-a"));
        assert_eq!(o.of(20485), Some("ttk"));
        assert_eq!(o.of(4837), Some("china-unicom"));
    }

    #[test]
    fn bad_lines_name_the_line_and_the_fault() {
        let mut o = Orgs::default();
        let e = o
            .extend_from("4837 china-unicom\nfoo bar\n", "o.txt")
            .expect_err("bad");
        assert_eq!((e.line, e.origin.as_str()), (2, "o.txt"));
        assert!(e.what.contains("not an AS number"), "{e}");
        let e = o.extend_from("4837\n", "o.txt").expect_err("bad");
        assert!(e.what.contains("expected `ASN organisation`"), "{e}");
        let e = o
            .extend_from("4837 China Unicom\n", "o.txt")
            .expect_err("bad");
        assert!(e.what.contains("expected"), "{e}");
        let e = o
            .extend_from("4837 China_Unicom\n", "o.txt")
            .expect_err("bad");
        assert!(e.what.contains("metric label"), "{e}");
    }
}
