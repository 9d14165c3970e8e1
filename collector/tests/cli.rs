//! The collector's command-line contract (DESIGN.md) as far as this build goes.

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
fn subcommands_say_they_are_not_built_yet() {
    for args in [&["serve"][..], &["infer", "-"][..]] {
        let out = Command::new(BIN).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(69), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not part of this build yet"));
    }
}

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'not-an-address'"));
}
