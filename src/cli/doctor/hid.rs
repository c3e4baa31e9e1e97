//! The OATH keys reachable over HID: the Nitrokey 3 Secrets App over CTAPHID and YubiKey
//! OTP slots, found by hidraw enumeration (no device is opened) and on `--hid-socket`
//! bridges (asked for their description only).

use super::Check;
use crate::transport::hid::discovery::{HidKey, HidKind};

/// What each kind offers, as the check line says it.
fn offers(kind: HidKind) -> &'static str {
    match kind {
        HidKind::SecretsApp => "Secrets App over CTAPHID",
        HidKind::YubiOtp => "OTP slots",
    }
}

/// Check 2c: the keys found over HID. None found is fine (most keys are reached over
/// PC/SC); the line says what would have been found.
pub fn hid_keys_check(keys: &[HidKey]) -> Check {
    if keys.is_empty() {
        return Check::ok(
            "hid",
            "no OATH key over HID (looked for the Nitrokey 3 Secrets App over CTAPHID and \
             YubiKey OTP slots)",
        );
    }
    let found: Vec<String> = keys
        .iter()
        .map(|key| format!("{}: {}", key.label(), offers(key.kind)))
        .collect();
    Check::ok("hid", found.join(", ")).details(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::hid::discovery::HidPath;

    #[test]
    fn names_each_key_and_what_it_offers() {
        let none = hid_keys_check(&[]);
        assert_eq!(
            none.line(),
            "ok    hid: no OATH key over HID (looked for the Nitrokey 3 Secrets App over \
             CTAPHID and YubiKey OTP slots)"
        );
        let key = HidKey {
            path: HidPath::Bridge("/run/nk3.sock".into()),
            kind: HidKind::SecretsApp,
            product: "Nitrokey 3".into(),
            serial: None,
        };
        let found = hid_keys_check(&[key]);
        assert_eq!(
            found.line(),
            "ok    hid: Nitrokey 3 (HID /run/nk3.sock): Secrets App over CTAPHID"
        );
    }
}
