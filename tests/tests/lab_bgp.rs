//! The 2017-10-01 timeline (`dyn-2017-10-01`) replayed on real BGP: at
//! every step BIRD's view at the transits (which /24 TransTeleCom carries)
//! and Linux traceroute and scamper from the vantage points (the hops the
//! scenario implies) agree with the timeline.

mod common;

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{assert_clean, host_addrs, sweep};
use tumen_lab::oracle::Method;
use tumen_lab::{Lab, Routing, Scenario};

/// The AS path of `node`'s best route to `addr`, or None without a route.
fn as_path(lab: &Lab, node: &str, addr: &str) -> Option<String> {
    let out = match tumen_lab::bird::birdc(lab.id(), node, &["show", "route", "for", addr, "all"]) {
        Ok(out) => out,
        Err(e) if e.to_string().contains("Network not found") => return None,
        Err(e) => panic!("{e}"),
    };
    out.lines()
        .find_map(|l| l.trim().strip_prefix("BGP.as_path:"))
        .map(|p| p.trim().to_string())
}

/// A BMP station inside the collector's namespace: python3 (stdlib only)
/// appends whatever arrives on 127.0.0.1:11019 to `out`. Stopped by pid.
struct BmpCapture(Child);

impl BmpCapture {
    fn start(ns: &str, out: &std::path::Path) -> Self {
        let script = format!(
            "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 11019)); s.listen(1)\nprint('ready', flush=True)\nc, _ = s.accept()\nwith open({:?}, 'ab') as f:\n    while True:\n        d = c.recv(65536)\n        if not d: break\n        f.write(d); f.flush()\n",
            out.display().to_string()
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("BMP station");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("ready");
        assert_eq!(line.trim(), "ready");
        BmpCapture(child)
    }
}

impl Drop for BmpCapture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tr-fra's (AS3356) route to 198.18.177.0/24 as the collector saw it
/// change, in order, with consecutive repeats folded: `3356 4837 131279`,
/// `3356 20485 131279`, or `W` (withdrawn). From a BMP capture decoded
/// with bgpkit-parser (route monitoring of the global peer, pre- and
/// post-policy alike), and the BMP message types seen.
fn bmp_states(capture: &[u8]) -> (Vec<String>, std::collections::BTreeMap<String, usize>) {
    use bgpkit_parser::models::{BgpMessage, NetworkPrefix};
    use bgpkit_parser::parser::bmp::messages::BmpMessageBody;
    let want: NetworkPrefix = "198.18.177.0/24".parse().expect("prefix");
    let mut data = bytes::Bytes::copy_from_slice(capture);
    let mut states: Vec<String> = Vec::new();
    let mut kinds = std::collections::BTreeMap::new();
    while !data.is_empty() {
        let msg = bgpkit_parser::parser::bmp::parse_bmp_msg(&mut data).expect("a BMP message");
        let kind = match &msg.message_body {
            BmpMessageBody::RouteMonitoring(_) => "route-monitoring",
            BmpMessageBody::PeerUpNotification(_) => "peer-up",
            BmpMessageBody::PeerDownNotification(_) => "peer-down",
            BmpMessageBody::InitiationMessage(_) => "initiation",
            BmpMessageBody::TerminationMessage(_) => "termination",
            BmpMessageBody::StatsReport(_) => "statistics",
            BmpMessageBody::RouteMirroring(_) => "route-mirroring",
        };
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
        let (Some(peer), BmpMessageBody::RouteMonitoring(rm)) =
            (&msg.per_peer_header, &msg.message_body)
        else {
            continue;
        };
        if peer.peer_asn.to_u32() != 3356 {
            continue;
        }
        let BgpMessage::Update(u) = &rm.bgp_message else {
            continue;
        };
        let state = if u.announced_prefixes.contains(&want)
            || u.attributes
                .get_reachable_nlri()
                .is_some_and(|n| n.prefixes.contains(&want))
        {
            u.attributes
                .as_path()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        } else if u.withdrawn_prefixes.contains(&want) {
            "W".to_string()
        } else {
            continue;
        };
        if states.last() != Some(&state) {
            states.push(state);
        }
    }
    (states, kinds)
}

/// `python3 -m http.server` on loopback serving a directory (Apache-like
/// index pages), stopped on drop.
struct HttpDir {
    child: Child,
    port: u16,
}

impl HttpDir {
    fn start(dir: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed().as_secs() < 10, "http.server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for HttpDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bgpdump -m` of every MRT updates file of the collector: `(unix time,
/// A|W, peer AS, prefix, AS path)` for 198.18.177.0/24.
fn mrt_changes(lab: &Lab) -> Vec<(i64, String, String, String)> {
    let c = lab
        .scenario()
        .bgp
        .as_ref()
        .and_then(|b| b.collector.as_ref())
        .expect("collector");
    let root = tumen_lab::bird::collector_dir(lab.id(), &c.node);
    let mut out = Vec::new();
    // gobgpd's files and their RouteViews copies (not the RIS copies of
    // the same records).
    for f in tumen_lab::bird::mrt_files(lab.id(), lab.scenario())
        .into_iter()
        .filter(|f| f.starts_with("bgpdata"))
    {
        let o = Command::new("bgpdump")
            .arg("-m")
            .arg(root.join(&f))
            .output()
            .expect("bgpdump");
        assert!(o.status.success(), "bgpdump -m {}: {o:?}", f.display());
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let p: Vec<&str> = line.split('|').collect();
            if p.len() >= 6 && p[0] == "BGP4MP" && p[5] == "198.18.177.0/24" {
                let path = p.get(6).copied().unwrap_or("").to_string();
                out.push((
                    p[1].parse().unwrap_or(0),
                    p[2].to_string(),
                    p[4].to_string(),
                    path,
                ));
            }
        }
    }
    out
}

#[test]
fn dyn_2017_10_01_replay_matches_the_timeline_at_every_step() {
    let s = Scenario::load("dyn-2017-10-01").expect("shipped");
    let replay = s.replay.clone().expect("[replay]");
    assert_eq!(replay.steps.len(), 14);
    let mut lab = Lab::up_with(s, Routing::Bgp).expect("up --bgp");
    // Outside the lab's directory, which goes with the lab.
    let capture = std::env::temp_dir().join(format!("tumen-bmp-{}.capture", lab.id()));
    let station = BmpCapture::start(&tumen_lab::plan::ns_name(lab.id(), "rrc00"), &capture);
    tumen_lab::bird::bmp_add(lab.id(), lab.scenario(), "127.0.0.1:11019").expect("bmp add");
    // Wall-clock time each step's event was applied, in step order.
    let mut applied_unix: Vec<f64> = Vec::new();
    // (due, applied) in lab seconds, in step order.
    let mut lab_times: Vec<(f64, f64)> = Vec::new();
    let dsts: Vec<IpAddr> = host_addrs(lab.scenario(), false);
    assert_eq!(dsts.len(), 4, "Star JV's four /24s");
    let stop = AtomicBool::new(false);
    let mut problems = Vec::new();
    let mut steps = 0;
    tumen_lab::replay::play(&mut lab, &replay, &stop, |lab, step, played| {
        steps += 1;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        applied_unix.push((now - played.converged_in).as_secs_f64());
        lab_times.push((played.due, played.applied));
        // Which of .176-.179 TransTeleCom carries for tr-fra and tr-sgp
        // after this step; None: all four withdrawn.
        let ttk: Option<&[u8]> = match step.event.as_str() {
            "ttk-transit" | "ttk-back" => Some(&[177, 178, 179]),
            "ttk-gone" | "all-up" | "cu-flap" => Some(&[]),
            "all-down" => None,
            "ttk-loss-177" => Some(&[178, 179]),
            "ttk-loss-178" => Some(&[179]),
            other => panic!("unexpected step {other}"),
        };
        for third in 176..=179u8 {
            let addr = format!("198.18.{third}.15");
            for tr in ["tr-fra", "tr-sgp", "tr-nyc"] {
                let got = as_path(lab, tr, &addr);
                let want = ttk.map(|moved| {
                    if tr != "tr-nyc" && moved.contains(&third) {
                        "20485 131279"
                    } else {
                        "4837 131279"
                    }
                });
                if got.as_deref() != want {
                    problems.push(format!(
                        "{} ({}): {tr} -> {addr}: AS path {got:?}, want {want:?}",
                        step.event,
                        tumen_lab::replay::format_utc(step.at)
                    ));
                }
            }
        }
        if ttk.is_some() {
            // The data plane follows: traceroute and scamper from every
            // vantage point show exactly the hops of the scenario's table.
            let (_, bad) = sweep(lab, &dsts, Method::Icmp, true);
            problems.extend(bad.into_iter().map(|b| format!("{}: {b}", step.event)));
        } else {
            let out = lab
                .output("vp-fra", &["ping", "-c", "1", "-W", "1", "198.18.177.15"])
                .expect("ping");
            if out.status.success() {
                problems.push("all-down: vp-fra still reaches 198.18.177.15".into());
            }
        }
        assert!(
            played.applied + 1e-9 >= played.due,
            "never early: {played:?}"
        );
    })
    .expect("replay");
    assert_eq!(steps, 14);
    assert_clean("dyn-2017-10-01 replay", &problems);

    // tr-fra's route to .177 through the day, as the route collector saw
    // it: China Unicom, TransTeleCom from 09:07:51, China Unicom from
    // 10:14:45, withdrawn and back twice as its session to China Unicom
    // flaps, four times withdrawn and back, TransTeleCom from 12:21:55,
    // China Unicom again once .177 loses TTK the next day.
    let (cu, ttk) = ("3356 4837 131279", "3356 20485 131279");
    let timeline = [
        cu, ttk, cu, "W", cu, "W", cu, "W", cu, "W", cu, "W", cu, "W", cu, ttk, cu,
    ];

    // MRT (bgpdump -m, an independent reader): the same sequence, each
    // change stamped within 2 s of the step that caused it.
    let changes = mrt_changes(&lab);
    let from_fra: Vec<&(i64, String, String, String)> =
        changes.iter().filter(|c| c.2 == "3356").collect();
    let mut seq: Vec<String> = Vec::new();
    let mut stamps: Vec<i64> = Vec::new();
    for (t, kind, _, path) in from_fra {
        let state = if kind == "W" {
            "W".to_string()
        } else {
            path.clone()
        };
        if seq.last() != Some(&state) {
            seq.push(state);
            stamps.push(*t);
        }
    }
    assert_eq!(seq, timeline, "MRT updates of tr-fra for 198.18.177.0/24");
    // The first state is the initial table; each later change comes from
    // one step (by index; the flap, step 2, makes four changes within its
    // two cycles).
    let from_step = [0, 1, 2, 2, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    // The replay as bgpdump saw it (`cargo test ... -- --nocapture`).
    let lab_zero = applied_unix[0] - lab_times[0].1;
    eprintln!("step           real time (UTC)      lab due  applied  MRT record (tr-fra, .177)");
    for (i, step) in from_step.iter().enumerate() {
        eprintln!(
            "{:<14} {}  {:>6.2}s  {:>6.2}s  {:>5.0}s  {}",
            replay.steps[*step].event,
            tumen_lab::replay::format_utc(replay.steps[*step].at),
            lab_times[*step].0,
            lab_times[*step].1,
            stamps[i + 1] as f64 - lab_zero,
            seq[i + 1]
        );
    }
    for (i, step) in from_step.iter().enumerate() {
        let lag = stamps[i + 1] as f64 - applied_unix[*step];
        let most = if *step == 2 { 5.0 } else { 2.0 };
        assert!(
            (-1.0..=most).contains(&lag),
            "{}: MRT record {lag:.1} s after the step",
            replay.steps[*step].event
        );
    }

    // The first RIB dump (TABLE_DUMP_V2, a minute after the collector
    // started) holds the end of the timeline: .179 is the one /24 still
    // carried by TransTeleCom, .177 and .178 are back on China Unicom.
    let root = tumen_lab::bird::collector_dir(lab.id(), "rrc00");
    let t = std::time::Instant::now();
    let rib = loop {
        let dumped = tumen_lab::bird::mrt_files(lab.id(), lab.scenario())
            .into_iter()
            .map(|f| root.join(f))
            .find(|f| {
                f.to_string_lossy().contains("/RIBS/")
                    && std::fs::metadata(f).is_ok_and(|m| m.len() > 0)
            });
        if let Some(f) = dumped {
            break f;
        }
        assert!(t.elapsed().as_secs() < 90, "no RIB dump after 90 s");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let o = Command::new("bgpdump")
        .arg("-m")
        .arg(&rib)
        .output()
        .expect("bgpdump");
    let text = String::from_utf8_lossy(&o.stdout);
    let entry = |peer: &str, prefix: &str| -> Option<String> {
        text.lines().find_map(|l| {
            let p: Vec<&str> = l.split('|').collect();
            (p.len() > 6 && p[0] == "TABLE_DUMP2" && p[4] == peer && p[5] == prefix)
                .then(|| p[6].to_string())
        })
    };
    assert_eq!(
        entry("3356", "198.18.179.0/24").as_deref(),
        Some(ttk),
        "{}",
        rib.display()
    );
    assert_eq!(entry("3356", "198.18.177.0/24").as_deref(), Some(cu));
    assert_eq!(
        entry("174", "198.18.179.0/24").as_deref(),
        Some("174 4837 131279"),
        "vp-nyc's transit"
    );
    assert_eq!(
        entry("20485", "198.18.179.0/24").as_deref(),
        Some("20485 131279"),
        "TTK's own view"
    );
    assert_eq!(
        entry("20485", "198.18.176.0/24"),
        None,
        "NO_EXPORT: TTK keeps .176 to itself"
    );

    // Archived as RouteViews and RIS publish: the RIB named by the time of
    // its dump, bzip2 and gzip; bgpdump reads both copies alike.
    let t = std::time::Instant::now();
    let archived = loop {
        let written = tumen_lab::bird::archive(lab.id(), lab.scenario(), false).expect("archive");
        if written
            .iter()
            .any(|f| f.to_string_lossy().contains("/RIBS/rib."))
        {
            break written;
        }
        assert!(
            t.elapsed().as_secs() < 30,
            "the first RIB file was not closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let rv = archived
        .iter()
        .find(|f| f.to_string_lossy().contains("/RIBS/rib."))
        .expect("RouteViews RIB");
    let ris = archived
        .iter()
        .find(|f| f.to_string_lossy().contains("/bview."))
        .expect("RIS bview");
    let dump = |f: &std::path::Path| {
        let o = Command::new("bgpdump")
            .arg("-m")
            .arg(root.join(f))
            .output()
            .expect("bgpdump");
        assert!(o.status.success(), "{}", f.display());
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let (a, b) = (dump(rv), dump(ris));
    assert_eq!(a, b, "the .bz2 and .gz copies hold the same records");
    assert_eq!(a, text, "and the records of the raw dump");
    let first_ts: i64 = a
        .lines()
        .next()
        .and_then(|l| l.split('|').nth(1))
        .and_then(|t| t.parse().ok())
        .expect("a record");
    let minute = tumen_lab::replay::format_utc(first_ts);
    let want = format!(
        "rib.{}{}{}.{}{}.bz2",
        &minute[0..4],
        &minute[5..7],
        &minute[8..10],
        &minute[11..13],
        &minute[14..16]
    );
    assert!(
        rv.ends_with(&want),
        "{} is named by its dump time ({want})",
        rv.display()
    );
    assert!(
        ris.starts_with(format!("rrc00/{}.{}", &minute[0..4], &minute[5..7])),
        "{}",
        ris.display()
    );

    // The collector's own reading of the archive (`tumen-collector bgp`,
    // offline): 198.18.177.0/24's prefix-level events follow the steps,
    // each within 2 s (5 s in the flap), from the RouteViews copies in a
    // directory, and the same over HTTP in both layouts.
    tumen_lab::bird::archive(lab.id(), lab.scenario(), true).expect("archive all");
    let offline = |args: &[&str]| -> serde_json::Value {
        let o = Command::new(common::loopback::bin("tumen-collector"))
            .args([
                "bgp",
                "--json",
                "--collector",
                "rrc00",
                "--target",
                "198.18.176.0/22",
            ])
            .args(args)
            .output()
            .expect("tumen-collector bgp");
        assert!(
            o.status.success(),
            "bgp {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("JSON")
    };
    let local = offline(&[root.join("bgpdata").to_str().expect("utf-8")]);
    let prefix_events = |json: &serde_json::Value| -> Vec<(f64, String)> {
        json["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["prefix"] == "198.18.177.0/24" && e["peer"].is_null())
            .map(|e| {
                (
                    e["at_ms"].as_u64().expect("at_ms") as f64 / 1000.0,
                    format!(
                        "{}:{}",
                        e["kind"].as_str().expect("kind"),
                        e["to"]["name"].as_str().unwrap_or("-")
                    ),
                )
            })
            .collect()
    };
    let got = prefix_events(&local);
    let (ttk_up, cu_up) = (
        "prefix_upstream:transtelecom",
        "prefix_upstream:china-unicom",
    );
    let (low, ok) = ("visibility_low:-", "visibility_ok:-");
    // (step index, event): the flap is two outages of .177 (Star JV's only
    // route then is China Unicom's), all-down/all-up four more.
    let want: Vec<(usize, &str)> = vec![
        (0, ttk_up),
        (1, cu_up),
        (2, low),
        (2, ok),
        (2, low),
        (2, ok),
        (3, low),
        (4, ok),
        (5, low),
        (6, ok),
        (7, low),
        (8, ok),
        (9, low),
        (10, ok),
        (11, ttk_up),
        (12, cu_up),
    ];
    let text: String = got
        .iter()
        .map(|(t, e)| format!("{:>7.1}s {e}\n", t - (applied_unix[0] - lab_times[0].1)))
        .collect();
    assert_eq!(
        got.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
        want.iter().map(|w| w.1).collect::<Vec<_>>(),
        "tumen-collector bgp: .177's events (lab seconds):\n{text}"
    );
    for ((t, e), (step, _)) in got.iter().zip(&want) {
        let lag = t - applied_unix[*step];
        let most = if *step == 2 { 5.0 } else { 2.0 };
        assert!(
            (-1.0..=most).contains(&lag),
            "{e} of step {}: {lag:.1} s after it\n{text}",
            replay.steps[*step].event
        );
    }
    eprintln!("tumen-collector bgp, 198.18.177.0/24 (lab seconds):\n{text}");
    let server = HttpDir::start(&root);
    let since = (applied_unix[0] as u64 - 3600).to_string();
    for layout in ["bgpdata", "rrc00"] {
        let url = format!("http://127.0.0.1:{}/{layout}", server.port);
        let remote = offline(&["--bgp-archive", &url, "--since", &since, "--all-files"]);
        assert_eq!(
            prefix_events(&remote),
            got,
            "{layout} over HTTP reads as the directory"
        );
        assert_eq!(remote["rows"], local["rows"], "{layout}: rows");
    }
    drop(server);

    // BMP (bgpkit-parser on the capture): the same sequence. The station
    // stops first: tearing the lab down withdraws everything.
    std::thread::sleep(std::time::Duration::from_secs(1));
    drop(station);
    drop(lab);
    let bytes = std::fs::read(&capture).unwrap_or_default();
    let _ = std::fs::remove_file(&capture);
    let (states, kinds) = bmp_states(&bytes);
    assert_eq!(
        states, timeline,
        "BMP route monitoring of tr-fra for 198.18.177.0/24; kinds {kinds:?}"
    );
    assert_eq!(kinds.get("initiation"), Some(&1), "{kinds:?}");
    assert_eq!(
        kinds.get("peer-up"),
        Some(&5),
        "one per collector session: {kinds:?}"
    );
}

/// How many of the collector's peers have a route to each of `prefixes`
/// (`gobgp global rib`: one line per path).
fn visibility(lab: &Lab, prefixes: &[&str]) -> Vec<usize> {
    let rib = tumen_lab::bird::gobgp(lab.id(), "rrc00", &["global", "rib", "-a", "ipv4"])
        .unwrap_or_default();
    prefixes
        .iter()
        .map(|p| {
            rib.lines()
                .filter(|l| l.split_whitespace().nth(1) == Some(*p))
                .count()
        })
        .collect()
}

fn reaches(lab: &Lab, vp: &str, dst: IpAddr) -> bool {
    lab.output(vp, &["ping", "-c", "1", "-W", "1", &dst.to_string()])
        .expect("ping")
        .status
        .success()
}

#[test]
fn dprk_outage_2025_06_07_withdraws_every_route_and_brings_them_back() {
    let s = Scenario::load("dprk-outage-2025-06-07").expect("shipped");
    let replay = s.replay.clone().expect("[replay]");
    let mut lab = Lab::up_with(s, Routing::Bgp).expect("up --bgp");
    let four = [
        "198.18.176.0/24",
        "198.18.177.0/24",
        "198.18.178.0/24",
        "198.18.179.0/24",
    ];
    let dsts: Vec<IpAddr> = host_addrs(lab.scenario(), false);
    // .176 is TransTeleCom's only (NO_EXPORT): 4 of the 5 peers; the
    // others also come over TransTeleCom as transit: all 5.
    let full = vec![4, 5, 5, 5];
    assert_eq!(visibility(&lab, &four), full, "visibility before");
    let vps = ["vp-fra", "vp-nyc", "vp-sgp"];
    for vp in vps {
        for d in &dsts {
            assert!(reaches(&lab, vp, *d), "{vp} -> {d} before the outage");
        }
    }
    let stop = AtomicBool::new(false);
    let mut problems = Vec::new();
    tumen_lab::replay::play(&mut lab, &replay, &stop, |lab, step, _| {
        let (want, reach) = match step.event.as_str() {
            "outage" => (vec![0, 0, 0, 0], false),
            "restored" => (full.clone(), true),
            other => panic!("unexpected step {other}"),
        };
        let seen = visibility(lab, &four);
        if seen != want {
            problems.push(format!(
                "{}: visibility {seen:?}, want {want:?}",
                step.event
            ));
        }
        for vp in vps {
            for d in &dsts {
                if reaches(lab, vp, *d) != reach {
                    problems.push(format!("{}: {vp} -> {d}: reachable {}", step.event, !reach));
                }
            }
        }
        if reach {
            let (_, bad) = sweep(lab, &dsts, Method::Icmp, false);
            problems.extend(bad.into_iter().map(|b| format!("{}: {b}", step.event)));
        }
    })
    .expect("replay");
    assert_clean("dprk-outage-2025-06-07", &problems);
    // The MRT record of it (bgpdump -m): every peer that had .177
    // withdrew it, then announced it again.
    let changes = mrt_changes(&lab);
    for peer in ["3356", "174", "2914", "4837", "20485"] {
        let kinds: Vec<&str> = changes
            .iter()
            .filter(|c| c.2 == peer)
            .map(|c| c.1.as_str())
            .collect();
        let folded: Vec<&str> = kinds.iter().fold(Vec::new(), |mut v, k| {
            if v.last() != Some(k) {
                v.push(k);
            }
            v
        });
        assert_eq!(
            folded,
            ["A", "W", "A"],
            "AS{peer}'s updates for 198.18.177.0/24: {kinds:?}"
        );
    }
}

/// AS-path prepending as an event: Star JV lengthens its path toward China
/// Unicom; the transits and the collector see the longer path, and with
/// no other way in, forwarding stays where it was.
#[test]
fn prepending_lengthens_the_path_everyone_sees() {
    let s = Scenario::load("dyn-2017-10-01").expect("shipped");
    let mut lab = Lab::up_with(s, Routing::Bgp).expect("up --bgp");
    assert_eq!(
        as_path(&lab, "tr-fra", "198.18.176.15").as_deref(),
        Some("4837 131279")
    );
    lab.event("prepend-to-cu").expect("event");
    assert_eq!(
        as_path(&lab, "tr-fra", "198.18.176.15").as_deref(),
        Some("4837 131279 131279 131279 131279")
    );
    assert_eq!(
        as_path(&lab, "cu-bj", "198.18.179.15").as_deref(),
        Some("131279 131279 131279 131279")
    );
    let rib = tumen_lab::bird::gobgp(
        lab.id(),
        "rrc00",
        &["global", "rib", "-a", "ipv4", "198.18.176.0/24"],
    )
    .expect("gobgp");
    assert!(rib.contains("4837 131279 131279 131279 131279"), "{rib}");
    let dsts = host_addrs(lab.scenario(), false);
    let (_, bad) = sweep(&lab, &dsts, Method::Icmp, false);
    assert_clean("after prepend-to-cu", &bad);
}
