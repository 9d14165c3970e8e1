//! A DNS server on 127.0.0.1 (UDP and TCP, one port) that answers
//! Team Cymru TXT and PTR queries from a zone the test fills: the only
//! server collector tests ever ask. Shared by `tests/dns.rs` and
//! `tests/serve.rs`; each uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tumen_collector::dns::{cymru_query_name, ptr_query_name, DnsConfig, Enricher};

/// What the test server knows: names (lower case, final dot) to
/// (text or target, TTL).
#[derive(Default)]
struct Zone {
    txt: HashMap<String, Vec<(String, u32)>>,
    ptr: HashMap<String, (String, u32)>,
}

struct Shared {
    zone: Mutex<Zone>,
    silent: AtomicBool,
    truncate_udp: AtomicBool,
    udp_queries: AtomicUsize,
    tcp_queries: AtomicUsize,
}

pub struct TestServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            zone: Mutex::new(Zone::default()),
            silent: AtomicBool::new(false),
            truncate_udp: AtomicBool::new(false),
            udp_queries: AtomicUsize::new(0),
            tcp_queries: AtomicUsize::new(0),
        });
        // UDP and TCP on the same loopback port; retry if the TCP port is
        // taken by something else.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = TcpListener::bind(addr).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let tasks = vec![
            tokio::spawn(serve_udp(udp, shared.clone())),
            tokio::spawn(serve_tcp(tcp, shared.clone())),
        ];
        Self {
            addr,
            shared,
            tasks,
        }
    }

    pub fn txt(&self, addr: &str, text: &str, ttl: u32) -> &Self {
        let name = cymru_query_name(addr.parse().unwrap());
        self.txt_at(&name, text, ttl)
    }

    pub fn txt_at(&self, name: &str, text: &str, ttl: u32) -> &Self {
        let mut zone = self.shared.zone.lock().unwrap();
        zone.txt
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push((text.to_string(), ttl));
        self
    }

    pub fn ptr(&self, addr: &str, target: &str, ttl: u32) -> &Self {
        let name = ptr_query_name(addr.parse().unwrap());
        let mut zone = self.shared.zone.lock().unwrap();
        zone.ptr.insert(name, (target.to_string(), ttl));
        self
    }

    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    pub fn set_truncate_udp(&self, on: bool) {
        self.shared.truncate_udp.store(on, Ordering::SeqCst);
    }

    /// Queries received over UDP and TCP.
    pub fn queries(&self) -> usize {
        self.shared.udp_queries.load(Ordering::SeqCst) + self.tcp_queries()
    }

    pub fn tcp_queries(&self) -> usize {
        self.shared.tcp_queries.load(Ordering::SeqCst)
    }

    /// A config that asks this server only.
    pub fn config(&self) -> DnsConfig {
        DnsConfig {
            server: self.addr,
            timeout: Duration::from_millis(500),
            rate_per_sec: 1000,
            ..DnsConfig::default()
        }
    }

    pub fn enricher(&self) -> Enricher {
        Enricher::new(self.config()).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The answer to one query, or `None` to drop it.
fn answer(shared: &Shared, packet: &[u8], over_udp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries.clone());
    if over_udp && shared.truncate_udp.load(Ordering::SeqCst) {
        response.metadata.truncation = true;
        return response.to_vec().ok();
    }
    let query = request.queries.first()?;
    let name = query.name().to_ascii().to_ascii_lowercase();
    let zone = shared.zone.lock().unwrap();
    match query.query_type() {
        RecordType::TXT if zone.txt.contains_key(&name) => {
            for (text, ttl) in &zone.txt[&name] {
                response.add_answer(Record::from_rdata(
                    query.name().clone(),
                    *ttl,
                    RData::TXT(TXT::new(vec![text.clone()])),
                ));
            }
        }
        RecordType::PTR if zone.ptr.contains_key(&name) => {
            let (target, ttl) = &zone.ptr[&name];
            response.add_answer(Record::from_rdata(
                query.name().clone(),
                *ttl,
                // Any bytes in a label (a hostile name, for the web view's
                // escaping tests), not only what a zone file may spell.
                RData::PTR(PTR(Name::from_ascii(target).unwrap_or_else(|_| {
                    Name::from_labels(target.trim_end_matches('.').split('.').map(str::as_bytes))
                        .expect("labels")
                }))),
            ));
        }
        _ => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response.to_vec().ok()
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        shared.udp_queries.fetch_add(1, Ordering::SeqCst);
        if shared.silent.load(Ordering::SeqCst) {
            continue;
        }
        if let Some(reply) = answer(&shared, &buf[..len], true) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut packet).await.is_err() {
                    return;
                }
                shared.tcp_queries.fetch_add(1, Ordering::SeqCst);
                if shared.silent.load(Ordering::SeqCst) {
                    continue;
                }
                let Some(reply) = answer(&shared, &packet, false) else {
                    continue;
                };
                let Ok(reply_len) = u16::try_from(reply.len()) else {
                    return;
                };
                if stream.write_all(&reply_len.to_be_bytes()).await.is_err()
                    || stream.write_all(&reply).await.is_err()
                {
                    return;
                }
            }
        });
    }
}
