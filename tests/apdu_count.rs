//! The physical minimum on the card, counted in pcscd's APDU log: `oathbridge --direct
//! code` sends SELECT + CALCULATE ALL and nothing else (discovery reuses the SELECT).

mod common;

use common::cli::run_cli;

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
    let offset = bed.pcscd_log_len();
    let run = run_cli(&bed, &["--direct", "code", "--at", "59"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("94287082"), "{}", run.stdout);
    let apdus = bed.apdus_since(offset);
    let kinds: Vec<&str> = apdus.iter().map(|a| &a[..a.len().min(11)]).collect();
    assert_eq!(
        kinds,
        ["00 A4 04 00", "00 A4 00 01"],
        "expected SELECT + CALCULATE ALL, got {apdus:#?}"
    );
}
