//! Validate every account against every target key before anything is written: the id reads
//! back the same, no id repeats inside the import, ids already on the key (without
//! `--force`), capacity, id length, algorithm, touch and Steam support. Every problem is
//! reported, one line each; a plan with problems writes nothing.

use std::collections::HashMap;
use std::fmt;

use super::Location;
use crate::oath::{Credential, CredentialData, Quirks};
use crate::otp::{HashAlgorithm, OathType, STEAM_ISSUER};

/// One account ready to write, with where it came from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub at: Location,
    pub data: CredentialData,
}

impl Planned {
    fn id(&self) -> String {
        self.data.id.to_string()
    }
}

/// Whether a problem is with the input (exit 2) or beyond what the key can do (exit 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Input,
    Unsupported,
}

/// One line of a refused plan. The text names the place and the id, never a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub text: String,
}

/// Every problem of a refused plan (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// [`ProblemKind::Input`] when any problem is with the input, else `Unsupported`.
    pub fn kind(&self) -> ProblemKind {
        if self.0.iter().any(|p| p.kind == ProblemKind::Input) {
            ProblemKind::Input
        } else {
            ProblemKind::Unsupported
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.0.iter().map(|p| p.text.as_str()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Problems {}

fn problem(kind: ProblemKind, text: String) -> Problem {
    Problem { kind, text }
}

/// Key-independent checks, and ids that repeat inside the import (both are refused: which
/// of two seeds is meant cannot be guessed).
pub fn prepare(accounts: Vec<Planned>) -> Result<Vec<Planned>, Problems> {
    let (accounts, problems) = prepare_partial(accounts);
    if problems.is_empty() {
        Ok(accounts)
    } else {
        Err(Problems(problems))
    }
}

/// [`prepare`], keeping the accounts that passed: planning those on the keys as well lets
/// one refusal name every problem, the input's and the keys' together.
pub fn prepare_partial(accounts: Vec<Planned>) -> (Vec<Planned>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut passed = vec![true; accounts.len()];
    let mut first_seen: HashMap<Vec<u8>, &Location> = HashMap::new();
    for (index, account) in accounts.iter().enumerate() {
        if let Err(error) = account.data.validate() {
            problems.push(problem(
                ProblemKind::Input,
                format!("{}: {error}", account.at),
            ));
            passed[index] = false;
            continue;
        }
        if account.data.id.issuer.as_deref() == Some(STEAM_ISSUER)
            && account.data.oath_type == OathType::Totp
            && (account.data.id.period != 30 || account.data.algorithm != HashAlgorithm::Sha1)
        {
            problems.push(problem(
                ProblemKind::Input,
                format!(
                    "{}: {}: a Steam account must be SHA1 with a 30 s period",
                    account.at,
                    account.id()
                ),
            ));
            passed[index] = false;
        }
        match first_seen.get(&account.data.id.to_bytes()) {
            Some(first) => {
                problems.push(problem(
                    ProblemKind::Input,
                    format!(
                        "{}: {}: the same id as {first}; an id can be added once",
                        account.at,
                        account.id()
                    ),
                ));
                passed[index] = false;
            }
            None => {
                first_seen.insert(account.data.id.to_bytes(), &account.at);
            }
        }
    }
    let mut passed = passed.into_iter();
    let accounts = accounts
        .into_iter()
        .filter(|_| passed.next().unwrap_or(false))
        .collect();
    (accounts, problems)
}

/// What the plan needs to know about one key: a label for messages, its quirks and the
/// accounts on it now.
pub struct KeyView<'a> {
    pub label: &'a str,
    pub quirks: &'a Quirks,
    pub existing: &'a [Credential],
}

/// One PUT: `index` into the planned accounts; `replaces` when the id exists (`--force`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub index: usize,
    pub replaces: bool,
}

/// The writes for one key: new accounts first, then replacements (each in input order), so a
/// key that runs out of room or goes away midway fails before an old seed is overwritten.
/// On a key whose DELETE waits for a touch (Nitrokey 3, whose capacity is known and
/// planned) replacements come first instead: a touch that does not come then fails the run
/// before anything was added, rather than leaving additions that only a touch can undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPlan {
    pub writes: Vec<Write>,
}

/// Plan `accounts` (already [`prepare`]d) onto one key.
pub fn plan_key(accounts: &[Planned], key: &KeyView, force: bool) -> Result<KeyPlan, Problems> {
    let mut problems = Vec::new();
    let mut writes = Vec::new();
    let quirks = key.quirks;
    for (index, account) in accounts.iter().enumerate() {
        let data = &account.data;
        let place = format!("key {}: {}: {}", key.label, account.at, account.id());
        let mut refuse = |kind, why: &str| problems.push(problem(kind, format!("{place}: {why}")));
        // Too long for this key is "name too long" (exit 2), as on every other path.
        let id_len = data.id.to_bytes().len();
        if id_len > quirks.max_id_len {
            refuse(
                ProblemKind::Input,
                &format!(
                    "the id is {id_len} bytes; this key stores at most {}",
                    quirks.max_id_len
                ),
            );
        }
        if let Some(max) = quirks.max_key_len {
            let key_len = data.key_for_card().len();
            if key_len > max {
                refuse(
                    ProblemKind::Unsupported,
                    &format!(
                        "secret: {key_len} bytes for {}; this key stores at most {max}",
                        data.algorithm.name()
                    ),
                );
            }
        }
        if data.algorithm == HashAlgorithm::Sha512 && !quirks.sha512 {
            refuse(
                ProblemKind::Unsupported,
                "this key does not support SHA-512",
            );
        }
        if data.touch && !quirks.touch {
            refuse(
                ProblemKind::Unsupported,
                "this key does not support require-touch accounts",
            );
        }
        if is_steam(data) && !quirks.steam() {
            refuse(
                ProblemKind::Unsupported,
                "this key cannot compute Steam codes (no full or raw HMAC response)",
            );
        }
        let replaces = key.existing.iter().any(|c| c.raw_id == data.id.to_bytes());
        if replaces && !force {
            refuse(
                ProblemKind::Input,
                "already on the key (use --force to replace it)",
            );
        }
        writes.push(Write { index, replaces });
    }
    let new = writes.iter().filter(|w| !w.replaces).count();
    if let Some(capacity) = quirks.capacity
        && key.existing.len() + new > capacity
    {
        problems.push(problem(
            ProblemKind::Unsupported,
            format!(
                "key {}: {new} new accounts do not fit: {} of {capacity} places are used",
                key.label,
                key.existing.len()
            ),
        ));
    }
    if problems.is_empty() {
        // A stable sort: input order within each group.
        let replacements_first = quirks.delete_needs_touch && !quirks.overwrite;
        writes.sort_by_key(|write| write.replaces != replacements_first);
        Ok(KeyPlan { writes })
    } else {
        Err(Problems(problems))
    }
}

/// Steam accounts as Yubico's tools mark them.
pub fn is_steam(data: &CredentialData) -> bool {
    data.oath_type == OathType::Totp && data.id.issuer.as_deref() == Some(STEAM_ISSUER)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oath::{CredentialId, DeviceKind, Version};

    /// TOTP accounts `Example:<name>` with one test seed, prepared for planning.
    pub(crate) fn accounts(names: &[&str]) -> Vec<Planned> {
        let accounts = names
            .iter()
            .enumerate()
            .map(|(i, name)| Planned {
                at: Location::source("test").at_entry(i + 1),
                data: CredentialData::totp(Some("Example"), name, b"handed-case-key-0001"),
            })
            .collect();
        prepare(accounts).expect("valid")
    }

    fn order(kind: DeviceKind, version: Version) -> Vec<usize> {
        let quirks = Quirks::for_device(kind, version);
        let existing = vec![Credential {
            raw_id: b"Example:old".to_vec(),
            id: CredentialId::parse(b"Example:old", OathType::Totp),
            oath_type: OathType::Totp,
            algorithm: None,
            digits: None,
            touch: None,
        }];
        let key = KeyView {
            label: "k",
            quirks: &quirks,
            existing: &existing,
        };
        let plan = plan_key(&accounts(&["new", "old"]), &key, true).expect("plan");
        plan.writes.iter().map(|w| w.index).collect()
    }

    #[test]
    fn replacements_go_last_except_where_delete_waits_for_a_touch() {
        assert_eq!(order(DeviceKind::YubiKey, Version(5, 7, 2)), [0, 1]);
        assert_eq!(order(DeviceKind::CanoKey, Version(6, 0, 0)), [0, 1]);
        // Nitrokey 3: a touch that does not come fails before anything was added.
        assert_eq!(order(DeviceKind::Nitrokey3, Version(4, 15, 0)), [1, 0]);
    }

    #[test]
    fn id_limits_are_per_key() {
        let long = "n".repeat(100);
        let planned = accounts(&[&long]);
        for (kind, version, fits) in [
            (DeviceKind::Nitrokey3, Version(4, 15, 0), true),
            (DeviceKind::YubiKey, Version(5, 7, 2), false),
            (DeviceKind::CanoKey, Version(6, 0, 0), false),
        ] {
            let quirks = Quirks::for_device(kind, version);
            let key = KeyView {
                label: "k",
                quirks: &quirks,
                existing: &[],
            };
            let result = plan_key(&planned, &key, false);
            assert_eq!(result.is_ok(), fits, "{kind:?}: {result:?}");
            if let Err(problems) = result {
                assert_eq!(problems.kind(), ProblemKind::Input, "name too long: exit 2");
            }
        }
    }
}
