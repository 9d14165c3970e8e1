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

/// Without CAP_NET_RAW the agent cannot open its sockets and says how to
/// grant the capability. The agent runs as `nobody` with every capability
/// dropped (setpriv), so no socket exists and nothing can be sent: tests
/// never run a sending agent outside a lab namespace.
#[test]
fn without_cap_net_raw_a_real_run_says_how_to_grant_it_and_exits_77() {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            BIN,
        ]);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .args([
            "--once",
            "--target",
            "198.18.255.1",
            "--allow-reserved",
            "--id",
            "t",
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("CAP_NET_RAW"), "{err}");
    assert!(err.contains("setcap cap_net_raw+ep"), "{err}");
    assert!(err.contains("AmbientCapabilities=CAP_NET_RAW"), "{err}");
    assert!(out.stdout.is_empty());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
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
        text.contains(
            "targets:   3 prefix(es) -> 6 /24-or-/48 unit(s), 6 destination(s) (1 per unit)"
        ),
        "{text}"
    );
    for p in ["175.45.176.0/22", "210.52.109.0/24", "77.94.35.0/24"] {
        assert!(text.contains(p), "{text}");
    }
    assert!(text.contains("rate cap:  50 probes/s"), "{text}");
    assert!(
        text.contains("e.g. 175.45.177.1 (unit 175.45.177.0/24)"),
        "{text}"
    );
    assert!(text.contains("at most 360 probes per round"), "{text}");
}

#[test]
fn probe_options_are_validated_together() {
    let out = Command::new(BIN)
        .args([
            "--preset",
            "dprk",
            "--dry-run",
            "--protocol",
            "sctp",
            "--first-ttl",
            "9",
            "--max-ttl",
            "4",
            "--probes",
            "0",
            "--wait",
            "forever",
            "--hosts",
            "300",
            "--flows",
            "1000",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "protocol \"sctp\" is not one of icmp, udp, tcp",
        "first_ttl 9 is above max_ttl 4",
        "probes 0 is out of range 1..=10",
        "wait \"forever\" is not a duration",
        "hosts \"300\" is not a number 1..=256 or `all`",
        "flows 1000 is out of range 1..=256",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let out = Command::new(BIN)
        .args([
            "--preset",
            "dprk",
            "--dry-run",
            "--protocol",
            "tcp",
            "--hosts",
            "all",
            "--flows",
            "4",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Tcp port 80"), "{text}");
    assert!(
        text.contains("1536 destination(s) (all addresses per unit)"),
        "{text}"
    );
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

/// A token file that cannot be read stops the agent before any socket is
/// opened: exit 66 (`EX_NOINPUT`: an input file is missing or unreadable,
/// not 73, which is for output the agent cannot create), the file named
/// with a hint; an empty one exits 65 (`EX_DATAERR`). The target is
/// loopback and, as root, the agent runs as `nobody` without capabilities
/// (as above), so even a regression could send nothing.
#[test]
fn an_unreadable_token_file_exits_66_and_an_empty_one_65_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tumen-agent-token-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    // The spool is opened first: `nobody` must be able to create it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let token = dir.join("token");
    let run = || {
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
                BIN,
            ]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.args([
            "--target",
            "127.0.0.1",
            "--allow-reserved",
            "--id",
            "t",
            "--collector",
            "http://127.0.0.1:9",
            "--insecure-http",
            "--token-file",
            token.to_str().expect("utf-8"),
            "--spool",
            dir.join("spool").to_str().expect("utf-8"),
        ])
        .output()
        .expect("run")
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(err.contains(&token.display().to_string()), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(err.contains("tumen-collector token"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::write(&token, "# no token yet\n").expect("write");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("holds no token"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dry_run_into_a_closed_pipe_exits_quietly_without_a_panic() {
    use std::process::Stdio;
    // `tumen-agent --dry-run | head -0`: the reader is gone before the
    // agent writes. (It panicked in println! before.)
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args([
            "--dry-run",
            "--target",
            "198.18.176.0/22",
            "--allow-reserved",
        ])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn generate_assets_writes_the_man_page_and_three_completions() {
    let dir = std::env::temp_dir().join(format!("tumen-agent-assets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(BIN)
        .arg("--generate-assets")
        .arg(&dir)
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let man = std::fs::read_to_string(dir.join("man/tumen-agent.1")).unwrap();
    assert!(man.contains(".TH TUMEN-AGENT 1"), "{man}");
    for flag in ["collector", "token\\-file", "dry\\-run"] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    assert!(
        !man.contains("generate\\-assets"),
        "hidden from the man page too"
    );
    for f in ["tumen-agent.bash", "_tumen-agent", "tumen-agent.fish"] {
        let text = std::fs::read_to_string(dir.join("completions").join(f)).unwrap();
        assert!(
            text.contains("collector") && text.contains("token-file"),
            "{f}: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // It takes no other argument: the agent must not start probing.
    let out = Command::new(BIN)
        .args(["--generate-assets", "/tmp/x", "--target", "198.18.176.0/22"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
