//! Snapshot tests of `--help` for the top level and every subcommand (found by walking the
//! "Commands:" sections, so a new subcommand without a snapshot fails too).
//!
//! After an intended change: `OATHBRIDGE_BLESS=1 cargo test --test cli_help` rewrites
//! `tests/snapshots/help/*.txt`; review the diff before committing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help")
}

fn blessing() -> bool {
    std::env::var("OATHBRIDGE_BLESS").is_ok_and(|v| v == "1")
}

/// `oathbridge <path> --help`, with a fixed width and no colours.
fn help(path: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_oathbridge"))
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env("CLICOLOR", "0")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("OATHBRIDGE_LOG")
        .output()
        .expect("run oathbridge --help");
    assert!(
        output.status.success(),
        "oathbridge {path:?} --help failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// Subcommand names listed under "Commands:" (clap's own `help` excluded).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim_end() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// A line diff (longest common subsequence) of the two texts: `-` snapshot, `+` now,
/// at most 20 changed lines shown.
fn diff(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    // common[i][j]: length of the LCS of old[i..] and new[j..].
    let mut common = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut shown) = (0, 0, 0);
    let mut report = String::new();
    while (i < old.len() || j < new.len()) && shown < 20 {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || common[i][j + 1] >= common[i + 1][j]) {
            report.push_str(&format!("{:>4} +{}\n", j + 1, new[j]));
            j += 1;
            shown += 1;
        } else {
            report.push_str(&format!("{:>4} -{}\n", i + 1, old[i]));
            i += 1;
            shown += 1;
        }
    }
    if shown == 20 {
        report.push_str("     …\n");
    }
    report
}

#[test]
fn help_output_matches_the_snapshots() {
    let dir = snapshot_dir();
    if blessing() {
        std::fs::create_dir_all(&dir).expect("create the snapshot dir");
    }
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let text = help(&path);
        for sub in subcommands(&text) {
            let mut child = path.clone();
            child.push(sub);
            pending.push(child);
        }
        let name = std::iter::once("oathbridge".to_owned())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        let file = dir.join(format!("{name}.txt"));
        seen.insert(format!("{name}.txt"));
        if blessing() {
            std::fs::write(&file, &text).expect("write snapshot");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(expected) if expected == text => {}
            Ok(expected) => failures.push(format!(
                "{} differs (- snapshot, + now; line numbers of each side):\n{}",
                file.display(),
                diff(&expected, &text)
            )),
            Err(_) => failures.push(format!("{} is missing", file.display())),
        }
    }
    // Snapshots of subcommands that no longer exist.
    for entry in std::fs::read_dir(&dir)
        .expect("read the snapshot dir")
        .flatten()
    {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !seen.contains(&file_name) {
            if blessing() {
                std::fs::remove_file(entry.path()).expect("remove a stale snapshot");
            } else {
                failures.push(format!("{file_name} has no subcommand any more"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: OATHBRIDGE_BLESS=1 cargo test --test cli_help",
        failures.join("\n\n")
    );
    assert!(seen.len() > 10, "only {} help pages found", seen.len());
}

#[test]
fn top_level_help_shows_the_exit_codes() {
    let text = help(&[]);
    for line in [
        "Exit codes:",
        "0  success",
        "2  usage error or invalid input",
        "8  key full, or not supported by this key",
    ] {
        assert!(
            text.contains(line),
            "top-level help lacks {line:?}:\n{text}"
        );
    }
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(env!("CARGO_BIN_EXE_oathbridge"))
            .args(["completions", shell])
            .output()
            .expect("run completions");
        assert!(output.status.success(), "completions {shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("oathbridge") && script.contains("watch"),
            "completions {shell} do not mention the commands"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_oathbridge"))
        .arg("man")
        .output()
        .expect("run man");
    assert!(output.status.success());
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH oathbridge 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
}
