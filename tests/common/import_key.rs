//! An emulated YubiKey behind the bed's pcscd, driven by the real binary in direct mode, for
//! the import tests: every run's output is checked for pieces of the test's secrets.

use super::TestBed;
use super::cli::{CliRun, run_cli};

/// The key, and the secrets (seeds in base32, passwords) no output may hold six
/// characters of.
pub struct ImportKey {
    pub bed: TestBed,
    secrets: Vec<String>,
}

impl ImportKey {
    pub fn new(secrets: &[&str]) -> ImportKey {
        let mut bed = TestBed::start();
        bed.attach_card(0, &["--profile", "yubikey"]);
        ImportKey {
            bed,
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `oathbridge --direct ARGS` with `stdin`; fails the test on a secret in its output.
    pub fn run(&self, args: &[&str], stdin: &str) -> CliRun {
        let mut all = vec!["--direct"];
        all.extend_from_slice(args);
        let run = run_cli(&self.bed, &all, stdin);
        let what = format!("{args:?}");
        for secret in &self.secrets {
            for window in secret.as_bytes().windows(6) {
                let window = std::str::from_utf8(window).expect("ascii");
                for text in [&run.stdout, &run.stderr] {
                    assert!(
                        !text.contains(window),
                        "{what}: output holds {window:?}: {text}"
                    );
                }
            }
        }
        run
    }

    /// Every id on the key (hidden ones too), sorted.
    pub fn ids(&self) -> Vec<String> {
        let run = self.run(&["list", "-H"], "");
        assert_eq!(run.code, 0, "list: {}", run.stderr);
        let mut ids: Vec<String> = run
            .stdout
            .lines()
            .filter_map(|l| l.split("  ").next())
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids
    }

    /// The code of the account `id` at unix time `at`.
    pub fn code(&self, id: &str, at: &str) -> String {
        let run = self.run(&["code", id, "--exact", "--at", at, "-s"], "");
        assert_eq!(run.code, 0, "code {id}: {}", run.stderr);
        run.stdout.trim().to_owned()
    }

    pub fn reset(&self) {
        let run = self.run(&["reset", "--force"], "");
        assert_eq!(run.code, 0, "reset: {}", run.stderr);
    }
}

/// `stderr` is exactly `lines`, in order, each the end of an `error: ` line.
pub fn assert_error_lines(what: &str, stderr: &str, lines: &[&str]) {
    let got: Vec<&str> = stderr.lines().collect();
    assert_eq!(got.len(), lines.len(), "{what}: {stderr}");
    for (line, want) in got.iter().zip(lines) {
        assert!(line.starts_with("error: "), "{what}: {line}");
        assert!(
            line.ends_with(want),
            "{what}: {line:?} does not end with {want:?}"
        );
    }
}
