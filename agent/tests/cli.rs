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
fn a_real_run_gets_an_honest_not_yet_and_exit_69() {
    let out = Command::new(BIN)
        .args(["--target", "192.0.2.0/24", "--allow-reserved", "--id", "t"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was sent"));
}

#[test]
fn dry_run_with_the_dprk_preset_shows_the_plan() {
    let out = Command::new(BIN)
        .args([
            "--preset",
            "dprk",
            "--dry-run",
            "--pps",
            "50",
            "--id",
            "vp-test",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing is sent"), "{text}");
    assert!(
        text.contains("targets:   3 prefix(es), 1536 address(es)"),
        "{text}"
    );
    for p in ["175.45.176.0/22", "210.52.109.0/24", "77.94.35.0/24"] {
        assert!(text.contains(p), "{text}");
    }
    assert!(text.contains("rate cap:  50 probes/s"), "{text}");
}

#[test]
fn reserved_and_outside_allow_targets_are_refused_with_exit_64() {
    let out = Command::new(BIN)
        .args(["--target", "10.0.0.0/8", "--dry-run"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("special-purpose range 10.0.0.0/8"), "{err}");
    assert!(err.contains("--allow-reserved"), "{err}");

    let out = Command::new(BIN)
        .args([
            "--target",
            "175.45.177.0/24",
            "--allow",
            "175.45.176.0/24",
            "--dry-run",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the allow-list"));
}

#[test]
fn a_bad_config_file_is_refused_with_the_line_at_fault() {
    let dir = std::env::temp_dir().join(format!("tumen-agent-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("agent.toml");
    std::fs::write(&path, "targets = [\"175.45.176.0/24\"]\npps = \"fast\"\n").expect("write");
    let out = Command::new(BIN)
        .args(["--config", path.to_str().expect("utf-8"), "--dry-run"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(
        &path,
        "targets = [\"175.45.176.0/24\"]\npps = 20\nid = \"f\"\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args([
            "--config",
            path.to_str().expect("utf-8"),
            "--dry-run",
            "--pps",
            "7",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rate cap:  7 probes/s"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = Command::new(BIN).arg("--bogus").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));
}
