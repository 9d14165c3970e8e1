//! Prefix table benchmarks on real data from `../shared/data`: loading the
//! full 2014 RouteViews table (512,621 IPv4 prefixes, gzip) and
//! longest-prefix lookups on one core over pseudo-random addresses (fixed
//! seed), both `lookup` (matched prefix and origin, the origin read) and
//! `lookup_asn` (the primary ASN only, what enrichment uses). "random" is
//! uniform over the address space (62.5% of it is routed in 2014),
//! "routed" a random address of a random prefix of the table, so dense
//! regions weigh as much as their prefix count. Run with
//! `cargo bench -p tumen-collector --bench table`; the lookup figures are
//! per address (criterion's "elem/s").

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tumen_collector::table::{load, PrefixTable};

const TABLE_2014: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/ipasn_20140513.dat.gz"
);
const TABLE_2015: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/ipasn6_20151101.dat.gz"
);

/// Addresses looked up per iteration.
const BATCH: usize = 1 << 20;

/// xorshift64: deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn table(path: &str) -> Option<PrefixTable> {
    if !Path::new(path).exists() {
        eprintln!("{path} is missing: skipping (it comes with ../shared/data)");
        return None;
    }
    match load(path) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("cannot load {path}: {e}");
            None
        }
    }
}

fn bench_load(c: &mut Criterion) {
    if !Path::new(TABLE_2014).exists() {
        eprintln!("{TABLE_2014} is missing: skipping");
        return;
    }
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("ipasn_20140513.dat.gz (512,621 prefixes)", |b| {
        b.iter(|| {
            let t = load(TABLE_2014).expect("the 2014 table loads");
            assert_eq!(t.len_v4(), 512_621);
            t
        })
    });
    group.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let Some(t2014) = table(TABLE_2014) else {
        return;
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let random_v4: Vec<Ipv4Addr> = (0..BATCH)
        .map(|_| Ipv4Addr::from((rng.next() >> 32) as u32))
        .collect();
    // Addresses inside announced prefixes: each a random address of a
    // random prefix of the table.
    let nets: Vec<_> = t2014
        .iter()
        .filter_map(|(n, _)| match n {
            ipnet::IpNet::V4(n) => Some(n),
            ipnet::IpNet::V6(_) => None,
        })
        .collect();
    let routed_v4: Vec<Ipv4Addr> = (0..BATCH)
        .map(|_| {
            let r = rng.next();
            let net = nets[(r as usize >> 8) % nets.len()];
            let host = (r >> 32) as u32
                & u32::MAX
                    .checked_shr(u32::from(net.prefix_len()))
                    .unwrap_or(0);
            Ipv4Addr::from(u32::from(net.network()) | host)
        })
        .collect();
    let hits = random_v4
        .iter()
        .filter(|a| t2014.lookup_v4(**a).is_some())
        .count();
    eprintln!(
        "2014 table: {} prefixes, {} lookup ranges; {:.1}% of random IPv4 addresses are routed",
        t2014.len(),
        t2014.range_count(),
        100.0 * hits as f64 / BATCH as f64
    );

    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("v4 random, 2014 table, lookup", |b| {
        b.iter(|| {
            let mut found = 0u32;
            for a in &random_v4 {
                if let Some((_, o)) = t2014.lookup_v4(black_box(*a)) {
                    found = found.wrapping_add(o.primary());
                }
            }
            found
        })
    });
    group.bench_function("v4 routed, 2014 table, lookup", |b| {
        b.iter(|| {
            let mut found = 0u32;
            for a in &routed_v4 {
                if let Some((_, o)) = t2014.lookup_v4(black_box(*a)) {
                    found = found.wrapping_add(o.primary());
                }
            }
            found
        })
    });
    group.bench_function("v4 random, 2014 table, lookup_asn", |b| {
        b.iter(|| {
            let mut found = 0u32;
            for a in &random_v4 {
                if let Some(asn) = t2014.lookup_asn(IpAddr::V4(black_box(*a))) {
                    found = found.wrapping_add(asn);
                }
            }
            found
        })
    });
    group.bench_function("v4 routed, 2014 table, lookup_asn", |b| {
        b.iter(|| {
            let mut found = 0u32;
            for a in &routed_v4 {
                if let Some(asn) = t2014.lookup_asn(IpAddr::V4(black_box(*a))) {
                    found = found.wrapping_add(asn);
                }
            }
            found
        })
    });
    drop(t2014);

    if let Some(t2015) = table(TABLE_2015) {
        // Random addresses of 2000::/3, the global unicast space.
        let random_v6: Vec<Ipv6Addr> = (0..BATCH)
            .map(|_| {
                let a = (u128::from(rng.next()) << 64) | u128::from(rng.next());
                Ipv6Addr::from((a >> 3) | (1u128 << 125))
            })
            .collect();
        group.bench_function("v6 random in 2000::/3, 2015 table", |b| {
            b.iter(|| {
                let mut found = 0u32;
                for a in &random_v6 {
                    if let Some((_, o)) = t2015.lookup_v6(black_box(*a)) {
                        found = found.wrapping_add(o.primary());
                    }
                }
                found
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_load, bench_lookup);
criterion_main!(benches);
