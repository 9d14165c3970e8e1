//! The corpus of real, published traceroutes (`tests/corpus/`, see its
//! README and manifest): every file is read as published, not cleaned up,
//! and every definite expected answer is checked. The tables are the real
//! RouteViews-derived ones in `../shared/data` (2014 for IPv4, 2015 for
//! IPv6), as the manifest's reasoning used.
//!
//! Prints the figures the closing note quotes: parsed as published N/M,
//! right K/J.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tumen_collector::infer::{explain, AsnLookup, Context, Target};
use tumen_collector::input::{decode, read_traces};
use tumen_collector::ixp::IxpList;
use tumen_collector::orgs::Orgs;
use tumen_collector::table::PrefixTable;

#[derive(Debug, Deserialize)]
struct Manifest {
    trace: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    format: String,
    source: String,
    traces: usize,
    #[serde(default)]
    target_asn: Option<u32>,
    #[serde(default)]
    target_prefix: Vec<String>,
    expected: String,
    #[serde(default)]
    expected_asn: Option<u32>,
    #[serde(default)]
    per_trace: Vec<String>,
    reasoning: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn manifest() -> Manifest {
    let path = corpus_dir().join("manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// IPv4 from the 2014 table, IPv6 from the 2015 one.
struct Tables {
    v4: PrefixTable,
    v6: PrefixTable,
}

impl AsnLookup for Tables {
    fn asn(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(_) => self.v4.lookup_asn(addr),
            IpAddr::V6(_) => self.v6.lookup_asn(addr),
        }
    }
}

fn shared(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: the corpus test needs ../shared beside the repository",
        p.display()
    );
    p
}

fn tables() -> Tables {
    let load = |name: &str| {
        tumen_collector::table::build(&[shared(name)]).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    Tables {
        v4: load("ipasn_20140513.dat.gz"),
        v6: load("ipasn6_20151101.dat.gz"),
    }
}

fn target(e: &Entry) -> Target {
    if e.target_asn.is_none() && e.target_prefix.is_empty() {
        return Target::dprk();
    }
    Target {
        prefixes: e
            .target_prefix
            .iter()
            .map(|p| {
                p.parse()
                    .unwrap_or_else(|err| panic!("{}: {p}: {err}", e.file))
            })
            .collect(),
        asns: e.target_asn.into_iter().collect(),
    }
}

#[test]
fn the_manifest_is_complete_and_names_real_files() {
    let m = manifest();
    assert!(m.trace.len() >= 40, "only {} files", m.trace.len());
    let mut formats: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &m.trace {
        assert!(corpus_dir().join(&e.file).exists(), "{} is missing", e.file);
        assert!(
            e.source.starts_with("http"),
            "{}: source {:?}",
            e.file,
            e.source
        );
        assert!(!e.reasoning.is_empty(), "{}: no reasoning", e.file);
        let definite = !matches!(e.expected.as_str(), "ambiguous" | "unknown");
        if definite && e.per_trace.is_empty() {
            assert_eq!(
                Some(e.expected.clone()),
                e.expected_asn.map(|a| format!("AS{a}")),
                "{}: expected and expected_asn disagree",
                e.file
            );
        }
        *formats.entry(e.format.as_str()).or_default() += 1;
    }
    let traces: usize = m.trace.iter().map(|e| e.traces).sum();
    assert!(traces >= 40, "only {traces} traces");
    println!(
        "corpus: {} files, {traces} traces, formats {formats:?}",
        m.trace.len()
    );
}

#[test]
fn every_published_trace_reads_as_published_and_definite_answers_are_right() {
    let m = manifest();
    let tables = tables();
    let orgs = Orgs::default();
    let ixps = IxpList::default_list();
    let (mut files_read, mut traces_total, mut traces_read) = (0, 0, 0);
    let (mut checked, mut right) = (0, 0);
    let mut failures: Vec<String> = Vec::new();
    for e in &m.trace {
        let bytes = std::fs::read(corpus_dir().join(&e.file)).expect("corpus file");
        let text = decode(&bytes);
        traces_total += e.traces;
        let read = match read_traces(&text, &e.file) {
            Ok(r) => r,
            Err(err) => {
                failures.push(format!("{} ({}): not read: {err}", e.file, e.format));
                continue;
            }
        };
        if read.traces.len() != e.traces {
            failures.push(format!(
                "{} ({}): {} traces read as {}, the manifest says {}",
                e.file,
                e.format,
                read.traces.len(),
                read.format,
                e.traces
            ));
            continue;
        }
        files_read += 1;
        traces_read += e.traces;
        let target = target(e);
        let ctx = Context {
            target: &target,
            lookup: &tables,
            orgs: &orgs,
            ixps,
        };
        for (k, t) in read.traces.iter().enumerate() {
            let want = e.per_trace.get(k).unwrap_or(&e.expected);
            if want == "ambiguous" {
                continue;
            }
            checked += 1;
            let x = explain(t, &ctx);
            let got = match x.inference.upstream_asn {
                Some(a) => format!("AS{a}"),
                None => x.inference.upstream.clone(),
            };
            if &got == want {
                right += 1;
            } else {
                failures.push(format!(
                    "{} trace {} ({}): upstream {got}, expected {want} ({})\n{}",
                    e.file,
                    k + 1,
                    e.format,
                    e.reasoning,
                    tumen_collector::infer::render_explained(&x, &t.origin)
                ));
            }
        }
    }
    println!(
        "corpus: parsed as published {files_read}/{} files ({traces_read}/{traces_total} traces); \
         right {right}/{checked} definite answers",
        m.trace.len()
    );
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
