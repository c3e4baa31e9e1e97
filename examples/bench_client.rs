//! D-Bus load for `scripts/bench.sh`: cached `GetCodes` latency over one connection, and a
//! soak of mixed calls from several connections. Talks to the daemon on the session bus
//! (`DBUS_SESSION_BUS_ADDRESS`); prints `key=value` lines for the script.
//!
//!   cargo run --release --example bench_client -- latency --calls 1000
//!   cargo run --release --example bench_client -- echo &   # then: latency --echo
//!   cargo run --release --example bench_client -- soak --calls 100000 --clients 4 \
//!       --max-seconds 240 --write-reader "Virtual PCD 00 00" --soak-secret JBSWY3DPEHPK3PXP

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use oathbridge::daemon::{BUS_NAME, ROOT_PATH};
use tokio::sync::Mutex;
use zbus::Connection;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value, as_value};

const MANAGER: &str = "io.github.oathbridge.OathBridge1.Manager";
const DEVICE: &str = "io.github.oathbridge.OathBridge1.Device";
const ACCOUNT: &str = "io.github.oathbridge.OathBridge1.Account";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const OBJECT_MANAGER: &str = "org.freedesktop.DBus.ObjectManager";
/// The bus name `echo` takes.
const ECHO_NAME: &str = "io.github.oathbridge.BenchEcho";
/// Accounts the soak deletes and adds again, on the key in `--write-reader`.
const SOAK_SLOTS: usize = 2;

type Dict = HashMap<String, OwnedValue>;
type Entries = Vec<Dict>;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// GetCodes over one connection, one call at a time: p50/p95/p99.
    Latency {
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// GetCodes option "timestamp" (0 = now); a fixed one keeps every call cached.
        #[arg(long, default_value_t = 0)]
        timestamp: u64,
        /// Also time the same calls to `echo` (its name must be on the bus), interleaved.
        #[arg(long)]
        echo: bool,
    },
    /// The baseline of a cached GetCodes: take the name ECHO_NAME and answer every
    /// method call with the body of one real GetCodes reply (captured at start), sent as
    /// prebuilt bytes: one bus round trip carrying the same entries, no daemon logic.
    Echo {
        /// GetCodes option "timestamp" of the captured reply (0 = now).
        #[arg(long, default_value_t = 0)]
        timestamp: u64,
    },
    /// Mixed calls from several connections until `--calls` or `--max-seconds`.
    Soak {
        #[arg(long, default_value_t = 100_000)]
        calls: u64,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 240)]
        max_seconds: u64,
        /// Reader of the key that takes the adds and deletes.
        #[arg(long)]
        write_reader: String,
        /// Base32 seed of the accounts Soak:slot0, Soak:slot1 on that key.
        #[arg(long)]
        soak_secret: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The echo answers one call at a time: one thread, no hand-over between workers.
    let runtime = match args.command {
        Command::Echo { .. } => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Latency {
                calls,
                warmup,
                timestamp,
                echo,
            } => latency(calls, warmup, timestamp, echo).await,
            Command::Echo { timestamp } => serve_echo(timestamp).await,
            Command::Soak {
                calls,
                clients,
                max_seconds,
                write_reader,
                soak_secret,
            } => {
                soak(
                    calls,
                    clients,
                    Duration::from_secs(max_seconds),
                    write_reader,
                    soak_secret,
                )
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn value<'a>(v: impl Into<Value<'a>>) -> OwnedValue {
    v.into().try_to_owned().expect("plain values convert")
}

/// One GetCodes call to the daemon, its reply undecoded.
async fn call_get_codes(connection: &Connection, options: &Dict) -> zbus::Result<zbus::Message> {
    call_get_codes_of(connection, BUS_NAME, options).await
}

/// One GetCodes call to `destination` (the daemon or the echo), its reply undecoded.
async fn call_get_codes_of(
    connection: &Connection,
    destination: &str,
    options: &Dict,
) -> zbus::Result<zbus::Message> {
    connection
        .call_method(
            Some(destination),
            ROOT_PATH,
            Some(MANAGER),
            "GetCodes",
            options,
        )
        .await
}

async fn get_codes(connection: &Connection, options: &Dict) -> zbus::Result<Entries> {
    call_get_codes(connection, options)
        .await?
        .body()
        .deserialize::<Entries>()
}

/// One GetCodes entry as API v1 gives it (`dbus/`, issue 4), decoded the way a client
/// that knows the API decodes it: into its fields, strings borrowed from the reply.
#[derive(serde::Deserialize, zbus::zvariant::Type, Default)]
#[zvariant(signature = "a{sv}")]
#[serde(default)]
struct EntryView<'a> {
    #[serde(with = "as_value::optional", borrow)]
    account: Option<ObjectPath<'a>>,
    #[serde(with = "as_value::optional", borrow)]
    device: Option<ObjectPath<'a>>,
    #[serde(with = "as_value::optional", borrow)]
    id: Option<&'a str>,
    #[serde(with = "as_value::optional", borrow)]
    issuer: Option<&'a str>,
    #[serde(with = "as_value::optional", borrow)]
    name: Option<&'a str>,
    #[serde(with = "as_value::optional", borrow, rename = "type")]
    oath_type: Option<&'a str>,
    #[serde(with = "as_value::optional")]
    touch: Option<bool>,
    #[serde(with = "as_value::optional", borrow)]
    code: Option<&'a str>,
    #[serde(with = "as_value::optional")]
    valid_from: Option<u64>,
    #[serde(with = "as_value::optional")]
    valid_to: Option<u64>,
    #[serde(with = "as_value::optional")]
    pending: Option<bool>,
}

/// How a latency run treats each reply.
#[derive(Clone, Copy)]
enum Decode {
    /// Into [`EntryView`]s (the figure the table shows).
    Fields,
    /// Into generic dictionaries of owned values, as a client that does not know the keys.
    Generic,
    /// Not at all: the daemon and the bus alone.
    None,
}

/// `calls` GetCodes to `destination` over `connection`, one at a time: the time of each
/// in ms.
async fn timed_calls(
    connection: &Connection,
    destination: &str,
    options: &Dict,
    calls: usize,
    decode: Decode,
    entries: usize,
) -> zbus::Result<Vec<f64>> {
    let mut ms = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let reply = call_get_codes_of(connection, destination, options).await?;
        let body = reply.body();
        let got = match decode {
            Decode::Fields => {
                let views: Vec<EntryView<'_>> = body.deserialize()?;
                // Touch every field, as a launcher showing the rows would.
                views
                    .iter()
                    .filter(|v| {
                        let account = v.account.is_some()
                            && v.id.is_some()
                            && v.issuer.is_some()
                            && v.name.is_some()
                            && v.oath_type.is_some()
                            && v.touch.is_some()
                            // The code and its window are absent for touch and HOTP accounts.
                            && v.code.is_some() == v.valid_to.is_some()
                            && v.valid_from <= v.valid_to;
                        v.device.is_some() && (account || v.pending == Some(true))
                    })
                    .count()
            }
            Decode::Generic => body.deserialize::<Entries>()?.len(),
            Decode::None => entries,
        };
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if got != entries {
            return Err(zbus::Error::Failure(format!(
                "GetCodes returned {got} complete entries, then {entries}"
            )));
        }
        std::hint::black_box(body.len());
    }
    Ok(ms)
}

fn timestamp_options(timestamp: u64) -> Dict {
    let mut options = Dict::new();
    if timestamp != 0 {
        options.insert("timestamp".into(), value(timestamp));
    }
    options
}

async fn latency(calls: usize, warmup: usize, timestamp: u64, echo: bool) -> zbus::Result<()> {
    let connection = Connection::session().await?;
    let options = timestamp_options(timestamp);
    let mut entries = 0;
    for _ in 0..warmup.max(1) {
        entries = get_codes(&connection, &options).await?.len();
    }
    let mut ways = vec![
        (BUS_NAME, Decode::Fields, Vec::new()),
        (BUS_NAME, Decode::Generic, Vec::new()),
        (BUS_NAME, Decode::None, Vec::new()),
    ];
    if echo {
        ways.push((ECHO_NAME, Decode::Fields, Vec::new()));
        ways.push((ECHO_NAME, Decode::None, Vec::new()));
        for _ in 0..warmup.max(1) {
            timed_calls(&connection, ECHO_NAME, &options, 1, Decode::Fields, entries).await?;
        }
    }
    // One call of each way after the other, so that every way sees the same moments.
    for _ in 0..calls {
        for (destination, decode, times) in &mut ways {
            let timed = timed_calls(&connection, destination, &options, 1, *decode, entries);
            times.extend(timed.await?);
        }
    }
    for (_, _, times) in &mut ways {
        times.sort_by(f64::total_cmp);
    }
    let pick = |v: &[f64], q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)];
    let ms = &ways[0].2;
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    print!(
        "entries={entries} n={} p50_ms={:.3} p95_ms={:.3} p99_ms={:.3} mean_ms={mean:.3} max_ms={:.3} generic_p50_ms={:.3} raw_p50_ms={:.3} raw_p95_ms={:.3} raw_p99_ms={:.3} calls_total={}",
        ms.len(),
        pick(ms, 0.50),
        pick(ms, 0.95),
        pick(ms, 0.99),
        ms[ms.len() - 1],
        pick(&ways[1].2, 0.50),
        pick(&ways[2].2, 0.50),
        pick(&ways[2].2, 0.95),
        pick(&ways[2].2, 0.99),
        warmup.max(1) + 3 * calls,
    );
    if echo {
        print!(
            " echo_p50_ms={:.3} echo_raw_p50_ms={:.3} echo_calls_total={}",
            pick(&ways[3].2, 0.50),
            pick(&ways[4].2, 0.50),
            warmup.max(1) + 2 * calls,
        );
    }
    println!();
    Ok(())
}

/// Answer every method call on ECHO_NAME with the body of one real GetCodes reply.
async fn serve_echo(timestamp: u64) -> zbus::Result<()> {
    use futures_util::StreamExt;
    use zbus::message::Type;

    let connection = Connection::session().await?;
    let sample = call_get_codes(&connection, &timestamp_options(timestamp)).await?;
    let endian = zbus::zvariant::Endian::from(sample.primary_header().endian_sig());
    let body = sample.body();
    let bytes: &[u8] = body.data();
    let mut stream = zbus::MessageStream::from(&connection);
    connection.request_name(ECHO_NAME).await?;
    println!("echo: {} bytes", bytes.len());
    while let Some(message) = stream.next().await {
        let message = message?;
        let header = message.header();
        if header.message_type() != Type::MethodCall {
            continue;
        }
        // SAFETY: the bytes are the body of a reply received with signature aa{sv} in
        // `endian`, without file descriptors; a body starts 8-aligned in any message, so
        // its padding holds in the new one.
        let reply = unsafe {
            zbus::Message::method_return(&header)?
                .endian(endian)
                .build_raw_body(bytes, "aa{sv}", Vec::new())?
        };
        connection.send(&reply).await?;
    }
    Ok(())
}

/// What every soak client shares.
struct Soak {
    calls: u64,
    deadline: Instant,
    next: AtomicU64,
    done: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
    /// One delete + add pair at a time (both slots live on one key).
    writes: Mutex<()>,
    write_reader: String,
    secret: String,
}

impl Soak {
    fn record(&self, what: &str, result: zbus::Result<()>) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = result {
            let name = match &error {
                zbus::Error::MethodError(name, _, _) => format!("{what}: {name}"),
                other => format!("{what}: {other}"),
            };
            let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            *errors.entry(name).or_default() += 1;
        }
    }
}

async fn device_paths(connection: &Connection) -> zbus::Result<Vec<(OwnedObjectPath, String)>> {
    let reply = connection
        .call_method(
            Some(BUS_NAME),
            ROOT_PATH,
            Some(OBJECT_MANAGER),
            "GetManagedObjects",
            &(),
        )
        .await?;
    let objects: HashMap<OwnedObjectPath, HashMap<String, Dict>> = reply.body().deserialize()?;
    let mut devices = Vec::new();
    for (path, interfaces) in objects {
        if let Some(props) = interfaces.get(DEVICE) {
            let reader = props
                .get("Reader")
                .and_then(|v| String::try_from(v.clone()).ok())
                .unwrap_or_default();
            devices.push((path, reader));
        }
    }
    devices.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Ok(devices)
}

/// Delete Soak:slot<n> from the write key and add it back.
async fn rewrite_slot(soak: &Soak, connection: &Connection, slot: usize) {
    let _one_at_a_time = soak.writes.lock().await;
    let id = format!("Soak:slot{slot}");
    let device = match device_paths(connection).await {
        Ok(devices) => devices
            .into_iter()
            .find(|(_, reader)| reader.contains(&soak.write_reader))
            .map(|(path, _)| path),
        Err(e) => {
            soak.record("GetManagedObjects", Err(e));
            return;
        }
    };
    soak.record("GetManagedObjects", Ok(()));
    let Some(device) = device else {
        soak.record(
            "write",
            Err(zbus::Error::Failure("write key absent".into())),
        );
        return;
    };
    let mut options = Dict::new();
    options.insert("query".into(), value(id.as_str()));
    let account = match get_codes(connection, &options).await {
        Ok(entries) => entries.into_iter().find_map(|entry| {
            let on_device = entry
                .get("device")
                .and_then(|v| OwnedObjectPath::try_from(v.clone()).ok())
                .is_some_and(|p| p == device);
            let same_id = entry
                .get("id")
                .and_then(|v| String::try_from(v.clone()).ok())
                .is_some_and(|i| i == id);
            let path = entry
                .get("account")
                .and_then(|v| OwnedObjectPath::try_from(v.clone()).ok());
            path.filter(|_| on_device && same_id)
        }),
        Err(e) => {
            soak.record("GetCodes query", Err(e));
            return;
        }
    };
    soak.record("GetCodes query", Ok(()));
    if let Some(account) = account {
        let deleted = connection
            .call_method(
                Some(BUS_NAME),
                account.as_str(),
                Some(ACCOUNT),
                "Delete",
                &(),
            )
            .await
            .map(drop);
        soak.record("Delete", deleted);
    }
    let mut credential = Dict::new();
    credential.insert(
        "uri".into(),
        value(format!(
            "otpauth://totp/{id}?secret={}&issuer=Soak",
            soak.secret
        )),
    );
    let mut add_options = Dict::new();
    add_options.insert("device".into(), value(device));
    add_options.insert("overwrite".into(), value(true));
    let added = connection
        .call_method(
            Some(BUS_NAME),
            ROOT_PATH,
            Some(MANAGER),
            "AddAccount",
            &(credential, add_options),
        )
        .await
        .map(drop);
    soak.record("AddAccount", added);
}

async fn soak_client(soak: Arc<Soak>) -> zbus::Result<()> {
    let connection = Connection::session().await?;
    let all = Dict::new();
    let mut query = Dict::new();
    query.insert("query".into(), value("acct1"));
    let started_at = 2_000_000_000u64;
    while Instant::now() < soak.deadline {
        let i = soak.next.fetch_add(1, Ordering::Relaxed);
        if i >= soak.calls {
            break;
        }
        match i % 1000 {
            0 | 500 => {
                // A card write: look the account up, delete it, add it back (4 calls).
                soak.next.fetch_add(3, Ordering::Relaxed);
                rewrite_slot(&soak, &connection, (i / 500) as usize % SOAK_SLOTS).await;
            }
            250 | 750 => {
                // A time step nobody asked for yet: every key is read.
                let mut miss = Dict::new();
                miss.insert("timestamp".into(), value(started_at + i * 30));
                let result = get_codes(&connection, &miss).await.map(drop);
                soak.record("GetCodes miss", result);
            }
            n if n % 10 < 3 => {
                let result = get_codes(&connection, &query).await.map(drop);
                soak.record("GetCodes query", result);
            }
            n if n % 10 == 3 => {
                let result = connection
                    .call_method(
                        Some(BUS_NAME),
                        ROOT_PATH,
                        Some(PROPERTIES),
                        "Get",
                        &(MANAGER, "Version"),
                    )
                    .await
                    .map(drop);
                soak.record("Version", result);
            }
            _ => {
                let result = get_codes(&connection, &all).await.map(drop);
                soak.record("GetCodes", result);
            }
        }
    }
    Ok(())
}

async fn soak(
    calls: u64,
    clients: usize,
    max: Duration,
    write_reader: String,
    secret: String,
) -> zbus::Result<()> {
    let started = Instant::now();
    let soak = Arc::new(Soak {
        calls,
        deadline: started + max,
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: std::sync::Mutex::default(),
        writes: Mutex::new(()),
        write_reader,
        secret,
    });
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|_| tokio::spawn(soak_client(Arc::clone(&soak))))
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| zbus::Error::Failure(format!("soak client: {e}")))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = soak.done.load(Ordering::Relaxed);
    let errors = soak.errors.lock().unwrap_or_else(|e| e.into_inner());
    let failed: u64 = errors.values().sum();
    println!(
        "calls={done} seconds={elapsed:.1} per_second={:.0} clients={clients} errors={failed} stopped_by={}",
        done as f64 / elapsed,
        if started.elapsed() >= max {
            "time"
        } else {
            "count"
        }
    );
    for (name, count) in errors.iter() {
        println!("error {name} x{count}");
    }
    Ok(())
}
