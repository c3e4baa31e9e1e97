//! The daemon's start on a key with accounts, counted in pcscd's APDU log: it identifies
//! the key and lists it in the same transaction (one SELECT, then LIST + CALCULATE ALL,
//! whose codes it keeps), and the call that activated it (`oathbridge code`, through D-Bus
//! activation) is answered without another card exchange. A GetCodes "refresh" reads the
//! key again in one transaction, and the step it read is then cached.
//!
//! Its own test binary: pcscd's APDU log is switched on through the process environment.

mod common;
mod daemon_common;

use common::cli::run_cli;
use daemon_common::*;

#[test]
fn start_lists_once_and_first_get_codes_sends_nothing() {
    // SAFETY: this binary has this single test, and nothing else runs yet.
    unsafe { std::env::set_var(common::PCSCD_DEBUG_ENV, "1") };
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &["--apdu-latency-ms", "3"]);
    let uris = "otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub
otpauth://totp/Google:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Google
otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZ&issuer=Amazon%20Web%20Services
otpauth://totp/Example:sha256?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA&algorithm=SHA256&digits=8
otpauth://totp/Example:slow?secret=KRSXG5CTMVRXEZLU&period=60
".to_string();
    let added = run_cli(&bed, &["--direct", "add", "--from", "-"], &uris);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let offset = bed.pcscd_log_len();

    // Activated by the CLI's first call, as on a desktop.
    let services = bed.dir().join("services");
    std::fs::create_dir_all(&services).expect("mkdir services");
    std::fs::write(
        services.join(format!("{BUS_NAME}.service")),
        format!(
            "[D-BUS Service]\nName={BUS_NAME}\nExec={} daemon\n",
            env!("CARGO_BIN_EXE_oathbridge")
        ),
    )
    .expect("write the service file");
    bed.start_dbus_with_services(&services);
    let bus = Bus::connect(&bed);
    assert_eq!(
        bus.owner_pid(BUS_NAME),
        None,
        "not running before the CLI call"
    );
    let code = run_cli(&bed, &["code"], "");
    assert_eq!(code.code, 0, "{}", code.stderr);
    assert_eq!(code.stdout.lines().count(), 5, "{}", code.stdout);
    assert!(
        bus.owner_pid(BUS_NAME).is_some(),
        "the CLI activated the daemon"
    );
    let entries = bus.get_codes(&[]);
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert!(
        entries.iter().all(|e| !get_str(e, "code").is_empty()),
        "{entries:?}"
    );

    let apdus = bed.apdus_since(offset);
    let count = |prefix: &str| apdus.iter().filter(|a| a.starts_with(prefix)).count();
    let selects = count("00 A4 04 00");
    let lists = count("00 A1 00 00");
    let calculate_all = count("00 A4 00 01");
    let calculate = count("00 A2 00");
    // A 30 s boundary between the listing and GetCodes legitimately needs a second
    // CALCULATE ALL (and its SELECT): allow exactly that, and only when the two CALCULATE
    // ALLs carry different challenges (time steps).
    let steps = entries
        .iter()
        .filter(|e| get_u64(e, "valid_to") - get_u64(e, "valid_from") == 30)
        .map(|e| get_u64(e, "valid_from") / 30)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(steps.len(), 1, "{entries:?}");
    let challenges = apdus
        .iter()
        .filter(|a| a.starts_with("00 A4 00 01"))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        challenges.len(),
        calculate_all,
        "two CALCULATE ALLs for the same time step: {apdus:#?}"
    );
    let crossed = usize::from(calculate_all == 2);
    assert_eq!(
        (selects, lists, calculate_all - crossed, calculate - crossed),
        (1 + crossed, 1, 1, 1),
        "expected one SELECT that identifies the key and opens its listing (LIST + CALCULATE \
         ALL + CALCULATE of the 60 s account), and nothing for the first GetCodes; \
         got {apdus:#?}"
    );

    // GetCodes "refresh" (a lookup that found nothing, in the CLI): the listing and the codes
    // read again in one transaction even though the step is cached, then served from the
    // cache. A fixed time far from now: no boundary to allow for.
    let at = 1_800_000_000u64;
    let offset = bed.pcscd_log_len();
    let refreshed = bus.get_codes(&[("timestamp", at.into()), ("refresh", true.into())]);
    assert_eq!(refreshed.len(), 5, "{refreshed:?}");
    let again = bus.get_codes(&[("timestamp", at.into())]);
    assert_eq!(again, refreshed, "the refreshed step is cached");
    let apdus = bed.apdus_since(offset);
    let count = |prefix: &str| apdus.iter().filter(|a| a.starts_with(prefix)).count();
    assert_eq!(
        (
            count("00 A4 04 00"),
            count("00 A1 00 00"),
            count("00 A4 00 01"),
            count("00 A2 00")
        ),
        (1, 1, 1, 1),
        "a refresh: SELECT, LIST, CALCULATE ALL and the 60 s account's CALCULATE, once; \
         the next call nothing; got {apdus:#?}"
    );

    let pid = bus
        .owner_pid(BUS_NAME)
        .expect("the activated daemon owns the name");
    common::proc::stop_pid(pid, std::time::Duration::from_secs(3));
}
