//! Ping through surge-ping: `count` echo requests per destination at
//! `interval`, every one of them through the [`Gate`] (allow-list and the
//! global rate cap), summarised as min/avg/max/stddev and loss.
//!
//! surge-ping clients (one per family) are opened together with the raw
//! sockets, before capabilities are dropped.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use surge_ping::{Client, Config, PingIdentifier, PingSequence, ICMP};
use tokio::task::JoinSet;

use crate::engine::Gate;
use crate::sys::SocketError;

/// The ping clients.
pub struct Pingers {
    v4: Option<Client>,
    v6: Option<Client>,
    ident: u16,
}

/// RTT statistics of one destination.
#[derive(Debug, Clone, PartialEq)]
pub struct PingSummary {
    pub dst: IpAddr,
    pub start: SystemTime,
    pub sent: u32,
    pub received: u32,
    /// RTTs in milliseconds of the answered requests.
    pub rtts: Vec<f64>,
}

impl PingSummary {
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        1.0 - f64::from(self.received) / f64::from(self.sent)
    }

    /// (min, avg, max, population stddev) in ms, when anything answered.
    pub fn stats(&self) -> Option<(f64, f64, f64, f64)> {
        if self.rtts.is_empty() {
            return None;
        }
        let n = self.rtts.len() as f64;
        let min = self.rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rtts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = self.rtts.iter().sum::<f64>() / n;
        let var = self.rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n;
        Some((min, avg, max, var.sqrt()))
    }
}

fn client(kind: ICMP) -> Result<Client, SocketError> {
    let what = match kind {
        ICMP::V4 => "ICMPv4 (ping)",
        ICMP::V6 => "ICMPv6 (ping)",
    };
    let config = Config::builder()
        .kind(kind)
        .sock_type_hint(socket2::Type::RAW)
        .build();
    Client::new(&config).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            SocketError::Permission { what }
        } else {
            SocketError::Open { what, source }
        }
    })
}

impl std::fmt::Debug for Pingers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pingers")
            .field("v4", &self.v4.is_some())
            .field("v6", &self.v6.is_some())
            .field("ident", &self.ident)
            .finish()
    }
}

impl Pingers {
    /// Opens the clients the families need (inside a tokio runtime).
    pub fn open(v4: bool, v6: bool, ident: u16) -> Result<Self, SocketError> {
        Ok(Self {
            v4: if v4 { Some(client(ICMP::V4)?) } else { None },
            v6: if v6 { Some(client(ICMP::V6)?) } else { None },
            ident,
        })
    }

    /// Pings every destination `count` times, `interval` apart, all
    /// destinations interleaved; each request waits up to `wait`.
    pub async fn run(
        &self,
        gate: &mut Gate,
        dsts: &[IpAddr],
        count: u32,
        interval: Duration,
        wait: Duration,
    ) -> Vec<PingSummary> {
        let start = SystemTime::now();
        let mut out: Vec<PingSummary> = dsts
            .iter()
            .map(|&dst| PingSummary {
                dst,
                start,
                sent: 0,
                received: 0,
                rtts: Vec::new(),
            })
            .collect();
        let mut tasks: JoinSet<(usize, Option<f64>)> = JoinSet::new();
        let payload = [0x54u8; 16];
        for seq in 0..count {
            let tick = tokio::time::Instant::now() + interval;
            for (i, &dst) in dsts.iter().enumerate() {
                let client = match dst {
                    IpAddr::V4(_) => self.v4.as_ref(),
                    IpAddr::V6(_) => self.v6.as_ref(),
                };
                let Some(client) = client else { continue };
                if gate.acquire(dst).await.is_err() {
                    continue;
                }
                let mut pinger = client.pinger(dst, PingIdentifier(self.ident)).await;
                pinger.timeout(wait);
                out[i].sent += 1;
                let seq = PingSequence(u16::try_from(seq).unwrap_or(u16::MAX));
                tasks.spawn(async move {
                    let rtt = pinger
                        .ping(seq, &payload)
                        .await
                        .ok()
                        .map(|(_, d)| d.as_secs_f64() * 1e3);
                    (i, rtt)
                });
            }
            if seq + 1 < count {
                tokio::time::sleep_until(tick).await;
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((i, Some(rtt))) = done {
                out[i].received += 1;
                out[i].rtts.push((rtt * 1e3).round() / 1e3);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_statistics() {
        let s = PingSummary {
            dst: "198.18.176.1".parse().expect("ip"),
            start: SystemTime::UNIX_EPOCH,
            sent: 4,
            received: 3,
            rtts: vec![10.0, 20.0, 30.0],
        };
        assert!((s.loss_ratio() - 0.25).abs() < 1e-9);
        let (min, avg, max, sd) = s.stats().expect("stats");
        assert_eq!((min, avg, max), (10.0, 20.0, 30.0));
        assert!((sd - 8.164_965_8).abs() < 1e-6, "{sd}");
        let none = PingSummary {
            rtts: vec![],
            received: 0,
            ..s
        };
        assert_eq!(none.stats(), None);
        assert_eq!(none.loss_ratio(), 1.0);
    }
}
