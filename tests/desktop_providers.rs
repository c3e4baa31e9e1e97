//! GNOME Shell search provider and KRunner runner, called with the exact signatures the
//! shells use, on a private bus against the real daemon (hosting a virtual key).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestBed;
use oathbridge::otp::{HashAlgorithm, totp};
use zbus::zvariant::OwnedValue;

const BUS_NAME: &str = "io.github.oathbridge.OathBridge1";
const ROOT: &str = "/io/github/oathbridge/OathBridge1";
const SEARCH: &str = "/io/github/oathbridge/OathBridge1/SearchProvider";
const KRUNNER: &str = "/io/github/oathbridge/OathBridge1/KRunner";
const RFC_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// KRunner's Match tuple: (id, text, icon, category relevance, relevance, properties).
type Match = (
    String,
    String,
    String,
    i32,
    f64,
    HashMap<String, OwnedValue>,
);

/// The daemon child, killed when the test ends (also on panic).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn connect(address: &str) -> zbus::Connection {
    zbus::connection::Builder::address(address)
        .expect("bus address")
        .build()
        .await
        .expect("connect to the test bus")
}

async fn wait_for_name(connection: &zbus::Connection) {
    let proxy = zbus::fdo::DBusProxy::new(connection)
        .await
        .expect("bus proxy");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let name = zbus::names::BusName::try_from(BUS_NAME).expect("name");
        if proxy.name_has_owner(name).await.unwrap_or(false) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not take {BUS_NAME} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start_daemon(bed: &TestBed, state: &Path) -> Daemon {
    let mut command = bed.command(&["daemon", "--no-pcsc", "--virtual-key"]);
    command
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    Daemon(command.spawn().expect("spawn daemon"))
}

async fn add(connection: &zbus::Connection, uri: &str, touch: bool) {
    let credential: HashMap<&str, zbus::zvariant::Value<'_>> =
        HashMap::from([("uri", uri.into()), ("touch", touch.into())]);
    let options: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    connection
        .call_method(
            Some(BUS_NAME),
            ROOT,
            Some("io.github.oathbridge.OathBridge1.Manager"),
            "AddAccount",
            &(credential, options),
        )
        .await
        .expect("AddAccount");
}

async fn call<R>(
    connection: &zbus::Connection,
    path: &str,
    interface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> R
where
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    connection
        .call_method(Some(BUS_NAME), path, Some(interface), method, body)
        .await
        .unwrap_or_else(|e| panic!("{interface}.{method}: {e}"))
        .body()
        .deserialize::<R>()
        .unwrap_or_else(|e| panic!("{interface}.{method} reply: {e}"))
}

/// The RFC 6238 SHA-1 code now, computed independently, for both sides of a boundary.
fn expected_codes() -> [String; 2] {
    let now = oathbridge::clock::unix_now();
    let key = b"12345678901234567890";
    [
        totp(HashAlgorithm::Sha1, key, now, 30, 6),
        totp(HashAlgorithm::Sha1, key, now + 5, 30, 6),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gnome_search_provider_answers_like_the_shell_expects() {
    let mut bed = TestBed::start();
    let address = bed.start_dbus();
    let _daemon = start_daemon(&bed, &bed.dir().join("vk.json"));
    let connection = connect(&address).await;
    wait_for_name(&connection).await;
    add(
        &connection,
        &format!("otpauth://totp/GitHub:alice?secret={RFC_SHA1}"),
        false,
    )
    .await;
    add(
        &connection,
        &format!("otpauth://totp/GitLab:bob?secret={RFC_SHA1}"),
        true,
    )
    .await;
    add(
        &connection,
        &format!("otpauth://totp/_hidden:secret?secret={RFC_SHA1}"),
        false,
    )
    .await;

    let iface = "org.gnome.Shell.SearchProvider2";
    let initial: Vec<String> = call(
        &connection,
        SEARCH,
        iface,
        "GetInitialResultSet",
        &(vec!["git"],),
    )
    .await;
    assert_eq!(initial.len(), 2, "{initial:?}");
    let none: Vec<String> = call(
        &connection,
        SEARCH,
        iface,
        "GetInitialResultSet",
        &(vec!["secret"],),
    )
    .await;
    assert!(none.is_empty(), "hidden accounts never show: {none:?}");
    let narrowed: Vec<String> = call(
        &connection,
        SEARCH,
        iface,
        "GetSubsearchResultSet",
        &(initial.clone(), vec!["git", "hub"]),
    )
    .await;
    assert_eq!(narrowed.len(), 1);

    let metas: Vec<HashMap<String, OwnedValue>> = call(
        &connection,
        SEARCH,
        iface,
        "GetResultMetas",
        &(initial.clone(),),
    )
    .await;
    assert_eq!(metas.len(), 2);
    let by_name = |name: &str| {
        metas
            .iter()
            .find(|m| m.get("name").and_then(|v| <&str>::try_from(v).ok()) == Some(name))
            .unwrap_or_else(|| panic!("no meta named {name}: {metas:?}"))
    };
    let github = by_name("GitHub");
    let code =
        <&str>::try_from(github.get("clipboardText").expect("clipboardText")).expect("string");
    assert!(
        expected_codes().iter().any(|c| c == code),
        "clipboardText {code} is not the RFC code"
    );
    let gitlab = by_name("GitLab");
    assert!(
        gitlab.get("clipboardText").is_none(),
        "touch accounts get no code in metas"
    );
    let description =
        <&str>::try_from(gitlab.get("description").expect("description")).expect("string");
    assert!(description.contains("touch required"), "{description}");
    for meta in &metas {
        assert!(
            meta.contains_key("id") && meta.contains_key("gicon"),
            "{meta:?}"
        );
    }
    // Activation of a non-touch result returns at once (the shell copies clipboardText).
    let id = <&str>::try_from(github.get("id").expect("id"))
        .expect("string")
        .to_owned();
    let _: () = call(
        &connection,
        SEARCH,
        iface,
        "ActivateResult",
        &(id, vec!["git"], 0u32),
    )
    .await;

    // The same through gdbus, as a shell script would call it.
    let mut gdbus = Command::new("gdbus");
    bed.apply_env(&mut gdbus);
    let output = gdbus
        .args(["call", "--session", "-d", BUS_NAME, "-o", SEARCH, "-m"])
        .arg("org.gnome.Shell.SearchProvider2.GetInitialResultSet")
        .arg("['alice']")
        .output()
        .expect("gdbus");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("/accounts/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn krunner_match_tuples_actions_and_config() {
    let mut bed = TestBed::start();
    let address = bed.start_dbus();
    let _daemon = start_daemon(&bed, &bed.dir().join("vk.json"));
    let connection = connect(&address).await;
    wait_for_name(&connection).await;
    add(
        &connection,
        &format!("otpauth://totp/GitHub:alice?secret={RFC_SHA1}"),
        false,
    )
    .await;
    add(
        &connection,
        &format!("otpauth://totp/Work:alice?secret={RFC_SHA1}"),
        true,
    )
    .await;

    let iface = "org.kde.krunner1";
    type Match = (
        String,
        String,
        String,
        i32,
        f64,
        HashMap<String, OwnedValue>,
    );
    let matches: Vec<Match> = call(&connection, KRUNNER, iface, "Match", &("alice",)).await;
    assert_eq!(matches.len(), 2, "{matches:?}");
    let (id, text, icon, category, relevance, properties) = &matches[0];
    assert!(id.starts_with("/io/github/oathbridge/OathBridge1/accounts/"));
    assert_eq!(text, "GitHub: alice");
    assert_eq!(icon, "security-high");
    // "alice" is an account name exactly: an exact match (KF5 ExactMatch, KF6 Highest).
    assert_eq!(*category, 100);
    assert!(*relevance > 0.0 && *relevance <= 1.0);
    assert!(properties.contains_key("subtext"));
    let touch_subtext =
        <&str>::try_from(matches[1].5.get("subtext").expect("subtext")).expect("string");
    assert!(touch_subtext.contains("touch required"), "{touch_subtext}");
    let none: Vec<Match> = call(
        &connection,
        KRUNNER,
        iface,
        "Match",
        &("nothing-like-this",),
    )
    .await;
    assert!(none.is_empty());

    let actions: Vec<(String, String, String)> =
        call(&connection, KRUNNER, iface, "Actions", &()).await;
    assert_eq!(
        actions,
        vec![(
            "copy".to_owned(),
            "Copy code".to_owned(),
            "edit-copy".to_owned()
        )]
    );
    let config: HashMap<String, OwnedValue> =
        call(&connection, KRUNNER, iface, "Config", &()).await;
    assert_eq!(
        config.get("MinLetterCount").map(|v| i32::try_from(v).ok()),
        Some(Some(2))
    );
    // Run computes the code; with no clipboard here it must still return cleanly.
    let _: () = call(&connection, KRUNNER, iface, "Run", &(id.clone(), "")).await;
    let _: () = call(&connection, KRUNNER, iface, "Teardown", &()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_with_only_the_service_file_starts_the_daemon_on_the_first_search() {
    let mut bed = TestBed::start();
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("services dir");
    let shipped =
        std::fs::read_to_string(repo().join("dbus/io.github.oathbridge.OathBridge1.service"))
            .expect("shipped .service file");
    assert!(shipped.contains("Name=io.github.oathbridge.OathBridge1"));
    let state = bed.dir().join("vk.json");
    let exec = format!(
        "Exec={} daemon --no-pcsc --virtual-key {}",
        env!("CARGO_BIN_EXE_oathbridge"),
        state.display()
    );
    let rewritten: String = shipped
        .lines()
        .map(|line| {
            if line.starts_with("Exec=") {
                exec.clone()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        services.join("io.github.oathbridge.OathBridge1.service"),
        rewritten + "\n",
    )
    .expect("write service file");
    let address = bed.start_dbus_with_services(&services);
    let connection = connect(&address).await;
    // No daemon is running: this call activates it.
    let results: Vec<String> = call(
        &connection,
        SEARCH,
        "org.gnome.Shell.SearchProvider2",
        "GetInitialResultSet",
        &(vec!["anything"],),
    )
    .await;
    assert!(results.is_empty());
    let matches: Vec<Match> = call(
        &connection,
        KRUNNER,
        "org.kde.krunner1",
        "Match",
        &("anything",),
    )
    .await;
    assert!(matches.is_empty());
}

#[test]
fn desktop_files_validate() {
    let validator = Path::new("/usr/bin/desktop-file-validate");
    assert!(
        validator.exists(),
        "desktop-file-validate missing: apt-get install desktop-file-utils (scripts/test.sh does)"
    );
    for file in [
        "desktop/io.github.oathbridge.OathBridge1.desktop",
        "desktop/oathbridge-krunner.desktop",
    ] {
        let output = Command::new(validator)
            .arg(repo().join(file))
            .output()
            .expect("run validator");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !report.contains("error"),
            "{file}: {report}"
        );
    }
    let ini = std::fs::read_to_string(
        repo().join("dbus/io.github.oathbridge.OathBridge1.search-provider.ini"),
    )
    .expect("search provider ini");
    for line in [
        "[Shell Search Provider]",
        "DesktopId=io.github.oathbridge.OathBridge1.desktop",
        "BusName=io.github.oathbridge.OathBridge1",
        "ObjectPath=/io/github/oathbridge/OathBridge1/SearchProvider",
        "Version=2",
    ] {
        assert!(
            ini.lines().any(|l| l == line),
            "search provider ini lacks {line}"
        );
    }
}
