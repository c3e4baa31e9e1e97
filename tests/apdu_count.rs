//! The physical minimum on the card, counted in pcscd's APDU log: `oathbridge --direct
//! code` sends SELECT + CALCULATE ALL and nothing else (discovery reuses the SELECT).

mod common;

use common::cli::run_cli;

/// The command APDUs pcscd logged after byte `offset` of its log.
fn apdus_since(bed: &common::TestBed, offset: usize) -> Vec<String> {
    let log = std::fs::read(bed.dir().join("pcscd.log")).expect("read pcscd.log");
    String::from_utf8_lossy(&log[offset.min(log.len())..])
        .lines()
        .filter_map(|line| {
            line.split_once("APDU: ")
                .map(|(_, apdu)| apdu.trim().to_owned())
        })
        .collect()
}

fn log_len(bed: &common::TestBed) -> usize {
    std::fs::metadata(bed.dir().join("pcscd.log")).map_or(0, |m| m.len() as usize)
}

#[test]
fn direct_code_sends_select_and_calculate_all_only() {
    // SAFETY: this binary has this single test, and nothing else runs yet: no other thread
    // reads or writes the environment while we set it.
    unsafe { std::env::set_var(common::PCSCD_DEBUG_ENV, "1") };
    let mut bed = common::TestBed::start();
    bed.attach_card(0, &[]);
    let added = run_cli(
        &bed,
        &[
            "--direct",
            "add",
            "Count:alice",
            "--digits",
            "8",
            "--from",
            "-",
        ],
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let offset = log_len(&bed);
    let run = run_cli(&bed, &["--direct", "code", "--at", "59"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("94287082"), "{}", run.stdout);
    let apdus = apdus_since(&bed, offset);
    let kinds: Vec<&str> = apdus.iter().map(|a| &a[..a.len().min(11)]).collect();
    assert_eq!(
        kinds,
        ["00 A4 04 00", "00 A4 00 01"],
        "expected SELECT + CALCULATE ALL, got {apdus:#?}"
    );
}
