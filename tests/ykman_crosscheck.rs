//! Cross-check with code we did not write: Yubico's yubikey-manager (`ykman` 5.9.2) drives our
//! emulated card (`oathbridge emulate`) through the real pcscd + vpcd.
//!
//! The ykman executable comes from `OATHBRIDGE_YKMAN`, which `scripts/test.sh` sets after
//! creating `target/ykman-venv`. Without it these tests fail (they never skip).
//!
//! Expected outputs are ykman 5.9.2's exact lines; codes are computed independently with
//! `oathbridge::otp` (RFC 4226/6238) from the RFC test keys. ykman has no option to fix the
//! time, so a TOTP code may come from any time step between the start and the end of the
//! ykman call (normally one step; two if the call straddled a period boundary).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestBed, output_with_timeout};
use oathbridge::otp::{HashAlgorithm, hotp, totp};

/// RFC 4226/6238 keys: "12345678901234567890" and its 32- and 64-byte extensions.
const KEY_SHA1: &[u8] = b"12345678901234567890";
const KEY_SHA256: &[u8] = b"12345678901234567890123456789012";
const KEY_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
const B32_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const B32_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
const B32_SHA512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";
/// RFC 4226 Appendix D, counters 0..9.
const RFC4226: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

const YKMAN_VERSION: &str = "5.9.2";
const ADDED: &str = "OATH account added.";
const NIT_6D00: &str = "APDU error: SW=0x6d00 (INVALID_INSTRUCTION)";

/// The ykman executable from `OATHBRIDGE_YKMAN`, checked once to be version 5.9.2.
fn ykman_path() -> &'static PathBuf {
    static YKMAN: OnceLock<PathBuf> = OnceLock::new();
    YKMAN.get_or_init(|| {
        let path = std::env::var_os("OATHBRIDGE_YKMAN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "OATHBRIDGE_YKMAN is not set. The ykman cross-check needs yubikey-manager \
                 {YKMAN_VERSION}: run the whole suite with `bash scripts/test.sh` (it creates \
                 target/ykman-venv and sets OATHBRIDGE_YKMAN), or install it yourself \
                 (`python3 -m venv V && V/bin/pip install yubikey-manager=={YKMAN_VERSION}`) \
                 and run `OATHBRIDGE_YKMAN=V/bin/ykman cargo test --test ykman_crosscheck`."
                )
            });
        let mut cmd = Command::new(&path);
        cmd.arg("--version");
        let out = output_with_timeout(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{} --version hung", path.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("version: {YKMAN_VERSION}")),
            "OATHBRIDGE_YKMAN={} is not yubikey-manager {YKMAN_VERSION} (the expected outputs \
             are that version's): {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
}

struct Yk {
    code: i32,
    stdout: String,
    stderr: String,
    /// Unix time just before ykman started and just after it ended.
    t0: u64,
    t1: u64,
}

impl Yk {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Runs `ykman --reader "Virtual PCD 00 0<slot>" <args>` against the bed (stdin closed).
fn yk_at(bed: &TestBed, slot: u8, args: &[&str]) -> Yk {
    let mut cmd = Command::new(ykman_path());
    cmd.arg("--reader").arg(bed.reader(slot)).args(args);
    bed.apply_env(&mut cmd);
    let t0 = now();
    let out = output_with_timeout(&mut cmd, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("ykman {args:?} did not finish within 60 s\n{}", bed.logs()));
    let t1 = now();
    Yk {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        t0,
        t1,
    }
}

fn yk(bed: &TestBed, args: &[&str]) -> Yk {
    yk_at(bed, 0, args)
}

/// Runs ykman and requires exit code 0.
fn yk_ok_at(bed: &TestBed, slot: u8, args: &[&str]) -> Yk {
    let r = yk_at(bed, slot, args);
    assert_eq!(
        r.code,
        0,
        "ykman {args:?} failed (rc {}):\nstdout: {}\nstderr: {}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        bed.logs()
    );
    r
}

fn yk_ok(bed: &TestBed, args: &[&str]) -> Yk {
    yk_ok_at(bed, 0, args)
}

/// Runs ykman and requires exit code 1 with `needle` in stderr.
fn yk_fails(bed: &TestBed, args: &[&str], needle: &str) -> Yk {
    let r = yk(bed, args);
    assert!(
        r.code == 1 && r.stderr.contains(needle),
        "ykman {args:?}: expected rc 1 and {needle:?} in stderr, got rc {}:\nstdout: {}\nstderr: {}",
        r.code,
        r.stdout,
        r.stderr
    );
    r
}

fn add_ok(bed: &TestBed, args: &[&str]) {
    let mut full = vec!["oath", "accounts", "add"];
    full.extend_from_slice(args);
    let r = yk_ok(bed, &full);
    assert_eq!(r.lines(), [ADDED], "ykman {full:?}");
}

fn list(bed: &TestBed, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["oath", "accounts", "list"];
    args.extend_from_slice(extra);
    yk_ok(bed, &args)
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The TOTP codes a call running from `t0` to `t1` may legitimately show.
fn totp_window(
    alg: HashAlgorithm,
    key: &[u8],
    period: u32,
    digits: u8,
    t0: u64,
    t1: u64,
) -> Vec<String> {
    let p = u64::from(period);
    (t0 / p..=t1 / p)
        .map(|step| totp(alg, key, step * p, period, digits))
        .collect()
}

/// Checks ykman's `accounts code` table: `(name, allowed codes)` in ykman's order, each line
/// formatted as ykman does (`{name:<w}  {code:>c}`).
fn assert_code_table(r: &Yk, expected: &[(&str, Vec<String>)]) {
    let lines = r.lines();
    assert_eq!(lines.len(), expected.len(), "code table:\n{}", r.stdout);
    let name_w = expected.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut parsed = Vec::new();
    for (line, (name, allowed)) in lines.iter().zip(expected) {
        let code = line
            .rsplit_once("  ")
            .map(|(_, c)| c.trim())
            .unwrap_or_else(|| panic!("unparsable code line {line:?}"));
        assert!(
            allowed.iter().any(|a| a == code),
            "{name}: code {code:?} not in {allowed:?} (t0={}, t1={})\n{}",
            r.t0,
            r.t1,
            r.stdout
        );
        parsed.push((*name, code.to_string()));
    }
    let code_w = parsed.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    let want: Vec<String> = parsed
        .iter()
        .map(|(n, c)| format!("{n:<name_w$}  {c:>code_w$}"))
        .collect();
    assert_eq!(lines, want, "exact ykman code table");
}

/// A fresh bed, after checking that ykman is configured (so a missing ykman fails first).
fn bed() -> TestBed {
    ykman_path();
    TestBed::start()
}

#[test]
fn info_and_readers() {
    let mut bed = bed();
    bed.attach_card(0, &[]);
    let mut cmd = Command::new(ykman_path());
    cmd.args(["list", "--readers"]);
    bed.apply_env(&mut cmd);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(60)).expect("ykman list hung");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Virtual PCD 00 00\nVirtual PCD 00 01\n"
    );
    let r = yk_ok(&bed, &["oath", "info"]);
    assert_eq!(
        r.lines(),
        [
            "OATH version:        5.7.2",
            "Password protection: disabled"
        ]
    );
    // The empty card lists nothing and calculates nothing.
    assert!(list(&bed, &[]).is_empty());
    assert_eq!(yk_ok(&bed, &["oath", "accounts", "code"]).stdout, "");
}

#[test]
fn totp_sha1_sha256_sha512_codes() {
    let mut bed = bed();
    bed.attach_card(0, &["--profile", "yubikey"]);
    add_ok(&bed, &["-d", "8", "rfc", B32_SHA1]);
    add_ok(
        &bed,
        &["-a", "SHA256", "-P", "60", "-d", "8", "s256", B32_SHA256],
    );
    add_ok(
        &bed,
        &[
            "-a", "SHA512", "-d", "8", "-i", "Example", "s512", B32_SHA512,
        ],
    );
    add_ok(&bed, &["-a", "SHA1", "-i", "GitHub", "six", B32_SHA1]);

    // ykman sorts by (issuer or name, name), case-insensitively.
    assert_eq!(
        list(&bed, &[]),
        ["Example:s512", "GitHub:six", "rfc", "60/s256"]
    );
    assert_eq!(
        list(&bed, &["-o", "-P"]),
        [
            "Example:s512, TOTP, 30",
            "GitHub:six, TOTP, 30",
            "rfc, TOTP, 30",
            "60/s256, TOTP, 60"
        ]
    );

    let r = yk_ok(&bed, &["oath", "accounts", "code"]);
    let (t0, t1) = (r.t0, r.t1);
    assert_code_table(
        &r,
        &[
            (
                "Example:s512",
                totp_window(HashAlgorithm::Sha512, KEY_SHA512, 30, 8, t0, t1),
            ),
            (
                "GitHub:six",
                totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 6, t0, t1),
            ),
            (
                "rfc",
                totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 8, t0, t1),
            ),
            (
                "60/s256",
                totp_window(HashAlgorithm::Sha256, KEY_SHA256, 60, 8, t0, t1),
            ),
        ],
    );

    // A single match: `code QUERY` prints "name  code", `-s` only the code.
    let r = yk_ok(&bed, &["oath", "accounts", "code", "s256"]);
    assert_code_table(
        &r,
        &[(
            "60/s256",
            totp_window(HashAlgorithm::Sha256, KEY_SHA256, 60, 8, r.t0, r.t1),
        )],
    );
    let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "rfc"]);
    let allowed = totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 8, r.t0, r.t1);
    assert!(
        r.lines().len() == 1 && allowed.iter().any(|a| a == r.lines()[0]),
        "code -s rfc: {:?} not one of {allowed:?}",
        r.stdout
    );
}

#[test]
fn hotp_counter_advances_per_calculation() {
    let mut bed = bed();
    bed.attach_card(0, &[]);
    add_ok(&bed, &["-o", "HOTP", "hotp1", B32_SHA1]);
    add_ok(
        &bed,
        &["-o", "HOTP", "-c", "5", "-i", "Iss", "h5", B32_SHA1],
    );
    add_ok(
        &bed,
        &["-o", "HOTP", "-d", "8", "-a", "SHA256", "h256", B32_SHA256],
    );
    assert_eq!(
        list(&bed, &["-o"]),
        ["h256, HOTP", "hotp1, HOTP", "Iss:h5, HOTP"]
    );

    for expected in &RFC4226[..3] {
        let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "hotp1"]);
        assert_eq!(r.lines(), [*expected]);
    }
    let r = yk_ok(&bed, &["oath", "accounts", "code", "hotp1"]);
    assert_eq!(r.lines(), [format!("hotp1  {}", RFC4226[3])]);

    // CALCULATE ALL does not compute (or count) HOTP credentials.
    let r = yk_ok(&bed, &["oath", "accounts", "code"]);
    assert_eq!(
        r.lines(),
        [
            "h256    [HOTP Account]",
            "hotp1   [HOTP Account]",
            "Iss:h5  [HOTP Account]"
        ]
    );
    let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "hotp1"]);
    assert_eq!(r.lines(), [RFC4226[4]]);

    // Initial counter 5 (`-c 5`), with an issuer.
    let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "Iss:h5"]);
    assert_eq!(r.lines(), [RFC4226[5]]);
    let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "h5"]);
    assert_eq!(r.lines(), [RFC4226[6]]);

    // SHA256, 8 digits.
    for counter in 0..2 {
        let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "h256"]);
        assert_eq!(
            r.lines(),
            [hotp(HashAlgorithm::Sha256, KEY_SHA256, counter, 8)]
        );
    }
}

#[test]
fn rename_and_delete() {
    let mut bed = bed();
    bed.attach_card(0, &[]);
    add_ok(
        &bed,
        &[
            "-a", "SHA512", "-d", "8", "-i", "Example", "s512", B32_SHA512,
        ],
    );
    add_ok(&bed, &["-o", "HOTP", "hotp1", B32_SHA1]);
    add_ok(&bed, &["-P", "60", "long", B32_SHA1]);

    let r = yk_ok(
        &bed,
        &["oath", "accounts", "rename", "-f", "s512", "NewIss:newname"],
    );
    assert_eq!(r.lines(), ["Renamed Example:s512 to NewIss:newname."]);
    // Renaming keeps the period prefix of a non-30 s TOTP credential.
    let r = yk_ok(
        &bed,
        &["oath", "accounts", "rename", "-f", "long", "longer"],
    );
    assert_eq!(r.lines(), ["Renamed 60/long to 60/longer."]);
    assert_eq!(
        list(&bed, &["-o", "-P"]),
        [
            "hotp1, HOTP, 0",
            "60/longer, TOTP, 60",
            "NewIss:newname, TOTP, 30"
        ]
    );
    // The renamed credential still calculates with its key.
    let r = yk_ok(&bed, &["oath", "accounts", "code", "newname"]);
    assert_code_table(
        &r,
        &[(
            "NewIss:newname",
            totp_window(HashAlgorithm::Sha512, KEY_SHA512, 30, 8, r.t0, r.t1),
        )],
    );

    let r = yk_ok(&bed, &["oath", "accounts", "delete", "-f", "hotp1"]);
    assert_eq!(r.lines(), ["Deleted hotp1."]);
    assert_eq!(list(&bed, &[]), ["60/longer", "NewIss:newname"]);
    let r = yk_ok(&bed, &["oath", "accounts", "delete", "-f", "hotp1"]);
    assert_eq!(r.lines(), ["No matches, nothing to be done."]);
}

#[test]
fn password_set_use_change_clear() {
    let mut bed = bed();
    bed.attach_card(0, &[]);
    add_ok(&bed, &["-d", "8", "rfc", B32_SHA1]);

    let r = yk_ok(&bed, &["oath", "access", "change", "-n", "PASSWORD"]);
    assert_eq!(r.lines(), ["Password updated."]);
    let r = yk_ok(&bed, &["oath", "info"]);
    assert_eq!(
        r.lines(),
        ["OATH version:        5.7.2", "Password protection: enabled"]
    );

    // Without a password ykman prompts; stdin is closed, so it aborts.
    let r = yk_fails(&bed, &["oath", "accounts", "list"], "Enter the password");
    assert!(
        r.stdout.is_empty(),
        "nothing listed without the password: {}",
        r.stdout
    );
    yk_fails(
        &bed,
        &["oath", "accounts", "list", "-p", "wrong"],
        "ERROR: Authentication to the YubiKey failed. Wrong password?",
    );
    assert_eq!(list(&bed, &["-p", "PASSWORD"]), ["rfc"]);
    let r = yk_ok(&bed, &["oath", "accounts", "code", "-p", "PASSWORD", "rfc"]);
    assert_code_table(
        &r,
        &[(
            "rfc",
            totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 8, r.t0, r.t1),
        )],
    );

    // Change the password, then clear it.
    let r = yk_ok(
        &bed,
        &["oath", "access", "change", "-p", "PASSWORD", "-n", "other"],
    );
    assert_eq!(r.lines(), ["Password updated."]);
    yk_fails(
        &bed,
        &["oath", "accounts", "list", "-p", "PASSWORD"],
        "ERROR: Authentication to the YubiKey failed. Wrong password?",
    );
    assert_eq!(list(&bed, &["-p", "other"]), ["rfc"]);
    let r = yk_ok(&bed, &["oath", "access", "change", "-p", "other", "-c"]);
    assert_eq!(r.lines(), ["Password cleared from YubiKey."]);
    assert_eq!(list(&bed, &[]), ["rfc"]);
    let r = yk_ok(&bed, &["oath", "info"]);
    assert_eq!(
        r.lines(),
        [
            "OATH version:        5.7.2",
            "Password protection: disabled"
        ]
    );
}

#[test]
fn reset_removes_accounts_and_password() {
    let mut bed = bed();
    bed.attach_card(0, &[]);
    add_ok(&bed, &["rfc", B32_SHA1]);
    add_ok(&bed, &["-o", "HOTP", "hotp1", B32_SHA1]);
    yk_ok(&bed, &["oath", "access", "change", "-n", "PASSWORD"]);

    let r = yk_ok(&bed, &["oath", "reset", "-f"]);
    assert_eq!(
        r.lines(),
        [
            "Resetting OATH data...",
            "Reset complete. All OATH accounts have been deleted from the YubiKey."
        ]
    );
    assert!(list(&bed, &[]).is_empty());
    let r = yk_ok(&bed, &["oath", "info"]);
    assert_eq!(
        r.lines(),
        [
            "OATH version:        5.7.2",
            "Password protection: disabled"
        ]
    );
    // The card works normally after the reset.
    add_ok(&bed, &["-o", "HOTP", "again", B32_SHA1]);
    let r = yk_ok(&bed, &["oath", "accounts", "code", "-s", "again"]);
    assert_eq!(r.lines(), [RFC4226[0]]);
}

#[test]
fn touch_credentials_approve_and_deny() {
    let mut bed = bed();
    bed.attach_card(0, &["--touch", "approve", "--touch-delay-ms", "100"]);
    bed.attach_card(1, &["--touch", "deny", "--touch-timeout-ms", "300"]);

    add_ok(&bed, &["-t", "touchy", B32_SHA1]);
    add_ok(&bed, &["-d", "8", "plain", B32_SHA1]);
    let r = yk_ok(&bed, &["oath", "accounts", "code"]);
    let lines = r.lines();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    let allowed = totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 8, r.t0, r.t1);
    assert!(
        allowed
            .iter()
            .any(|c| lines[0] == format!("plain   {c:>16}")),
        "line {:?}, allowed {allowed:?}",
        lines[0]
    );
    assert_eq!(lines[1], "touchy  [Requires Touch]");

    let r = yk_ok(&bed, &["oath", "accounts", "code", "touchy"]);
    assert_eq!(r.stderr.trim(), "Touch your YubiKey...");
    assert_code_table(
        &r,
        &[(
            "touchy",
            totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 6, r.t0, r.t1),
        )],
    );

    // The card in slot 1 is never touched: ykman reports the timeout.
    let r = yk_ok_at(
        &bed,
        1,
        &["oath", "accounts", "add", "-t", "touchy", B32_SHA1],
    );
    assert_eq!(r.lines(), [ADDED]);
    let r = yk_at(&bed, 1, &["oath", "accounts", "code", "touchy"]);
    assert_eq!(r.code, 1, "stdout {} stderr {}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.lines().collect::<Vec<_>>(),
        ["Touch your YubiKey...", "ERROR: Touch account timed out!"]
    );
}

#[test]
fn chained_responses_and_state_survive_replug() {
    let mut bed = bed();
    let state = bed.dir().join("card-state.json");
    let state_arg = state.display().to_string();
    // Small chunks: LIST and CALCULATE ALL answers come in several 61xx pieces.
    let mut card = bed.attach_card(0, &["--chunk-size", "24", "--state", &state_arg]);
    let names: Vec<String> = (0..6).map(|i| format!("account-{i}@example.com")).collect();
    for name in &names {
        add_ok(&bed, &["-d", "8", "-i", "Chain", name, B32_SHA1]);
    }
    let want: Vec<String> = names.iter().map(|n| format!("Chain:{n}")).collect();
    assert_eq!(list(&bed, &[]), want);
    let r = yk_ok(&bed, &["oath", "accounts", "code"]);
    let allowed = totp_window(HashAlgorithm::Sha1, KEY_SHA1, 30, 8, r.t0, r.t1);
    let table: Vec<(&str, Vec<String>)> =
        want.iter().map(|n| (n.as_str(), allowed.clone())).collect();
    assert_code_table(&r, &table);

    // A new emulator process on the same state file has the same accounts.
    card.terminate();
    bed.reattach(&mut card);
    assert_eq!(list(&bed, &[]), want);
}

#[test]
fn nitrokey_profile_documented_differences() {
    let mut bed = bed();
    bed.attach_card(0, &["--profile", "nitrokey"]);
    let r = yk_ok(&bed, &["oath", "info"]);
    assert_eq!(
        r.lines(),
        [
            "OATH version:        4.15.0",
            "Password protection: disabled"
        ]
    );
    add_ok(&bed, &["-d", "8", "rfc", B32_SHA1]);
    add_ok(&bed, &["-o", "HOTP", "hotp1", B32_SHA1]);
    assert_eq!(
        list(&bed, &["-o", "-P"]),
        ["hotp1, HOTP, 0", "rfc, TOTP, 30"]
    );

    // No CALCULATE ALL on a Nitrokey 3 (compiled out, 6D00): every `accounts code` fails.
    for args in [
        &["oath", "accounts", "code"][..],
        &["oath", "accounts", "code", "-s", "rfc"][..],
    ] {
        let r = yk_fails(&bed, args, NIT_6D00);
        assert!(r.stderr.contains("calculate_all"), "{}", r.stderr);
    }
    // No SET CODE either (6D00), and RENAME is refused by ykman for version 4.15.0.
    let r = yk_fails(&bed, &["oath", "access", "change", "-n", "pw"], NIT_6D00);
    assert!(r.stderr.contains("set_key"), "{}", r.stderr);
    yk_fails(
        &bed,
        &["oath", "accounts", "rename", "-f", "rfc", "x:y"],
        "ERROR: This action requires YubiKey 5.3.1 or later",
    );
    let r = yk_ok(&bed, &["oath", "info"]);
    assert_eq!(r.lines()[1], "Password protection: disabled");

    let r = yk_ok(&bed, &["oath", "accounts", "delete", "-f", "hotp1"]);
    assert_eq!(r.lines(), ["Deleted hotp1."]);
    assert_eq!(list(&bed, &[]), ["rfc"]);
    let r = yk_ok(&bed, &["oath", "reset", "-f"]);
    assert_eq!(
        r.lines()[1],
        "Reset complete. All OATH accounts have been deleted from the YubiKey."
    );
    assert!(list(&bed, &[]).is_empty());
}
