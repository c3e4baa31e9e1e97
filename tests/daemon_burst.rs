//! 200 concurrent GetCodes → one CALCULATE ALL on the card, counted in pcscd's APDU log;
//! 200 concurrent refreshes asked while the key is busy → one relist (LIST + CALCULATE ALL).
//!
//! Its own test binary because pcscd's APDU log is switched on through the process
//! environment (`OATHBRIDGE_PCSCD_DEBUG=1`, read by the test bed), which must not leak into
//! the other daemon tests.
//!
//! Instead of waiting (up to 30 s) for a period boundary, the burst starts with a cold code
//! cache: AddAccount empties it, like the start of a new 30 s step does. Each CALCULATE
//! ALL carries its time step in the challenge, so the assertion is exact even if the burst
//! straddles a boundary: every step the burst touched is calculated exactly once.

mod common;
mod daemon_common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use daemon_common::*;
use zbus::zvariant::Value;

const BURST: usize = 200;
const CONNECTIONS: usize = 4;
/// The card's single CALCULATE takes this long (ms): long enough for a burst of calls to
/// arrive while the key is busy with one.
const SLOW_CALCULATE_MS: u64 = 3000;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The time steps of the CALCULATE ALL commands (`00 A4 00 01`, challenge tag 74) in
/// `log`, in order.
fn calculate_all_steps(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| line.split_once("APDU: ").map(|(_, apdu)| apdu))
        .filter(|apdu| apdu.starts_with("00 A4 00 01 "))
        .map(|apdu| {
            let bytes: Vec<u8> = apdu
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte in the APDU log"))
                .collect();
            // 00 A4 00 01 Lc 74 08 <8-byte big-endian step>
            assert_eq!(
                &bytes[5..7],
                &[0x74, 0x08],
                "unexpected CALCULATE ALL: {apdu}"
            );
            u64::from_be_bytes(bytes[7..15].try_into().unwrap())
        })
        .collect()
}

/// `BURST` concurrent GetCodes spread over `connections`, at `timestamp` (None: now), with
/// the option "refresh" if `refresh`.
fn burst(
    connections: &[Bus],
    timestamp: Option<u64>,
    refresh: bool,
) -> Vec<zbus::Result<Vec<Dict>>> {
    block_on_for(Duration::from_secs(60), "the GetCodes burst", async {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..BURST {
            let conn = connections[i % connections.len()].conn.clone();
            calls.spawn(async move {
                let mut options: std::collections::HashMap<&str, Value<'_>> =
                    std::collections::HashMap::new();
                if let Some(timestamp) = timestamp {
                    options.insert("timestamp", Value::from(timestamp));
                }
                if refresh {
                    options.insert("refresh", Value::from(true));
                    // Behind the slow CALCULATE: more than the default 3 s.
                    options.insert("wait_ms", Value::from(20_000u32));
                }
                let reply = conn
                    .call_method(
                        Some(BUS_NAME),
                        ROOT_PATH,
                        Some(MANAGER),
                        "GetCodes",
                        &(options,),
                    )
                    .await?;
                reply.body().deserialize::<Vec<Dict>>()
            });
        }
        let mut replies = Vec::with_capacity(BURST);
        while let Some(joined) = calls.join_next().await {
            replies.push(joined.expect("join a GetCodes task"));
        }
        replies
    })
}

/// Bytes as pcscd logs them: upper-case hex pairs separated by spaces.
fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn concurrent_get_codes_share_one_calculate_all() {
    // SAFETY: this binary has this single test, and nothing else runs yet: no other thread
    // reads or writes the environment while we set it.
    unsafe { std::env::set_var(common::PCSCD_DEBUG_ENV, "1") };
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &["--latency", &format!("calculate={SLOW_CALCULATE_MS}")]);
    bed.start_dbus();
    let bus = Bus::connect(&bed);
    let _daemon = Daemon::start_with_devices(&bed, &bus, &[], 1);
    let log_path = bed.dir().join("pcscd.log");
    let read_log =
        || String::from_utf8_lossy(&std::fs::read(&log_path).expect("read pcscd.log")).into_owned();
    assert!(
        read_log().contains("APDU: 00 A4 04 00"),
        "pcscd does not log APDUs (OATHBRIDGE_PCSCD_DEBUG=1 ignored?)"
    );

    let mut first_account = String::new();
    for i in 0..5 {
        let added = bus
            .add_account(
                &[
                    ("name", Value::from(format!("burst{i}"))),
                    ("issuer", Value::from("Burst")),
                    ("secret", Value::from(SEED_SHA1.to_vec())),
                    ("digits", Value::from(if i % 2 == 0 { 6u32 } else { 8u32 })),
                ],
                &[],
            )
            .unwrap_or_else(|e| panic!("AddAccount failed: {e:?}"));
        first_account = added[0].to_string();
    }
    // The last AddAccount emptied the code cache; the log so far is not ours.
    let offset = read_log().len();

    let connections: Vec<Bus> = (0..CONNECTIONS).map(|_| Bus::connect(&bed)).collect();
    let started = unix_now();
    let replies = burst(&connections, None, false);
    let finished = unix_now();

    let mut codes_by_step: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for reply in replies {
        let entries = reply.unwrap_or_else(|e| panic!("GetCodes in the burst failed: {e}"));
        assert_eq!(entries.len(), 5, "{entries:?}");
        let mut codes: Vec<String> = entries
            .iter()
            .map(|e| format!("{}={}", get_str(e, "id"), get_str(e, "code")))
            .collect();
        codes.sort();
        let step = get_u64(&entries[0], "valid_from") / 30;
        let seen = codes_by_step.entry(step).or_insert_with(|| codes.clone());
        assert_eq!(*seen, codes, "two answers for the same step differ");
    }

    // A marker after each burst: a CALCULATE at t = 30 * step + 29 (its challenge is `step`);
    // once it is in the log, everything the burst sent is too. The log since `offset`, up
    // to the marker.
    let log_until_marker = |offset: usize, step: u64| -> String {
        bus.call(&first_account, ACCOUNT, "Calculate", &(30 * step + 29,))
            .unwrap_or_else(|e| panic!("marker Calculate failed: {e:?}"));
        let marker = format!("74 08 {}", hex_bytes(&step.to_be_bytes()));
        wait_until(WAIT, "the marker APDU in pcscd.log", || {
            let log = read_log();
            let tail = &log[offset..];
            tail.find(&marker).map(|end| tail[..end].to_owned())
        })
    };
    let burst_log = log_until_marker(offset, 1);

    let steps = calculate_all_steps(&burst_log);
    let mut per_step: BTreeMap<u64, usize> = BTreeMap::new();
    for step in &steps {
        *per_step.entry(*step).or_default() += 1;
    }
    let window = started / 30..=finished / 30;
    assert!(
        per_step.keys().all(|s| window.contains(s)),
        "CALCULATE ALL for steps {per_step:?} outside the burst's steps {window:?}"
    );
    assert!(
        per_step.values().all(|n| *n == 1),
        "{BURST} concurrent GetCodes sent {} CALCULATE ALL (per step: {per_step:?}); \
         expected one per 30 s step",
        steps.len()
    );
    assert_eq!(
        per_step.keys().copied().collect::<Vec<_>>(),
        codes_by_step.keys().copied().collect::<Vec<_>>(),
        "every step answered was calculated exactly once"
    );
    if started / 30 == finished / 30 {
        assert_eq!(
            steps.len(),
            1,
            "the burst fell in one step: exactly one CALCULATE ALL"
        );
    }

    // The same with an explicit time: one CALCULATE ALL for its step, and a second burst
    // at another second of the same step is served entirely from the cache.
    let offset = read_log().len();
    let at: u64 = 1_699_999_985; // 5 s into a step, so at + 10 is the same step
    for second in [at, at + 10] {
        let replies = burst(&connections, Some(second), false);
        for reply in replies {
            let entries = reply.unwrap_or_else(|e| panic!("GetCodes(timestamp) failed: {e}"));
            assert_eq!(entries.len(), 5, "{entries:?}");
            assert_eq!(get_u64(&entries[0], "valid_from"), at - at % 30);
        }
    }
    let burst_log = log_until_marker(offset, 2);
    assert_eq!(
        calculate_all_steps(&burst_log),
        vec![at / 30],
        "{} concurrent GetCodes at one explicit time, twice: exactly one CALCULATE ALL",
        2 * BURST
    );

    // Past and future steps (`--at`, `--count`) are kept the same way, up to the cache's
    // bound: asked twice, each step is calculated once.
    let offset = read_log().len();
    let steps: Vec<u64> = (0..oathbridge::core::cache::CodeCache::CAPACITY as u64)
        .map(|i| 1_600_000_000 + i * 30 * 1000)
        .collect();
    for _ in 0..2 {
        for at in &steps {
            let entries = bus.get_codes(&[("timestamp", Value::from(*at))]);
            assert_eq!(get_u64(&entries[0], "valid_from"), at - at % 30);
        }
    }
    let walk_log = log_until_marker(offset, 3);
    assert_eq!(
        calculate_all_steps(&walk_log),
        steps.iter().map(|at| at / 30).collect::<Vec<_>>(),
        "{} steps asked twice: one CALCULATE ALL each",
        steps.len()
    );

    // Refreshes (read the key again even though the step is cached) share card exchanges
    // too: a relist answers every refresh asked before it started. The key is kept busy
    // with a slow CALCULATE (`--latency calculate`) while the burst arrives, so every
    // refresh is asked before the first relist starts: exactly one for all of them.
    let offset = read_log().len();
    let at: u64 = 1_750_000_000;
    let busy = {
        let (conn, account) = (connections[0].conn.clone(), first_account.clone());
        std::thread::spawn(move || {
            block_on_for(WAIT, "the slow Calculate", async {
                conn.call_method(
                    Some(BUS_NAME),
                    account.as_str(),
                    Some(ACCOUNT),
                    "Calculate",
                    &(179u64,),
                )
                .await
                .map(|_| ())
            })
        })
    };
    // The key is busy once pcscd has passed the CALCULATE (t = 179: step 5) to the card.
    wait_until(WAIT, "the slow CALCULATE in pcscd.log", || {
        read_log()[offset..]
            .contains("74 08 00 00 00 00 00 00 00 05")
            .then_some(())
    });
    for reply in burst(&connections, Some(at), true) {
        let entries = reply.unwrap_or_else(|e| panic!("GetCodes(refresh) failed: {e}"));
        assert_eq!(entries.len(), 5, "{entries:?}");
    }
    busy.join()
        .expect("the slow Calculate's thread")
        .unwrap_or_else(|e| panic!("the slow Calculate failed: {e:?}"));
    let refresh_log = log_until_marker(offset, 4);
    let lists = refresh_log.matches("APDU: 00 A1 00 00").count();
    let calculate_all = calculate_all_steps(&refresh_log);
    assert_eq!(
        (lists, calculate_all),
        (1, vec![at / 30]),
        "{BURST} concurrent refreshes asked while the key was busy: LISTs and the steps of \
         the CALCULATE ALLs; expected one relist for all"
    );
}
