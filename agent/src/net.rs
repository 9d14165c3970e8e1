//! The production [`Network`]: the agent's one set of raw sockets
//! ([`crate::sys`]) driven by tokio, with replies parsed by
//! [`crate::packet`]. It checks the allow-list again before every send, so
//! that no code path above it can put a packet on the wire toward an
//! address the operator did not allow.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use socket2::Socket;
use tokio::io::unix::AsyncFd;

use crate::allow::AllowList;
use crate::engine::{Incoming, Network};
use crate::packet::{
    parse_icmpv4, parse_icmpv6, parse_tcp_v4, parse_tcp_v6, PacketError, ProbeSpec, Protocol,
};
use crate::sys::{self, SocketError, V4Sockets, V6Sockets};

/// Which parser a receiving socket needs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Icmp4,
    Tcp4,
    Icmp6,
    Tcp6,
}

/// Raw sockets for IPv4 and (when the host has it) IPv6.
#[derive(Debug)]
pub struct RawNetwork {
    allow: AllowList,
    v4: Option<(Socket, AsyncFd<Socket>, AsyncFd<Socket>)>,
    v6: Option<(AsyncFd<Socket>, Socket, AsyncFd<Socket>)>,
    sources: HashMap<IpAddr, IpAddr>,
    buf: Vec<u8>,
}

impl RawNetwork {
    /// Opens the sockets for the families `need_v4` / `need_v6`. Must run
    /// inside a tokio runtime.
    pub fn open(allow: AllowList, need_v4: bool, need_v6: bool) -> Result<Self, SocketError> {
        let wrap = |s: Socket, what: &'static str| {
            sys::async_fd(s).map_err(|source| SocketError::Open { what, source })
        };
        let v4 = if need_v4 {
            let s = V4Sockets::open()?;
            Some((s.send, wrap(s.icmp, "ICMPv4")?, wrap(s.tcp, "IPv4 TCP")?))
        } else {
            None
        };
        let v6 = if need_v6 {
            let s = V6Sockets::open()?;
            Some((wrap(s.icmp, "ICMPv6")?, s.udp, wrap(s.tcp, "IPv6 TCP")?))
        } else {
            None
        };
        Ok(Self {
            allow,
            v4,
            v6,
            sources: HashMap::new(),
            buf: vec![0u8; 65536],
        })
    }

    fn drain(
        &mut self,
        kind: Kind,
        out: &mut Vec<Result<Incoming, PacketError>>,
    ) -> io::Result<()> {
        let sock = match (kind, &self.v4, &self.v6) {
            (Kind::Icmp4, Some(v4), _) => v4.1.get_ref(),
            (Kind::Tcp4, Some(v4), _) => v4.2.get_ref(),
            (Kind::Icmp6, _, Some(v6)) => v6.0.get_ref(),
            (Kind::Tcp6, _, Some(v6)) => v6.2.get_ref(),
            _ => return Ok(()),
        };
        // Until the socket is empty: readiness was cleared before this call
        // (edge-triggered), so anything left behind would wait for the next
        // datagram.
        while let Some(d) = sys::recv(sock, &mut self.buf)? {
            let data = &self.buf[..d.len];
            let v6_from = match d.from {
                Some(IpAddr::V6(a)) => Some(a),
                _ => None,
            };
            let parsed = match (kind, v6_from) {
                (Kind::Icmp4, _) => parse_icmpv4(data),
                (Kind::Tcp4, _) => parse_tcp_v4(data),
                (Kind::Icmp6, Some(from)) => parse_icmpv6(data, from, d.hop_limit),
                (Kind::Tcp6, Some(from)) => parse_tcp_v6(data, from, d.hop_limit),
                _ => Err(PacketError::NotExpected(
                    "IPv6 datagram without a sender".into(),
                )),
            };
            out.push(parsed.map(|reply| Incoming {
                reply,
                kernel_ts: d.kernel_ts,
            }));
        }
        Ok(())
    }
}

async fn readable(
    fd: Option<&AsyncFd<Socket>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, Socket>> {
    match fd {
        Some(f) => f.readable().await,
        None => std::future::pending().await,
    }
}

impl Network for RawNetwork {
    fn source_for(&mut self, dst: IpAddr) -> io::Result<IpAddr> {
        if let Some(s) = self.sources.get(&dst) {
            return Ok(*s);
        }
        let s = sys::source_for(dst)?;
        self.sources.insert(dst, s);
        Ok(s)
    }

    fn send(&mut self, probe: &ProbeSpec, packet: &[u8]) -> io::Result<()> {
        if !self.allow.permits(probe.dst) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is outside the allow-list; nothing sent", probe.dst),
            ));
        }
        match probe.dst {
            IpAddr::V4(_) => {
                let (send, _, _) = self
                    .v4
                    .as_ref()
                    .ok_or_else(|| io::Error::other("IPv4 sockets not open"))?;
                sys::send_v4(send, packet, probe.dst)
            }
            IpAddr::V6(d) => {
                let (icmp, udp, tcp) = self
                    .v6
                    .as_ref()
                    .ok_or_else(|| io::Error::other("IPv6 sockets not open"))?;
                let sock = match probe.protocol {
                    Protocol::Icmp => icmp.get_ref(),
                    Protocol::Udp => udp,
                    Protocol::Tcp => tcp.get_ref(),
                };
                sys::send_v6(sock, packet, d, probe.ttl)
            }
        }
    }

    async fn recv(&mut self) -> io::Result<Vec<Result<Incoming, PacketError>>> {
        loop {
            let kind = {
                let v4i = self.v4.as_ref().map(|v| &v.1);
                let v4t = self.v4.as_ref().map(|v| &v.2);
                let v6i = self.v6.as_ref().map(|v| &v.0);
                let v6t = self.v6.as_ref().map(|v| &v.2);
                tokio::select! {
                    g = readable(v4i) => { g?.clear_ready(); Kind::Icmp4 }
                    g = readable(v4t) => { g?.clear_ready(); Kind::Tcp4 }
                    g = readable(v6i) => { g?.clear_ready(); Kind::Icmp6 }
                    g = readable(v6t) => { g?.clear_ready(); Kind::Tcp6 }
                }
            };
            let mut out = Vec::new();
            self.drain(kind, &mut out)?;
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}
