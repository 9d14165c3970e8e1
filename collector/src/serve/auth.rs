//! Agent tokens. The token file holds one agent per line, `NAME
//! sha256:HEX` (the SHA-256 of the token, never the token itself), `#`
//! comments and blank lines allowed. A request's bearer token is hashed
//! and compared with every entry in constant time (no early exit), so
//! neither the match nor the position of a partial match leaks through
//! timing.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Agents and their token hashes.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only; hashes stay out of logs.
        f.debug_struct("Tokens")
            .field(
                "agents",
                &self.entries.iter().map(|e| &e.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A token file that cannot be used, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {what}")]
pub struct TokenFileError {
    pub origin: String,
    pub line: usize,
    pub what: String,
}

/// Agent names: what metrics labels and ids may carry.
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// SHA-256 of a token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The line to put in a token file for `name` and `token`.
pub fn file_line(name: &str, token: &str) -> String {
    format!("{name} sha256:{}", hex::encode(hash(token)))
}

impl Tokens {
    /// Parses a token file's text.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TokenFileError> {
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |what: String| TokenFileError {
                origin: origin.to_string(),
                line: i + 1,
                what,
            };
            let mut parts = line.split_whitespace();
            let (Some(name), Some(h), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err("expected `NAME sha256:HEX`".into()));
            };
            if !valid_agent_name(name) {
                return Err(err(format!(
                    "agent name {name:?} must be 1-64 of [A-Za-z0-9._-]"
                )));
            }
            let Some(hexpart) = h.strip_prefix("sha256:") else {
                return Err(err(format!(
                    "{h:?} is not `sha256:HEX`: the file holds hashes, not tokens \
                     (make entries with `tumen-collector token {name} --token-file FILE`)"
                )));
            };
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(hexpart, &mut digest).is_err() {
                return Err(err("the sha256 value must be 64 hex digits".into()));
            }
            // An agent may hold several tokens (rotation: the new one is
            // added, handed out, then the old line deleted); one token
            // may not be shared.
            if let Some(other) = entries.iter().find(|e| e.1 == digest) {
                return Err(err(if other.0 == name {
                    format!("agent {name:?} has this token twice")
                } else {
                    format!("agents {:?} and {name:?} share one token", other.0)
                }));
            }
            entries.push((name.to_string(), digest));
        }
        Ok(Self { entries })
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TokenFileError {
            origin: origin.clone(),
            line: 0,
            what: e.to_string(),
        })?;
        Self::parse(&text, &origin)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The agent whose token this is.
    pub fn agent_for(&self, token: &str) -> Option<&str> {
        let h = hash(token);
        let mut found: Option<&str> = None;
        for (name, digest) in &self.entries {
            // Every entry is compared; no early exit.
            if bool::from(digest.ct_eq(&h)) {
                found = Some(name);
            }
        }
        found
    }
}

/// A new random token: 32 bytes, hex.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_their_agent_only() {
        let text = format!(
            "# agents\n{}\n\n{}  # second\n",
            file_line("vp-fra", "secret-a"),
            file_line("vp-sgp", "secret-b")
        );
        let t = Tokens::parse(&text, "f").expect("parse");
        assert_eq!(t.len(), 2);
        assert_eq!(t.agent_for("secret-a"), Some("vp-fra"));
        assert_eq!(t.agent_for("secret-b"), Some("vp-sgp"));
        assert_eq!(t.agent_for("secret-c"), None);
        assert_eq!(t.agent_for(""), None);
        assert!(!format!("{t:?}").contains("sha"), "no hashes in Debug");
    }

    #[test]
    fn bad_lines_name_the_line_and_the_fix() {
        let e = Tokens::parse("vp-fra plaintext-token", "tok").expect_err("plain");
        assert_eq!((e.origin.as_str(), e.line), ("tok", 1));
        assert!(e.what.contains("hashes, not tokens"), "{e}");
        let e = Tokens::parse("\nvp sha256:abc", "tok").expect_err("short");
        assert_eq!(e.line, 2);
        assert!(e.what.contains("64 hex"), "{e}");
        let e = Tokens::parse("bad/name sha256:00", "tok").expect_err("name");
        assert!(e.what.contains("agent name"), "{e}");
        let line = file_line("vp", "x");
        let e = Tokens::parse(&format!("{line}\n{line}"), "tok").expect_err("dup");
        assert!(e.what.contains("twice"), "{e}");
        let e =
            Tokens::parse(&format!("{line}\n{}", file_line("vq", "x")), "tok").expect_err("shared");
        assert!(e.what.contains("share one token"), "{e}");
        let e = Tokens::parse("vp", "tok").expect_err("alone");
        assert!(e.what.contains("NAME sha256:HEX"), "{e}");
    }

    #[test]
    fn an_agent_may_hold_two_tokens_while_rotating() {
        let text = format!("{}\n{}\n", file_line("vp", "old"), file_line("vp", "new"));
        let t = Tokens::parse(&text, "f").expect("parse");
        assert_eq!(t.agent_for("old"), Some("vp"));
        assert_eq!(t.agent_for("new"), Some("vp"));
    }

    #[test]
    fn new_tokens_are_random_hex() {
        let a = new_token().expect("a");
        let b = new_token().expect("b");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
