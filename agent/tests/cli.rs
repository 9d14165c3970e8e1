//! The agent's command-line contract (DESIGN.md) as far as this build goes.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tumen-agent");

#[test]
fn help_lists_the_contract_flags() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--collector",
        "--token-file",
        "--id",
        "--target",
        "--allow",
        "--preset",
        "--allow-reserved",
        "--pps",
        "--interval",
        "--spool",
        "--once",
        "--dry-run",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn no_target_and_no_preset_is_refused_with_the_reason() {
    let out = Command::new(BIN).output().expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no target given"), "{err}");
    assert!(err.contains("--preset dprk"), "{err}");
}

#[test]
fn a_target_gets_an_honest_not_yet_and_exit_69() {
    let out = Command::new(BIN)
        .args(["--target", "192.0.2.0/24", "--dry-run"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was sent"));
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = Command::new(BIN).arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));
}
