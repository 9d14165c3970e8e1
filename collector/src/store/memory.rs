//! A store in memory, for unit tests of what sits above the seam (the
//! writer, the state, handlers) without a file: same answers as the SQLite
//! backend (the conformance suite holds both to them), nothing durable.
//! Path states are kept as the JSON the SQLite backend writes, so that a
//! state that does not survive serialisation fails here too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    BgpEventFilter, BgpEventRow, EventFilter, EventRow, PingRow, Pruned, Store, StoreError,
    StoreReader, StoredTrace, Table, TraceFilter, TraceRow, Transaction, UnpackError,
};
use crate::bgp::model::BgpEvent;
use crate::paths::{Change, PathKey, PathState};
use crate::pipeline::PackLine;
use crate::state::{AgentInfo, Live};

/// The dedup key of a raw record: (agent, start_ms, id).
type Key = (String, u64, String);

#[derive(Debug, Clone)]
struct Raw {
    received_ms: u64,
    line: Vec<u8>,
    /// A trace's columns (`line` left empty; filled in when read).
    trace: Option<StoredTrace>,
}

#[derive(Debug, Clone)]
struct Event {
    row: EventRow,
    received_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct Data {
    traces: BTreeMap<Key, Raw>,
    pings: BTreeMap<Key, Raw>,
    /// (agent, prefix) → the state's JSON.
    paths: BTreeMap<PathKey, String>,
    events: Vec<Event>,
    agents: BTreeMap<String, AgentInfo>,
    next_event: i64,
    /// (row, received_ms).
    bgp_events: Vec<(BgpEventRow, u64)>,
    probe_ms: Option<u64>,
}

/// The in-memory store; [`MemoryStore::reader`] handles share its data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }
}

fn lock(data: &Mutex<Data>) -> MutexGuard<'_, Data> {
    data.lock().unwrap_or_else(|p| p.into_inner())
}

/// Mirrors the SQLite backend's integer columns (i64).
fn clamp(v: u64) -> u64 {
    v.min(i64::MAX as u64)
}

fn key(agent: &str, start_ms: u64, id: &str) -> Key {
    (agent.to_string(), clamp(start_ms), id.to_string())
}

/// Writes go to a copy of the data, swapped in whole at commit.
struct MemoryTx<'a> {
    store: &'a MemoryStore,
    data: Data,
}

impl Transaction for MemoryTx<'_> {
    fn insert_trace(&mut self, row: &TraceRow<'_>, received_ms: u64) -> Result<bool, StoreError> {
        let new = insert(
            &mut self.data.traces,
            row.agent,
            row.start_ms,
            row.id,
            row.record,
            received_ms,
        )?;
        if new {
            if let Some(raw) = self
                .data
                .traces
                .get_mut(&key(row.agent, row.start_ms, row.id))
            {
                raw.trace = Some(StoredTrace {
                    agent: row.agent.to_string(),
                    id: row.id.to_string(),
                    prefix: row.prefix.to_string(),
                    dst: row.dst.to_string(),
                    start_ms: clamp(row.start_ms),
                    upstream: row.upstream.to_string(),
                    upstream_asn: row.upstream_asn,
                    entered: row.entered,
                    confidence: row.confidence,
                    line: String::new(),
                });
            }
        }
        Ok(new)
    }

    fn insert_ping(&mut self, row: &PingRow<'_>, received_ms: u64) -> Result<bool, StoreError> {
        insert(
            &mut self.data.pings,
            row.agent,
            row.start_ms,
            row.id,
            row.record,
            received_ms,
        )
    }

    fn put_path(
        &mut self,
        key: &PathKey,
        state: &PathState,
        _now_ms: u64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(|e| StoreError::Write(Box::new(e)))?;
        self.data.paths.insert(key.clone(), json);
        Ok(())
    }

    fn put_event(&mut self, key: &PathKey, change: &Change, now_ms: u64) -> Result<(), StoreError> {
        let evidence =
            serde_json::to_value(&change.evidence).map_err(|e| StoreError::Write(Box::new(e)))?;
        self.data.next_event += 1;
        let row = EventRow {
            id: self.data.next_event,
            agent: key.0.clone(),
            prefix: key.1.to_string(),
            at_ms: clamp(change.at_ms),
            from_upstream: change.from.as_ref().map(|u| u.name.clone()),
            from_asn: change.from.as_ref().and_then(|u| u.asn),
            to_upstream: change.to.name.clone(),
            to_asn: change.to.asn,
            trace_id: change.trace_id.clone(),
            evidence,
        };
        self.data.events.push(Event {
            row,
            received_ms: clamp(now_ms),
        });
        Ok(())
    }

    fn put_bgp_event(&mut self, e: &BgpEvent, now_ms: u64) -> Result<(), StoreError> {
        self.data.next_event += 1;
        let mut event = e.clone();
        event.at_ms = clamp(event.at_ms);
        self.data.bgp_events.push((
            BgpEventRow {
                id: self.data.next_event,
                event,
            },
            clamp(now_ms),
        ));
        Ok(())
    }

    fn put_agent(&mut self, a: &AgentInfo) -> Result<(), StoreError> {
        let stored = self
            .data
            .agents
            .entry(a.name.clone())
            .or_insert_with(|| AgentInfo {
                first_seen_ms: clamp(a.first_seen_ms),
                ..a.clone()
            });
        stored.last_seen_ms = clamp(a.last_seen_ms);
        stored.traces = clamp(a.traces);
        stored.pings = clamp(a.pings);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        *self.store.data() = self.data;
        Ok(())
    }
}

fn insert(
    table: &mut BTreeMap<Key, Raw>,
    agent: &str,
    start_ms: u64,
    id: &str,
    line: &[u8],
    received_ms: u64,
) -> Result<bool, StoreError> {
    let k = key(agent, start_ms, id);
    if table.contains_key(&k) {
        return Ok(false);
    }
    table.insert(
        k,
        Raw {
            received_ms: clamp(received_ms),
            line: line.to_vec(),
            trace: None,
        },
    );
    Ok(true)
}

fn unpack(line: &[u8]) -> Result<String, UnpackError> {
    Ok(String::from_utf8(line.to_vec())?)
}

fn pack(line: &str) -> Vec<u8> {
    line.as_bytes().to_vec()
}

impl Store for MemoryStore {
    fn transaction(&mut self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let data = self.data().clone();
        Ok(Box::new(MemoryTx { store: self, data }))
    }

    fn load_state(&mut self) -> Result<Live, StoreError> {
        let d = self.data();
        let mut live = Live::default();
        for ((agent, prefix), json) in &d.paths {
            let s: PathState = serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                agent: agent.clone(),
                prefix: prefix.to_string(),
                what: e.to_string(),
            })?;
            live.paths.insert((agent.clone(), *prefix), s);
        }
        live.agents = d.agents.clone();
        Ok(live)
    }

    fn prune(&mut self, cutoff_ms: u64) -> Result<Pruned, StoreError> {
        let mut d = self.data();
        let cutoff = clamp(cutoff_ms);
        let before = (d.traces.len(), d.pings.len(), d.events.len());
        d.traces.retain(|_, r| r.received_ms >= cutoff);
        d.pings.retain(|_, r| r.received_ms >= cutoff);
        d.events.retain(|e| e.received_ms >= cutoff);
        let bgp = d.bgp_events.len();
        d.bgp_events.retain(|(_, received)| *received >= cutoff);
        Ok(Pruned {
            traces: before.0 - d.traces.len(),
            pings: before.1 - d.pings.len(),
            events: before.2 - d.events.len(),
            bgp_events: bgp - d.bgp_events.len(),
        })
    }

    fn probe(&mut self, now_ms: u64) -> Result<(), StoreError> {
        self.data().probe_ms = Some(now_ms);
        Ok(())
    }

    fn maintain(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn StoreReader>, StoreError> {
        Ok(Box::new(self.clone()))
    }

    fn pack(&self) -> PackLine {
        pack
    }

    fn schema_version(&self) -> u32 {
        super::sqlite::SCHEMA_VERSION
    }
}

impl StoreReader for MemoryStore {
    fn events(&self, f: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        let d = self.data();
        let prefix = f.prefix.map(|p| p.to_string());
        let since = clamp(f.since_ms.unwrap_or(0));
        let until = clamp(f.until_ms.unwrap_or(u64::MAX));
        let mut rows: Vec<&EventRow> = d
            .events
            .iter()
            .map(|e| &e.row)
            .filter(|e| prefix.as_ref().is_none_or(|p| *p == e.prefix))
            .filter(|e| f.agent.as_ref().is_none_or(|a| *a == e.agent))
            .filter(|e| f.id.is_none_or(|id| id == e.id))
            .filter(|e| (since..=until).contains(&e.at_ms))
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse((e.at_ms, e.id)));
        Ok(rows
            .into_iter()
            .take(f.limit)
            .map(|e| EventRow {
                evidence: if f.skip_evidence {
                    serde_json::Value::Null
                } else {
                    e.evidence.clone()
                },
                ..e.clone()
            })
            .collect())
    }

    fn bgp_events(&self, f: &BgpEventFilter) -> Result<Vec<BgpEventRow>, StoreError> {
        let d = self.data();
        let mut rows: Vec<&BgpEventRow> = d
            .bgp_events
            .iter()
            .map(|(r, _)| r)
            .filter(|r| f.accepts(&r.event))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.event.at_ms, r.id)));
        Ok(rows.into_iter().take(f.limit).cloned().collect())
    }

    fn traces(&self, f: &TraceFilter) -> Result<Vec<StoredTrace>, StoreError> {
        let d = self.data();
        let prefix = f.prefix.to_string();
        let (since, until) = (clamp(f.since_ms), clamp(f.until_ms));
        let mut rows: Vec<(&StoredTrace, &Raw)> = d
            .traces
            .values()
            .filter_map(|r| r.trace.as_ref().map(|t| (t, r)))
            .filter(|(t, _)| t.prefix == prefix && (since..=until).contains(&t.start_ms))
            .collect();
        rows.sort_by(|a, b| {
            (a.0.start_ms, &a.0.agent, &a.0.id).cmp(&(b.0.start_ms, &b.0.agent, &b.0.id))
        });
        rows.into_iter()
            .take(f.limit)
            .map(|(t, r)| {
                let line = unpack(&r.line).map_err(|what| StoreError::CorruptRecord {
                    agent: t.agent.clone(),
                    id: t.id.clone(),
                    what,
                })?;
                Ok(StoredTrace { line, ..t.clone() })
            })
            .collect()
    }

    fn raw_trace(&self, agent: &str, id: &str) -> Result<Option<String>, StoreError> {
        let d = self.data();
        d.traces
            .iter()
            .find(|((a, _, i), _)| a == agent && i == id)
            .map(|(_, r)| {
                unpack(&r.line).map_err(|what| StoreError::CorruptRecord {
                    agent: agent.to_string(),
                    id: id.to_string(),
                    what,
                })
            })
            .transpose()
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        let d = self.data();
        let n = match table {
            Table::Traces => d.traces.len(),
            Table::Pings => d.pings.len(),
            Table::Events => d.events.len(),
            Table::Paths => d.paths.len(),
            Table::Agents => d.agents.len(),
            Table::BgpEvents => d.bgp_events.len(),
        };
        Ok(n as u64)
    }

    fn disk_space(&self) -> Option<std::io::Result<(u64, u64)>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    store_conformance!(((), MemoryStore::new()));

    #[test]
    fn a_reader_shares_the_data_and_sees_commits_only() {
        let mut store = MemoryStore::new();
        let reader = store.reader().expect("reader");
        let mut tx = store.transaction().expect("tx");
        tx.put_agent(&AgentInfo {
            name: "vp".into(),
            first_seen_ms: 1,
            last_seen_ms: 1,
            traces: 0,
            pings: 0,
        })
        .expect("agent");
        assert_eq!(reader.count(Table::Agents).expect("n"), 0);
        tx.commit().expect("commit");
        assert_eq!(reader.count(Table::Agents).expect("n"), 1);
        assert!(reader.disk_space().is_none());
    }
}
