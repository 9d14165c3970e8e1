//! Built-in target networks.

use ipnet::IpNet;

/// A named target network: prefixes, and ASNs whose space is all inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub prefixes: &'static [&'static str],
    pub asns: &'static [u32],
}

/// North Korea: Star JV's 175.45.176.0/22 (AS131279), KPTC's
/// 210.52.109.0/24 (China Netcom space) and SatGate's 77.94.35.0/24.
pub const DPRK: Preset = Preset {
    name: "dprk",
    prefixes: &["175.45.176.0/22", "210.52.109.0/24", "77.94.35.0/24"],
    asns: &[131279],
};

/// Every preset, by name.
pub const ALL: &[Preset] = &[DPRK];

impl Preset {
    /// The preset called `name`.
    pub fn named(name: &str) -> Option<Preset> {
        ALL.iter().copied().find(|p| p.name == name)
    }

    /// Its prefixes, parsed.
    pub fn nets(&self) -> Vec<IpNet> {
        self.prefixes
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The known names, for error messages.
    pub fn names() -> String {
        ALL.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_parses_without_host_bits() {
        for p in ALL {
            assert_eq!(p.nets().len(), p.prefixes.len(), "{}", p.name);
            for n in p.nets() {
                assert_eq!(n, n.trunc(), "{n}");
            }
        }
        assert_eq!(Preset::named("dprk"), Some(DPRK));
        assert_eq!(Preset::named("mars"), None);
    }
}
