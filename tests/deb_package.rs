//! The Debian package, end to end, as a user gets it: `scripts/build-deb.sh` builds the
//! `.deb`, lintian finds no error in it, `apt-get install ./oathbridge_….deb` puts every
//! file where the desktop looks for it, a private session `dbus-daemon` (standard service
//! directories) activates the installed daemon through the installed activation file with
//! one `GetCodes` call, and `apt-get remove --purge` takes every file away again.
//!
//! Needs root (it installs a package system-wide; CI runs as root) and lintian and
//! cargo-deb (`scripts/test.sh` installs both). It never skips: without them it fails and
//! says what to install.
//!
//! The package is built from the **dev** profile (`build-deb.sh --profile dev`): `cargo test`
//! has built that binary already, so packaging takes seconds, where a release build adds
//! minutes of compiling on a 2-core CI machine to every run. The layout, control data and
//! maintainer scripts are the release package's; only the binary's optimisation differs.
//!
//! Package installs are serialised through [`PACKAGE_LOCK`] (a file lock): a future test
//! that installs packages must take it too. An `oathbridge` package that was installed before
//! the test started is never touched: the test refuses to run instead, unless the marker file
//! says a killed run of this test left it behind. Cleanup (stop the daemons, purge the
//! package) runs in `Drop`, also when an assertion fails.

mod common;

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::proc::{output_with_timeout, pid_alive, pids_with_env, stop_child, stop_pid};

const PACKAGE: &str = "oathbridge";
const BUS_NAME: &str = "io.github.oathbridge.OathBridge1";
const ROOT_PATH: &str = "/io/github/oathbridge/OathBridge1";
/// Held (exclusive `flock`) by every test that installs or removes packages.
const PACKAGE_LOCK: &str = "/run/lock/oathbridge-package-tests.lock";
/// Exists while this test has the package installed; a leftover after a killed run lets
/// the next run purge the package it left behind.
const MARKER: &str = "/var/tmp/oathbridge-deb-test.installed";
/// Environment entry on the private dbus-daemon and everything it activates.
const ENV_MARKER: &str = "OATHBRIDGE_DEB_TEST";

/// Where the desktop looks for each file, as `dpkg -L` must list it.
const INSTALLED_FILES: &[&str] = &[
    "/usr/bin/oathbridge",
    "/usr/lib/systemd/user/oathbridge.service",
    "/usr/share/dbus-1/services/io.github.oathbridge.OathBridge1.service",
    "/usr/share/dbus-1/interfaces/io.github.oathbridge.OathBridge1.Manager.xml",
    "/usr/share/dbus-1/interfaces/io.github.oathbridge.OathBridge1.Device.xml",
    "/usr/share/dbus-1/interfaces/io.github.oathbridge.OathBridge1.Account.xml",
    "/usr/lib/udev/rules.d/69-oathbridge.rules",
    "/usr/share/gnome-shell/search-providers/io.github.oathbridge.OathBridge1.search-provider.ini",
    "/usr/share/applications/io.github.oathbridge.OathBridge1.desktop",
    "/usr/share/krunner/dbusplugins/oathbridge.desktop",
    "/usr/share/man/man1/oathbridge.1.gz",
    "/usr/share/bash-completion/completions/oathbridge",
    "/usr/share/zsh/vendor-completions/_oathbridge",
    "/usr/share/fish/vendor_completions.d/oathbridge.fish",
    "/usr/share/doc/oathbridge/copyright",
    "/usr/share/doc/oathbridge/changelog.Debian.gz",
];
/// The postinst enables the user unit for every user (as dh_installsystemduser does).
const ENABLE_LINK: &str = "/etc/systemd/user/smartcard.target.wants/oathbridge.service";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Runs `cmd`, panicking on a timeout or (if `must_succeed`) a failure, with its output.
fn run(what: &str, cmd: &mut Command, timeout: Duration, must_succeed: bool) -> Output {
    let started = Instant::now();
    let out = output_with_timeout(cmd, timeout)
        .unwrap_or_else(|| panic!("{what}: no answer within {timeout:?}: {cmd:?}"));
    eprintln!(
        "deb_package: {what}: {} in {:.1} s",
        out.status,
        started.elapsed().as_secs_f64()
    );
    assert!(
        !must_succeed || out.status.success(),
        "{}",
        describe(what, &out)
    );
    out
}

fn require(program: &str, hint: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v \"$0\"")
        .arg(program)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "deb_package: `{program}` is missing. Install it: {hint} \
         (or run `bash scripts/test.sh`, which installs everything the tests need)"
    );
}

fn package_installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", PACKAGE])
        .output()
        .is_ok_and(|o| o.status.success() && text(&o.stdout).trim() == "installed")
}

/// `cargo test` runs this binary with the package's `CARGO_*` variables set; the nested
/// `cargo` in `build-deb.sh` must see the user's environment, not those.
fn without_cargo_test_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo_test = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key,
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR"
            );
        if set_by_cargo_test {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Purges the package in `Drop` (a failed assertion included) while this test installed it.
struct InstalledPackage {
    _lock: File,
    installed: bool,
}

impl InstalledPackage {
    fn purge(&mut self) -> Output {
        let out = apt_get(&["remove", "--purge", "-y", PACKAGE]);
        if !package_installed() {
            self.installed = false;
            let _ = fs::remove_file(MARKER);
        }
        out
    }
}

impl Drop for InstalledPackage {
    fn drop(&mut self) {
        if self.installed {
            let out = self.purge();
            if self.installed {
                eprintln!(
                    "deb_package: cleanup could not purge {PACKAGE}: remove it by hand \
                     (apt-get remove --purge {PACKAGE})\n{}",
                    describe("apt-get remove --purge", &out)
                );
            }
        }
    }
}

fn apt_get(args: &[&str]) -> Output {
    let mut cmd = Command::new("apt-get");
    cmd.args(["-o", "DPkg::Lock::Timeout=300", "-q"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive");
    output_with_timeout(&mut cmd, Duration::from_secs(600))
        .unwrap_or_else(|| panic!("apt-get {args:?}: no answer within 10 minutes"))
}

/// A private session bus with the standard service directories, and what it activated.
struct PrivateBus {
    daemon: Child,
    address: String,
    dir: PathBuf,
    marker: String,
}

impl PrivateBus {
    fn start(dir: &Path) -> PrivateBus {
        let home = dir.join("home");
        let runtime = dir.join("runtime");
        for d in [&home, &runtime] {
            fs::create_dir_all(d).expect("mkdir");
        }
        let socket = dir.join("bus");
        let address = format!("unix:path={}", socket.display());
        let marker = format!("{ENV_MARKER}={}", dir.display());
        let log = File::create(dir.join("dbus.log")).expect("dbus.log");
        // `--session` reads /usr/share/dbus-1/session.conf: <standard_session_servicedirs/>,
        // i.e. $XDG_RUNTIME_DIR, $XDG_DATA_HOME and $XDG_DATA_DIRS (+ /usr/share)/dbus-1/services.
        // XDG_DATA_DIRS=/usr/share keeps a source install in /usr/local from shadowing the
        // package's activation file; the private HOME and runtime dir do the same for ~/.local.
        // No pcscd (PCSCLITE_CSOCK_NAME points nowhere): the daemon must still answer.
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--address"])
            .arg(&address)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_DATA_DIRS", "/usr/share")
            .env("PCSCLITE_CSOCK_NAME", dir.join("no-pcscd.comm"))
            .env("OATHBRIDGE_LOG", "oathbridge=debug")
            .env(ENV_MARKER, dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start dbus-daemon");
        let bus = PrivateBus {
            daemon,
            address,
            dir: dir.to_owned(),
            marker,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the private dbus-daemon did not create {}\n{}",
                socket.display(),
                bus.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bus
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dbus.log")).unwrap_or_default()
    }

    fn gdbus_call(&self, dest: &str, path: &str, method: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("gdbus");
        cmd.args(["call", "--session", "--timeout", "30", "--dest", dest])
            .args(["--object-path", path, "--method", method])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        output_with_timeout(&mut cmd, Duration::from_secs(40))
            .unwrap_or_else(|| panic!("gdbus call {method}: no answer within 40 s"))
    }

    fn owner_pid(&self) -> Option<u32> {
        let out = self.gdbus_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            &[BUS_NAME],
        );
        // "(uint32 1234,)"
        text(&out.stdout)
            .trim()
            .trim_start_matches("(uint32 ")
            .trim_end_matches(",)")
            .parse()
            .ok()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let activated = pids_with_env(&self.marker);
        stop_child(&mut self.daemon, Duration::from_secs(3));
        for pid in activated.into_iter().chain(pids_with_env(&self.marker)) {
            stop_pid(pid, Duration::from_secs(3));
        }
    }
}

#[test]
fn the_deb_installs_activates_and_purges_cleanly() {
    let euid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1);
    assert_eq!(
        euid, 0,
        "deb_package needs root: it installs and purges the oathbridge package with apt-get. \
         Run it as root (CI does): sudo -E cargo test --test deb_package"
    );
    require("lintian", "apt-get install -y lintian");
    require("cargo-deb", "cargo install cargo-deb --locked");
    require("dpkg-shlibdeps", "apt-get install -y dpkg-dev");
    require("apt-get", "a Debian or Ubuntu system");
    require("dbus-daemon", "apt-get install -y dbus-daemon");
    require("gdbus", "apt-get install -y libglib2.0-bin");

    let work = tempfile::Builder::new()
        .prefix("oathbridge-deb-")
        .tempdir()
        .expect("temp dir");

    // 1. Build the package (dev profile; see the module comment).
    let out = run(
        "scripts/build-deb.sh --profile dev",
        without_cargo_test_env(
            Command::new("bash")
                .arg(repo().join("scripts/build-deb.sh"))
                .args(["--profile", "dev", "--output"])
                .arg(work.path().join("deb"))
                .current_dir(repo()),
        ),
        Duration::from_secs(1800),
        true,
    );
    let deb = PathBuf::from(text(&out.stdout).lines().last().unwrap_or_default().trim());
    let arch = text(
        &Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .expect("dpkg --print-architecture")
            .stdout,
    );
    let expected_name = format!(
        "{PACKAGE}_{}-1_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    );
    assert!(
        deb.is_file() && deb.file_name().is_some_and(|n| n == expected_name.as_str()),
        "build-deb.sh's last line should be the path of {expected_name}: {}",
        describe("build-deb.sh", &out)
    );

    // 2. The control data says what the brief asks for.
    let out = run(
        "dpkg-deb --field",
        Command::new("dpkg-deb").arg("--field").arg(&deb),
        Duration::from_secs(60),
        true,
    );
    let control = text(&out.stdout);
    let depends = control
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{control}"));
    let depends: Vec<&str> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap_or_default())
        .collect();
    for needed in ["pcscd", "libpcsclite1", "libc6", "init-system-helpers"] {
        assert!(
            depends.contains(&needed),
            "Depends lacks {needed}:\n{control}"
        );
    }
    assert!(
        !control.contains("\nRecommends:"),
        "no Recommends expected:\n{control}"
    );

    // 3. lintian: no errors.
    let out = run(
        "lintian",
        Command::new("lintian")
            .args(["--tag-display-limit", "0", "--display-info"])
            .arg(&deb),
        Duration::from_secs(600),
        false,
    );
    let report = text(&out.stdout);
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E: ")).collect();
    eprintln!("deb_package: lintian says:\n{report}{}", text(&out.stderr));
    assert!(
        errors.is_empty(),
        "lintian reports errors:\n{}\n(full report above)",
        errors.join("\n")
    );
    assert!(out.status.success(), "{}", describe("lintian", &out));

    // 4. Install it, under the package lock.
    fs::create_dir_all(Path::new(PACKAGE_LOCK).parent().expect("lock dir")).expect("mkdir");
    let lock = File::create(PACKAGE_LOCK).expect("package lock file");
    lock.lock().expect("take the package lock");
    if package_installed() {
        assert!(
            Path::new(MARKER).exists(),
            "{PACKAGE} is installed on this machine, and not by this test: it would purge it. \
             Remove it first (apt-get remove --purge {PACKAGE}), then run the test again."
        );
        eprintln!("deb_package: purging the package a killed run of this test left installed");
        let out = apt_get(&["remove", "--purge", "-y", PACKAGE]);
        assert!(out.status.success(), "{}", describe("purge leftover", &out));
    }
    fs::write(MARKER, b"tests/deb_package.rs\n").expect("marker");
    let mut package = InstalledPackage {
        _lock: lock,
        installed: true,
    };
    let started = Instant::now();
    let out = apt_get(&["install", "-y", &deb.display().to_string()]);
    eprintln!(
        "deb_package: apt-get install: {} in {:.1} s",
        out.status,
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "{}",
        describe("apt-get install", &out)
    );
    assert!(package_installed(), "{}", describe("apt-get install", &out));

    // 5. Every file where the desktop looks, owned by the package.
    let listed = text(
        &Command::new("dpkg")
            .args(["-L", PACKAGE])
            .output()
            .expect("dpkg -L")
            .stdout,
    );
    for file in INSTALLED_FILES {
        assert!(Path::new(file).is_file(), "{file} is not installed");
        assert!(
            listed.lines().any(|l| l == *file),
            "dpkg -L {PACKAGE} does not list {file}:\n{listed}"
        );
        let size = fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 0, "{file} is empty");
    }
    let mode = fs::metadata("/usr/bin/oathbridge").expect("binary").mode();
    assert_eq!(mode & 0o7777, 0o755, "/usr/bin/oathbridge mode {mode:o}");
    let activation =
        fs::read_to_string("/usr/share/dbus-1/services/io.github.oathbridge.OathBridge1.service")
            .expect("activation file");
    assert!(
        activation
            .lines()
            .any(|l| l == "Exec=/usr/bin/oathbridge daemon"),
        "the activation file must start /usr/bin/oathbridge:\n{activation}"
    );
    let unit = fs::read_to_string("/usr/lib/systemd/user/oathbridge.service").expect("unit");
    assert!(
        unit.lines()
            .any(|l| l == "ExecStart=/usr/bin/oathbridge daemon"),
        "the user unit must start /usr/bin/oathbridge:\n{unit}"
    );
    assert_eq!(
        fs::read_link(ENABLE_LINK).ok(),
        Some(PathBuf::from("/usr/lib/systemd/user/oathbridge.service")),
        "postinst should enable the user unit for every user ({ENABLE_LINK})"
    );
    let man = run(
        "gzip -dc oathbridge.1.gz",
        Command::new("gzip").args(["-dc", "/usr/share/man/man1/oathbridge.1.gz"]),
        Duration::from_secs(30),
        true,
    );
    assert!(
        text(&man.stdout).contains(".TH oathbridge"),
        "not the oathbridge man page"
    );
    let copyright = fs::read_to_string("/usr/share/doc/oathbridge/copyright").expect("copyright");
    assert!(
        copyright.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
        ) && copyright.contains("License: MIT or Apache-2.0")
            && copyright.contains("yubikey-5.4.3-traces"),
        "copyright:\n{copyright}"
    );
    let version = run(
        "/usr/bin/oathbridge --version",
        Command::new("/usr/bin/oathbridge").arg("--version"),
        Duration::from_secs(30),
        true,
    );
    assert!(
        text(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        describe("oathbridge --version", &version)
    );

    // 6. A private session bus activates the installed daemon on the first call.
    {
        let bus = PrivateBus::start(work.path());
        assert_eq!(
            bus.owner_pid(),
            None,
            "nobody owns {BUS_NAME} before the call"
        );
        let started = Instant::now();
        let out = bus.gdbus_call(
            BUS_NAME,
            ROOT_PATH,
            "io.github.oathbridge.OathBridge1.Manager.GetCodes",
            &["{}"],
        );
        eprintln!(
            "deb_package: activating GetCodes answered in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert!(
            out.status.success(),
            "{}\n--- dbus-daemon and daemon log\n{}",
            describe("the activating GetCodes", &out),
            bus.log()
        );
        assert_eq!(
            text(&out.stdout).trim(),
            "(@aa{sv} [],)",
            "no pcscd, no keys: GetCodes answers an empty array\n{}",
            bus.log()
        );
        let pid = bus
            .owner_pid()
            .unwrap_or_else(|| panic!("nobody owns {BUS_NAME} after the call\n{}", bus.log()));
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/exe")).ok(),
            Some(PathBuf::from("/usr/bin/oathbridge")),
            "the bus name's owner is not the installed binary"
        );
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert_eq!(
            text(&cmdline).replace('\0', " ").trim(),
            "/usr/bin/oathbridge daemon",
            "activation must run the Exec line of the installed .service file"
        );
        let out = bus.gdbus_call(
            BUS_NAME,
            ROOT_PATH,
            "org.freedesktop.DBus.Properties.Get",
            &["io.github.oathbridge.OathBridge1.Manager", "Version"],
        );
        assert_eq!(
            text(&out.stdout).trim(),
            format!("(<'{}'>,)", env!("CARGO_PKG_VERSION")),
            "{}",
            describe("Manager.Version", &out)
        );
        drop(bus);
        assert!(
            !pid_alive(pid),
            "the activated daemon {pid} is still running"
        );
    }

    // 7. Purge: every file gone, the unit's enablement too.
    let out = package.purge();
    assert!(
        out.status.success(),
        "{}",
        describe("apt-get remove --purge", &out)
    );
    assert!(
        !package_installed(),
        "{}",
        describe("apt-get remove --purge", &out)
    );
    for file in INSTALLED_FILES {
        assert!(
            !Path::new(file).exists(),
            "{file} is still there after the purge"
        );
    }
    assert!(
        fs::symlink_metadata(ENABLE_LINK).is_err(),
        "{ENABLE_LINK} is still there after the purge"
    );
    assert!(
        !Path::new("/usr/share/doc/oathbridge").exists(),
        "/usr/share/doc/oathbridge is still there after the purge"
    );
}
