//! The prefix table a running collector uses, reloadable: built from the
//! embedded table and the `--asn-table` files, swapped whole under
//! lookups when the files change (or on SIGHUP). A lookup takes the
//! current table (an `Arc`) for the batch it works on, so a reload never
//! blocks it and never shows it half a table. A file that no longer loads
//! is reported and the table in force stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::{LoadError, PrefixTable};

/// A table file that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("--asn-table {}: {source}", path.display())]
pub struct TableFileError {
    pub path: PathBuf,
    /// Boxed: a load error is large, and this is the cold path.
    #[source]
    pub source: Box<LoadError>,
}

/// The embedded table with `files` merged over it, in order, frozen for
/// lookups.
pub fn build(files: &[PathBuf]) -> Result<PrefixTable, TableFileError> {
    let mut table = crate::defaults::default_table();
    for path in files {
        let t = PrefixTable::load(path).map_err(|source| TableFileError {
            path: path.clone(),
            source: Box::new(source),
        })?;
        table.merge(t);
    }
    table.freeze();
    Ok(table)
}

/// What a file looked like when it was loaded: changes are noticed by
/// modification time and size.
type Stamp = Option<(Option<SystemTime>, u64)>;

fn stamp(p: &Path) -> Stamp {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.modified().ok(), m.len()))
}

/// The table in force, and where it came from.
#[derive(Debug)]
pub struct LiveTable {
    current: RwLock<Arc<PrefixTable>>,
    files: Vec<PathBuf>,
    stamps: Mutex<Vec<Stamp>>,
    /// Unix ms of the last successful (re)load.
    loaded_ms: AtomicU64,
}

impl LiveTable {
    /// Builds the table from `files` (see [`build`]).
    pub fn load(files: &[PathBuf]) -> Result<Self, TableFileError> {
        let stamps = files.iter().map(|p| stamp(p)).collect();
        let table = build(files)?;
        Ok(Self::with(table, files.to_vec(), stamps))
    }

    /// A fixed table (tests, `infer`).
    pub fn fixed(table: PrefixTable) -> Self {
        table.freeze();
        Self::with(table, Vec::new(), Vec::new())
    }

    fn with(table: PrefixTable, files: Vec<PathBuf>, stamps: Vec<Stamp>) -> Self {
        Self {
            current: RwLock::new(Arc::new(table)),
            files,
            stamps: Mutex::new(stamps),
            loaded_ms: AtomicU64::new(tumen_core::now_ms()),
        }
    }

    /// The table in force: keep it for a whole batch.
    pub fn current(&self) -> Arc<PrefixTable> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Unix ms of the last successful (re)load.
    pub fn loaded_ms(&self) -> u64 {
        self.loaded_ms.load(Ordering::Relaxed)
    }

    /// The files the table is built from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether a file changed (time or size) since the last load.
    pub fn changed(&self) -> bool {
        let now: Vec<Stamp> = self.files.iter().map(|p| stamp(p)).collect();
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) != now
    }

    /// Builds the table again from its files and puts it in force;
    /// the number of prefixes. On an error the table in force stays (and
    /// the files' state is remembered, so an unchanged broken file is not
    /// tried again until it changes).
    pub fn reload(&self) -> Result<usize, TableFileError> {
        let stamps: Vec<Stamp> = self.files.iter().map(|p| stamp(p)).collect();
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = stamps;
        let table = build(&self.files)?;
        let n = table.len();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        self.loaded_ms
            .store(tumen_core::now_ms(), Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_reload_swaps_the_table_and_a_broken_file_keeps_the_old_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("t.dat");
        std::fs::write(&f, "; pyasn\n198.51.100.0/24\t64500\n").expect("write");
        let live = LiveTable::load(std::slice::from_ref(&f)).expect("load");
        let before = live.current();
        assert_eq!(before.lookup_asn(ip("198.51.100.7")), Some(64500));
        assert!(!live.changed());

        std::fs::write(
            &f,
            "; pyasn\n198.51.100.0/24\t64501\n203.0.113.0/24\t64502\n",
        )
        .expect("rewrite");
        assert!(live.changed());
        let n = live.reload().expect("reload");
        assert_eq!(n, crate::defaults::default_table().len() + 2);
        let after = live.current();
        assert_eq!(after.lookup_asn(ip("198.51.100.7")), Some(64501));
        assert_eq!(after.lookup_asn(ip("203.0.113.9")), Some(64502));
        // A batch that took the table before the reload keeps its view.
        assert_eq!(before.lookup_asn(ip("198.51.100.7")), Some(64500));

        std::fs::write(&f, "; pyasn\nnot a prefix\tx\n").expect("break");
        let e = live.reload().expect_err("broken");
        assert!(e.to_string().starts_with("--asn-table "), "{e}");
        assert_eq!(live.current().lookup_asn(ip("198.51.100.7")), Some(64501));
        assert!(!live.changed(), "the broken state is remembered");
    }
}
