//! Man pages and shell completions, generated from a binary's own clap
//! definition so they can never disagree with `--help`. Both binaries
//! expose this as a hidden `--generate-assets DIR` (as ripgrep's
//! `--generate` does); `tests/release.sh` runs it to fill the Debian
//! packages.

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Writes into `dir`:
/// - `man/NAME.1`, and `man/NAME-SUB.1` for every visible subcommand
///   (as git does), roff from clap_mangen;
/// - `completions/NAME.bash`, `completions/_NAME` (zsh),
///   `completions/NAME.fish`.
///
/// Returns the files written, in that order.
pub fn generate(mut cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    cmd.build();
    let name = cmd.get_name().to_string();
    let man = dir.join("man");
    let comp = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut written = Vec::new();
    man_pages(&cmd, &name, &man, &mut written)?;
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut buf);
        let path = comp.join(file);
        std::fs::write(&path, buf)?;
        written.push(path);
    }
    Ok(written)
}

/// The page of `cmd`, then one per visible subcommand, recursively; a
/// subcommand's page is titled `parent-sub` and its synopsis says
/// `parent sub`.
fn man_pages(
    cmd: &clap::Command,
    title: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let page = cmd.clone().name(title.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .title(title.to_uppercase())
        .section("1")
        .source(format!("Tumen {}", crate::build::VERSION))
        .manual("Tumen")
        .render(&mut buf)?;
    let path = dir.join(format!("{title}.1"));
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_title = format!("{title}-{}", sub.get_name());
        let bin = format!("{} {}", cmd.get_bin_name().unwrap_or(title), sub.get_name());
        let sub = sub.clone().bin_name(bin);
        man_pages(&sub, &sub_title, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("demo-tool")
            .version("1.0")
            .about("Does a thing")
            .arg(
                clap::Arg::new("verbose")
                    .long("verbose")
                    .action(clap::ArgAction::SetTrue)
                    .help("Say more"),
            )
            .subcommand(
                clap::Command::new("run").about("Run it").arg(
                    clap::Arg::new("fast")
                        .long("fast")
                        .action(clap::ArgAction::SetTrue),
                ),
            )
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn generates_a_page_per_visible_subcommand_and_three_completions() {
        let dir = std::env::temp_dir().join(format!("tumen-assets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = generate(cli(), &dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/demo-tool.1",
                "man/demo-tool-run.1",
                "completions/demo-tool.bash",
                "completions/_demo-tool",
                "completions/demo-tool.fish"
            ]
        );
        let page = std::fs::read_to_string(dir.join("man/demo-tool.1")).unwrap();
        assert!(page.contains(".TH DEMO-TOOL 1"), "{page}");
        assert!(page.contains("verbose"), "{page}");
        assert!(
            !page.contains("secret"),
            "hidden subcommands stay out: {page}"
        );
        let run = std::fs::read_to_string(dir.join("man/demo-tool-run.1")).unwrap();
        assert!(
            run.contains("demo\\-tool run") || run.contains("demo-tool run"),
            "{run}"
        );
        assert!(run.contains("fast"), "{run}");
        let bash = std::fs::read_to_string(dir.join("completions/demo-tool.bash")).unwrap();
        assert!(
            bash.contains("--verbose") && bash.contains("complete"),
            "{bash}"
        );
        let fish = std::fs::read_to_string(dir.join("completions/demo-tool.fish")).unwrap();
        assert!(fish.contains("complete -c demo-tool"), "{fish}");
        let zsh = std::fs::read_to_string(dir.join("completions/_demo-tool")).unwrap();
        assert!(zsh.starts_with("#compdef demo-tool"), "{zsh}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_not_a_panic() {
        let err = generate(cli(), Path::new("/proc/tumen-cannot-write-here")).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}
