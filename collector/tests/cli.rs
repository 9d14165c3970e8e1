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
