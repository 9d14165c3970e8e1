//! The collector's command-line contract (DESIGN.md).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tumen-collector");

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn help_lists_subcommands_and_contract_flags() {
    let top = help(&["--help"]);
    assert!(top.contains("serve") && top.contains("infer"), "{top}");
    let serve = help(&["serve", "--help"]);
    for flag in [
        "--config",
        "--listen",
        "--db",
        "--asn-table",
        "--orgs",
        "--target",
        "--preset",
        "--token-file",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}:\n{serve}");
    }
    assert!(serve.contains("127.0.0.1:9640"), "{serve}");
    let infer = help(&["infer", "--help"]);
    assert!(
        infer.contains("--json") && infer.contains("--asn-table"),
        "{infer}"
    );
}

#[test]
fn serve_without_a_token_file_is_a_usage_error_that_says_how_to_make_one() {
    let out = Command::new(BIN).args(["serve"]).output().expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no token_file") && err.contains("tumen-collector token NAME"),
        "{err}"
    );
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/input/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The real-world check of the issue: public traces toward the DPRK,
/// written out by hand, give the right upstream with the embedded tables.
#[test]
fn infer_names_china_unicom_and_transtelecom_on_public_dprk_traces() {
    let out = Command::new(BIN)
        .args(["infer", &fixture("dprk-china-unicom-x.txt")])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("upstream china-unicom (AS4837), did not enter the target"),
        "{text}"
    );
    assert!(text.contains("219.158.39.54 !X"), "{text}");

    let out = Command::new(BIN)
        .args(["infer", "--json", &fixture("dprk-transtelecom.txt")])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON object");
    assert_eq!(v["upstream"], "transtelecom");
    assert_eq!(v["upstream_asn"], 20485);
    assert_eq!(v["entered"], true);
    assert_eq!(v["target"], "175.45.176.71");
    assert!(v["confidence"].as_f64().is_some_and(|c| c > 0.5), "{v}");
    assert_eq!(v["evidence"]["first_inside"]["addr"], "175.45.176.1");
}

#[test]
fn infer_reads_stdin_and_several_traces() {
    use std::io::Write;
    let text = std::fs::read_to_string(fixture("dprk-transtelecom.txt")).expect("fixture");
    let mut child = Command::new(BIN)
        .args(["infer", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{text}{text}").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn infer_refuses_bad_input_with_the_place_at_fault() {
    let out = Command::new(BIN)
        .args(["infer", &fixture("bad-atlas.json")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-atlas.json:"), "{err}");
    let out = Command::new(BIN)
        .args(["infer", "/nonexistent/trace.txt"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(66));
    let out = Command::new(BIN)
        .args(["infer", "--target", "nonsense", &fixture("excerpt.txt")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address or prefix"));
}

#[test]
fn infer_uses_extra_tables_and_organisations() {
    let dir = std::env::temp_dir().join(format!("tumen-infer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let table = dir.join("lab.dat");
    std::fs::write(&table, "; lab\n192.0.2.0/24\t64496\n").expect("write");
    let orgs = dir.join("orgs.txt");
    std::fs::write(&orgs, "64496 lab-transit\n").expect("write");
    let trace = dir.join("t.txt");
    std::fs::write(
        &trace,
        "traceroute to 198.18.176.9 (198.18.176.9), 30 hops max\n 1  192.0.2.1  0.1 ms\n 2  198.18.176.9  0.2 ms\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["infer", "--asn-table"])
        .arg(&table)
        .arg("--orgs")
        .arg(&orgs)
        .args(["--target", "198.18.176.0/22"])
        .arg(&trace)
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("upstream lab-transit (AS64496), entered the target"),
        "{text}"
    );
}

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("listen \"not-an-address\" is not an address:port"),
        "{out:?}"
    );
}

/// Serve flags come from the config struct itself (one definition): a
/// flag still reaches validation, and a boolean flag takes no value.
#[test]
fn serve_flags_reach_the_config_including_the_insecure_http_switch() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            "/nonexistent/tokens",
        ];
        args.extend_from_slice(extra);
        Command::new(BIN).args(&args).output().expect("run")
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no tls_cert/tls_key is set"),
        "{out:?}"
    );
    // With the switch, validation passes and the missing token file is
    // what stops it.
    let out = run(&["--insecure-http"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tokens"),
        "{out:?}"
    );
    let out = run(&["--insecure-http", "yes"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a switch takes no value: {out:?}"
    );
}

fn fixture_in(dir: &str, name: &str) -> String {
    format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp(name: &str, body: &[u8]) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "tumen-cli-{}-{name}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write");
    let s = path.display().to_string();
    (dir, s)
}

#[test]
fn infer_skips_what_it_cannot_read_with_a_warning_and_strict_refuses_it() {
    let good = std::fs::read_to_string(fixture("atlas-lines.jsonl")).expect("fixture");
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(
        2,
        "{\"dst_addr\": \"198.18.178.20\", \"result\": [{\"hop\": \"x\"}]}",
    );
    lines.insert(3, "{not json");
    let (dir, path) = temp("dump.jsonl", lines.join("\n").as_bytes());
    let (code, out, err) = run(&["infer", &path]);
    assert_eq!(code, Some(0), "{err}");
    // Three results (the fixture has a blank line).
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        err.contains("dump.jsonl:3:result[0].hop") && err.contains("(skipped)"),
        "{err}"
    );
    assert!(err.contains("dump.jsonl:4: invalid JSON"), "{err}");
    assert!(
        err.contains("read 3 traces as RIPE Atlas traceroute JSON, skipped 2 lines"),
        "{err}"
    );
    let (code, out, err) = run(&["infer", "--strict", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(65), "{err}");
    assert!(err.contains("dump.jsonl:3:result[0].hop"), "{err}");
    assert!(
        !err.contains("dump.jsonl:4"),
        "strict stops at the first: {err}"
    );
    // Output may have started before the fault: the traces before it.
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn infer_explain_prints_a_table_per_trace() {
    let (code, out, err) = run(&["infer", "--explain", &fixture("dprk-transtelecom.txt")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ttl  address"), "{out}");
    assert!(
        out.contains("188.43.225.153  -               AS20485   transtelecom  outside"),
        "{out}"
    );
    assert!(out.contains("in target prefix 175.45.176.0/22"), "{out}");
    let (code, out, _) = run(&[
        "infer",
        "--explain",
        "--json",
        &fixture("dprk-transtelecom.txt"),
    ]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("line")).expect("json");
    assert_eq!(v["inference"]["upstream"], "transtelecom");
    assert_eq!(v["hops"][3]["rule"], "AS20485 from the prefix table");
}

#[test]
fn infer_targets_given_as_an_as_or_a_country() {
    let trace = fixture("dprk-transtelecom.txt");
    let (code, out, err) = run(&["infer", "--target-asn", "AS131279", &trace]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("upstream transtelecom (AS20485), entered the target"),
        "{out}"
    );
    let apnic = fixture_in("delegated", "delegated-apnic-20141224-excerpt");
    let (code, out, err) = run(&[
        "infer",
        "--target-country",
        "kp",
        "--delegated",
        &apnic,
        &trace,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("upstream transtelecom (AS20485), entered the target"),
        "{out}"
    );
    // Another country: the trace never enters it.
    let (code, out, _) = run(&[
        "infer",
        "--target-country",
        "JP",
        "--delegated",
        &apnic,
        &trace,
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("did not enter the target"), "{out}");
    for (args, needle) in [
        (
            vec!["--target-country", "KP"],
            "needs the RIR statistics files",
        ),
        (
            vec!["--target-country", "K", "--delegated", &apnic],
            "country code",
        ),
        (
            vec!["--target-country", "ZW", "--delegated", &apnic],
            "no address block and no AS",
        ),
        (
            vec!["--delegated", &apnic],
            "--target-country, which is not given",
        ),
        (vec!["--target-asn", "AS-X"], "not an AS number"),
        (vec!["--target-asn", "0"], "not an AS number"),
        (vec!["--format", "nope"], "not a format I know"),
    ] {
        let mut a = vec!["infer"];
        a.extend(args.iter().copied());
        a.push(&trace);
        let (code, _, err) = run(&a);
        assert_eq!(code, Some(64), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, _, err) = run(&[
        "infer",
        "--target-country",
        "KP",
        "--delegated",
        "/nonexistent/d",
        &trace,
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("/nonexistent/d"), "{err}");
}

#[test]
fn infer_lists_formats_and_reads_the_one_named() {
    let (code, out, _) = run(&["infer", "--format", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("tracert") && out.contains("mtr-csv") && out.contains("atlas"),
        "{out}"
    );
    let (code, _, err) = run(&["infer"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("no input"), "{err}");
    // Named: a Linux trace read as Atlas JSON is refused, with the reason.
    let (code, _, err) = run(&["infer", "--format", "atlas", &fixture("linux-n.txt")]);
    assert_eq!(code, Some(65), "{err}");
    assert!(err.contains("tried RIPE Atlas traceroute JSON"), "{err}");
}

#[test]
fn infer_reads_several_inputs_and_goes_on_past_a_missing_one() {
    let (code, out, err) = run(&[
        "infer",
        &fixture("dprk-china-unicom-x.txt"),
        "/nonexistent/t.txt",
        &fixture("dprk-transtelecom.txt"),
    ]);
    assert_eq!(code, Some(66), "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains("/nonexistent/t.txt"), "{err}");
}

#[test]
fn infer_loads_ixp_lists_and_refuses_broken_ones() {
    let ixp = fixture_in("ixp", "ixp.txt");
    let (code, _, err) = run(&["infer", "--ixp", &ixp, &fixture("dprk-transtelecom.txt")]);
    assert_eq!(code, Some(0), "{err}");
    let (dir, bad) = temp("ixp.json", b"{\"data\": [{\"prefix\": 7}]}");
    let (code, _, err) = run(&["infer", "--ixp", &bad, &fixture("dprk-transtelecom.txt")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(66), "{err}");
    assert!(err.contains("--ixp") && err.contains("ixp.json"), "{err}");
}

#[test]
fn infer_reads_utf16_saved_by_powershell() {
    let text = std::fs::read_to_string(fixture("dprk-transtelecom.txt")).expect("fixture");
    let mut bytes = vec![0xff, 0xfe];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let (dir, path) = temp("utf16.txt", &bytes);
    let (code, out, err) = run(&["infer", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("upstream transtelecom"), "{out}");
}

#[test]
fn version_names_the_commit_the_build_date_and_the_target() {
    let (code, out, err) = run(&["--version"]);
    assert_eq!(code, Some(0), "{err}");
    let line = out.trim();
    let head = format!("tumen-collector {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&head), "{line}");
    let rest = line.trim_start_matches(&head).trim_end_matches(')');
    let parts: Vec<&str> = rest.split(", ").collect();
    assert_eq!(parts.len(), 3, "{line}");
    let (commit, built, target) = (parts[0], parts[1], parts[2]);
    // Built from this checkout: the commit is its HEAD.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert_eq!(commit, h, "{line}"),
        None => assert_eq!(commit, "unknown", "{line}"),
    }
    let date = built.strip_prefix("built ").expect("built");
    assert_eq!(date, tumen_core_date(), "{line}");
    assert!(
        target.ends_with("-linux-gnu") || target.contains("-linux-"),
        "{line}"
    );
}

/// The build date as the build script writes it (the test is built with
/// the binary).
fn tumen_core_date() -> &'static str {
    tumen_core::build::DATE
}

#[test]
fn without_a_command_it_is_a_usage_error_that_names_the_commands() {
    let out = Command::new(BIN).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "clap's usage exit code");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serve, token, infer or bgp"), "{err}");
    assert!(err.contains("Usage: tumen-collector <COMMAND>"), "{err}");
}

#[test]
fn generate_assets_writes_a_man_page_per_command_and_three_completions() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--generate-assets")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    for page in [
        "tumen-collector",
        "tumen-collector-serve",
        "tumen-collector-infer",
        "tumen-collector-token",
        "tumen-collector-bgp",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("man/{page}.1"))).unwrap();
        assert!(
            text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH"),
            "{page}: {text}"
        );
        assert!(
            text.contains(&format!(".TH {} 1", page.to_uppercase())),
            "{page}: {text}"
        );
    }
    // Subcommand pages document their own flags.
    let infer = std::fs::read_to_string(dir.path().join("man/tumen-collector-infer.1")).unwrap();
    assert!(
        infer.contains("asn\\-table") || infer.contains("asn-table"),
        "{infer}"
    );
    let bash =
        std::fs::read_to_string(dir.path().join("completions/tumen-collector.bash")).unwrap();
    assert!(
        bash.contains("infer") && bash.contains("--asn-table"),
        "{bash}"
    );
    assert!(dir.path().join("completions/_tumen-collector").exists());
    assert!(dir.path().join("completions/tumen-collector.fish").exists());
    // Hidden from --help: it is for packagers.
    assert!(!help(&["--help"]).contains("generate-assets"));
}

#[test]
fn generate_assets_into_an_unwritable_place_fails_with_cantcreat() {
    let out = Command::new(BIN)
        .args(["--generate-assets", "/proc/tumen-nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(73), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write into /proc/tumen-nope"));
}

/// `bgp` without input, with both kinds, with bad times or files: a
/// clear error and the usage or no-input exit code.
#[test]
fn bgp_refuses_bad_arguments_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("updates.20171001.0900.bz2");
    std::fs::write(&junk, b"not bzip2, not MRT").unwrap();
    let junk = junk.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, u8, &str)> = vec![
        (vec![], 64, "give MRT files or directories"),
        (
            vec!["--bgp-archive", "http://127.0.0.1:9/", "x"],
            64,
            "not both",
        ),
        (
            vec!["--bgp-archive", "http://127.0.0.1:9/"],
            64,
            "needs --since",
        ),
        (vec!["--since", "yesterday", "x"], 64, "not a time"),
        (
            vec!["--since", "2017-10-02", "--until", "2017-10-01", "x"],
            64,
            "after --until",
        ),
        (vec!["--target", "nope", "x"], 64, "--target"),
        (
            vec!["/nonexistent/rib.20171001.0800.bz2"],
            66,
            "No such file",
        ),
        (vec!["/nonexistent-dir/"], 66, "/nonexistent-dir"),
    ];
    for (args, code, says) in cases {
        let out = Command::new(BIN)
            .arg("bgp")
            .args(&args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(i32::from(code)), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A file that is not MRT is read, found wanting, and reported.
    let out = Command::new(BIN)
        .args(["bgp", &junk])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 faults") || err.contains("faults"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no route to the target in the input\n"
    );
}

/// `bgp` on the RouteViews RIB fragment of 2014 (cut mid-record): the
/// prefixes of a target the fragment covers, their upstreams and
/// visibility, as text and JSON.
#[test]
fn bgp_reads_the_routeviews_fragment_into_a_timeline() {
    let rib = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/rib.20140523.0600_firstMB.bz2"
    );
    if !std::path::Path::new(rib).is_file() {
        panic!("{rib} is missing: ../shared/data must sit beside the repository");
    }
    let out = Command::new(BIN)
        .args(["bgp", "--target", "1.0.4.0/22", rib])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("truncated"), "{err}");
    for p in ["1.0.4.0/24", "1.0.5.0/24", "1.0.6.0/24", "1.0.7.0/24"] {
        assert!(
            text.contains(&format!("{p}\n  2014-05-23 06:00:00.000")),
            "{text}"
        );
    }
    let out = Command::new(BIN)
        .args([
            "bgp",
            "--json",
            "--target",
            "1.0.4.0/22",
            "--target-asn",
            "56203",
            rib,
        ])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let prefixes = v["prefixes"].as_array().expect("prefixes");
    assert_eq!(prefixes.len(), 4);
    // Origin AS56203 is inside: its neighbour is the upstream.
    let p4 = &prefixes[0];
    assert_eq!(p4["prefix"], "1.0.4.0/24");
    assert_eq!(p4["dominant"]["name"], "AS7545", "{p4}");
    assert!(p4["visibility"].as_f64().unwrap() > 0.9, "{p4}");
    assert_eq!(v["files"][0]["truncated"], true);
}
