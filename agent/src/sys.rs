//! The one module that touches raw sockets and capabilities through libc.
//!
//! `unsafe` is denied in the rest of the workspace; here it is allowed for
//! exactly three kinds of call, each commented where it happens:
//! `setsockopt` with options socket2 does not wrap (ICMPv6 type filter,
//! hop-limit and timestamp ancillary data), `recvmsg` to read a datagram
//! together with its sender, hop limit and kernel receive timestamp, and
//! `prctl(PR_SET_NO_NEW_PRIVS)`. Everything returned to the rest of the
//! agent is safe, owned data.
//!
//! One set of sockets serves the whole agent (not one per target):
//! IPv4 probes of every protocol leave through one `IPPROTO_RAW` socket as
//! whole packets (we write the IP header: the probe number rides in the IP
//! ID); ICMPv4 errors and echo replies come back on one raw ICMP socket and
//! TCP answers on one raw TCP socket. IPv6 has no header-included mode, so
//! each protocol has its own raw socket and the hop limit is set per send.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol as SockProto, SockAddr, Socket, Type};

/// What to tell an operator whose agent may not open raw sockets.
pub const CAP_HINT: &str = "raw sockets need CAP_NET_RAW: grant it to the binary with \
     `sudo setcap cap_net_raw+ep $(command -v tumen-agent)`, or under systemd set \
     `AmbientCapabilities=CAP_NET_RAW` (see deploy/systemd); do not run the agent as root";

/// Opening the sockets failed.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot open a raw {what} socket: permission denied; {CAP_HINT}")]
    Permission { what: &'static str },
    #[error("cannot open a raw {what} socket: {source}")]
    Open {
        what: &'static str,
        source: io::Error,
    },
}

fn open(domain: Domain, proto: i32, what: &'static str) -> Result<Socket, SocketError> {
    match Socket::new_raw(domain, Type::RAW, Some(SockProto::from(proto))) {
        Ok(s) => {
            s.set_nonblocking(true)
                .map_err(|source| SocketError::Open { what, source })?;
            Ok(s)
        }
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            Err(SocketError::Permission { what })
        }
        Err(source) => Err(SocketError::Open { what, source }),
    }
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` lives for the call and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel for a receive timestamp (`SO_TIMESTAMPNS`) on every
/// datagram; RTTs then exclude our own scheduling delay.
fn enable_timestamps(s: &Socket) -> io::Result<()> {
    setsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// The IPv4 sockets.
#[derive(Debug)]
pub struct V4Sockets {
    /// `IPPROTO_RAW`: sends whole IPv4 packets of any protocol.
    pub send: Socket,
    /// Receives every ICMPv4 message addressed to this host.
    pub icmp: Socket,
    /// Receives every TCP segment addressed to this host (RST, SYN-ACK).
    pub tcp: Socket,
}

/// The IPv6 sockets.
#[derive(Debug)]
pub struct V6Sockets {
    /// Sends echo requests; receives ICMPv6 errors and echo replies.
    pub icmp: Socket,
    /// Sends UDP probes (we compute the checksum; the kernel leaves it).
    pub udp: Socket,
    /// Sends SYNs and receives TCP answers.
    pub tcp: Socket,
}

impl V4Sockets {
    pub fn open() -> Result<Self, SocketError> {
        let send = open(Domain::IPV4, libc::IPPROTO_RAW, "IPv4 (send)")?;
        let icmp = open(Domain::IPV4, libc::IPPROTO_ICMP, "ICMPv4")?;
        let tcp = open(Domain::IPV4, libc::IPPROTO_TCP, "IPv4 TCP")?;
        for s in [&icmp, &tcp] {
            enable_timestamps(s).map_err(|source| SocketError::Open {
                what: "ICMPv4 (timestamps)",
                source,
            })?;
            let _ = s.set_recv_buffer_size(4 << 20);
        }
        let _ = send.set_send_buffer_size(4 << 20);
        Ok(Self { send, icmp, tcp })
    }
}

impl V6Sockets {
    pub fn open() -> Result<Self, SocketError> {
        let icmp = open(Domain::IPV6, libc::IPPROTO_ICMPV6, "ICMPv6")?;
        let udp = open(Domain::IPV6, libc::IPPROTO_UDP, "IPv6 UDP")?;
        let tcp = open(Domain::IPV6, libc::IPPROTO_TCP, "IPv6 TCP")?;
        let what = "ICMPv6 (options)";
        let err = |source| SocketError::Open { what, source };
        // Only the ICMPv6 types a tracer reads: unreachable, too big, time
        // exceeded, parameter problem, echo reply. Neighbour discovery and
        // router advertisements never reach our buffer.
        set_icmp6_filter(icmp.as_raw_fd(), &[1, 2, 3, 4, 129]).map_err(err)?;
        setsockopt_int(
            icmp.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVHOPLIMIT,
            1,
        )
        .map_err(err)?;
        for s in [&icmp, &tcp] {
            enable_timestamps(s).map_err(err)?;
            let _ = s.set_recv_buffer_size(4 << 20);
        }
        setsockopt_int(
            tcp.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVHOPLIMIT,
            1,
        )
        .map_err(err)?;
        // The UDP send socket would otherwise queue a copy of every UDP
        // datagram the host receives; keep its receive buffer minimal.
        let _ = udp.set_recv_buffer_size(0);
        Ok(Self { icmp, udp, tcp })
    }
}

/// Installs an `ICMP6_FILTER` passing only `types`.
fn set_icmp6_filter(fd: RawFd, types: &[u8]) -> io::Result<()> {
    // struct icmp6_filter { uint32_t icmp6_filt[8]; }: a bit set means
    // "block" (Linux semantics of ICMP6_FILTER_SETPASS clear the bit).
    let mut filt = [u32::MAX; 8];
    for &t in types {
        filt[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    const ICMP6_FILTER: i32 = 1;
    // SAFETY: `filt` is a live 32-byte array, its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filt.as_ptr().cast(),
            size_of::<[u32; 8]>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends one IPv4 packet (header included) to `dst`.
pub fn send_v4(s: &Socket, packet: &[u8], dst: IpAddr) -> io::Result<()> {
    s.send_to(packet, &SockAddr::from(SocketAddr::new(dst, 0)))
        .map(|_| ())
}

/// Sends one IPv6 transport message to `dst` with hop limit `ttl`.
pub fn send_v6(s: &Socket, msg: &[u8], dst: Ipv6Addr, ttl: u8) -> io::Result<()> {
    s.set_unicast_hops_v6(u32::from(ttl))?;
    s.send_to(msg, &SockAddr::from(SocketAddrV6::new(dst, 0, 0, 0)))
        .map(|_| ())
}

/// One datagram read from a raw socket.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub len: usize,
    /// Sender (for IPv4 raw sockets it is also in the IP header).
    pub from: Option<IpAddr>,
    /// IPv6 hop limit from ancillary data.
    pub hop_limit: Option<u8>,
    /// Kernel receive time.
    pub kernel_ts: Option<SystemTime>,
}

/// Reads one datagram without blocking; `Ok(None)` when none is queued.
pub fn recv(s: &Socket, buf: &mut [u8]) -> io::Result<Option<Datagram>> {
    let mut addr: MaybeUninit<libc::sockaddr_storage> = MaybeUninit::zeroed();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // 8-byte aligned room for a timestamp and a hop limit.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>();
    // SAFETY: every pointer in `msg` points at a live local buffer of the
    // length given; the kernel writes at most those lengths.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    let mut d = Datagram {
        len: usize::try_from(n).unwrap_or(0).min(buf.len()),
        from: None,
        hop_limit: None,
        kernel_ts: None,
    };
    // SAFETY: the kernel filled `msg_namelen` bytes of the storage; we read
    // the family first and then only the struct that family denotes, and
    // only when the written length covers it.
    unsafe {
        let st = addr.assume_init_ref();
        let len = msg.msg_namelen as usize;
        if i32::from(st.ss_family) == libc::AF_INET && len >= size_of::<libc::sockaddr_in>() {
            let sin = &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
            d.from = Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ));
        } else if i32::from(st.ss_family) == libc::AF_INET6
            && len >= size_of::<libc::sockaddr_in6>()
        {
            let sin6 = &*(st as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
            d.from = Some(IpAddr::from(sin6.sin6_addr.s6_addr));
        }
    }
    // SAFETY: CMSG_* walk the control buffer the kernel filled, bounded by
    // `msg_controllen`; each payload is read unaligned with its size checked
    // against `cmsg_len`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            let data = libc::CMSG_DATA(c);
            let payload = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            if h.cmsg_level == libc::SOL_SOCKET
                && h.cmsg_type == libc::SCM_TIMESTAMPNS
                && payload >= size_of::<libc::timespec>()
            {
                let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                if ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec) {
                    d.kernel_ts = Some(
                        SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                    );
                }
            } else if h.cmsg_level == libc::IPPROTO_IPV6
                && h.cmsg_type == libc::IPV6_HOPLIMIT
                && payload >= size_of::<i32>()
            {
                let hl: i32 = std::ptr::read_unaligned(data.cast());
                d.hop_limit = u8::try_from(hl).ok();
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Some(d))
}

/// The source address the kernel would use toward `dst`: a UDP socket is
/// connected (which sends nothing) and asked for its local address.
pub fn source_for(dst: IpAddr) -> io::Result<IpAddr> {
    let bind: SocketAddr = match dst {
        IpAddr::V4(_) => "0.0.0.0:0".parse().map_err(io::Error::other)?,
        IpAddr::V6(_) => "[::]:0".parse().map_err(io::Error::other)?,
    };
    let s = UdpSocket::bind(bind)?;
    s.connect(SocketAddr::new(dst, 33434))?;
    Ok(s.local_addr()?.ip())
}

/// Drops every capability (bounding, ambient, inheritable, permitted,
/// effective) and sets `no_new_privs`, once the sockets are open: from here
/// on a compromised agent cannot open new raw sockets, bind low ports,
/// read others' files or regain privileges through a setuid binary.
/// Returns what could not be dropped (the bounding set needs CAP_SETPCAP,
/// which an agent given only CAP_NET_RAW does not have; that is harmless
/// once permitted and no_new_privs are empty and set).
pub fn drop_privileges() -> Vec<String> {
    use caps::CapSet;
    let mut notes = Vec::new();
    if let Err(e) = caps::clear(None, CapSet::Bounding) {
        notes.push(format!("bounding set kept ({e})"));
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        if let Err(e) = caps::clear(None, set) {
            notes.push(format!("{set:?} set not cleared ({e})"));
        }
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        notes.push(format!(
            "no_new_privs not set ({})",
            io::Error::last_os_error()
        ));
    }
    notes
}

/// The capabilities this process still has in its effective set.
pub fn effective_caps() -> Vec<String> {
    caps::read(None, caps::CapSet::Effective)
        .map(|s| s.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// Registers an owned socket with the tokio reactor (inside a runtime).
pub fn async_fd(s: Socket) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    // SAFETY: `Socket` owns its descriptor, keeps it open until dropped and
    // always returns the same one from `as_raw_fd`, which is what
    // `register` requires for the life of the `AsyncFd`.
    unsafe { tokio::io::unix::AsyncFd::register(s) }.map_err(|e| e.into_parts().1)
}
