//! Write a plan onto one key, verify it with LIST, and on any failure delete what this run
//! added, then say exactly what state the key is in. Never parses; never plans.

use thiserror::Error;
use tracing::{debug, info};

use super::plan::{KeyPlan, Planned};
use crate::oath::{Credential, OathError, Session, Transport, TransportError};

/// A write that failed midway; `state` says what is on the key now, in plain words.
#[derive(Debug, Error)]
#[error("{cause}; {state}")]
pub struct ApplyError {
    pub cause: OathError,
    pub state: String,
}

/// What one key holds from this run: ids added (removable by [`rollback`]), ids that
/// replaced an account that was there before (`--force`; not restorable, seeds never leave
/// a key), and ids deleted to be replaced on a key that cannot overwrite (Nitrokey 3,
/// CanoKey) whose new PUT then failed: neither the old nor the new account is there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub credentials: Vec<Credential>,
    pub added: Vec<Vec<u8>>,
    pub replaced: Vec<Vec<u8>>,
    pub deleted: Vec<Vec<u8>>,
}

/// PUT every planned write in order, then LIST once to check each id is there.
/// On failure, this run's additions are deleted again ([`ApplyError::state`] tells how far
/// that got). The session must be unlocked and inside one transaction.
pub fn apply<T: Transport>(
    session: &mut Session<T>,
    accounts: &[Planned],
    plan: &KeyPlan,
) -> Result<Written, ApplyError> {
    let mut written = Written::default();
    let result = write_all(session, accounts, plan, &mut written);
    match result {
        Ok(()) => Ok(written),
        Err(cause) => {
            // The caller reports the error and the key's state; this is for the log only.
            info!(error = %cause, added = written.added.len(), "import failed midway; rolling back");
            let state = rollback(session, &written, &cause);
            Err(ApplyError { cause, state })
        }
    }
}

fn write_all<T: Transport>(
    session: &mut Session<T>,
    accounts: &[Planned],
    plan: &KeyPlan,
    written: &mut Written,
) -> Result<(), OathError> {
    for write in &plan.writes {
        let Some(account) = accounts.get(write.index) else {
            return Err(OathError::Malformed("import plan out of range".into()));
        };
        // A key that cannot overwrite gets DELETE, then PUT: done here, so a failing PUT
        // is known to have left the id deleted.
        let delete_first = write.replaces && !session.quirks().overwrite;
        if delete_first {
            session.delete_raw(&account.data.id.to_bytes())?;
            written.deleted.push(account.data.id.to_bytes());
        }
        let credential = session.put_planned(&account.data, write.replaces && !delete_first)?;
        if delete_first {
            written.deleted.pop();
        }
        if write.replaces {
            written.replaced.push(credential.raw_id.clone());
        } else {
            written.added.push(credential.raw_id.clone());
        }
        written.credentials.push(credential);
    }
    let listed = session.list()?;
    for credential in &written.credentials {
        if !listed.iter().any(|c| c.raw_id == credential.raw_id) {
            return Err(OathError::Malformed(format!(
                "the key does not list {} after writing it",
                credential.id_string()
            )));
        }
    }
    debug!(
        count = written.credentials.len(),
        "import written and verified"
    );
    Ok(())
}

/// Delete what this run added; returns a sentence describing the key's state afterwards.
pub fn rollback<T: Transport>(
    session: &mut Session<T>,
    written: &Written,
    cause: &OathError,
) -> String {
    let removed = matches!(cause, OathError::Transport(TransportError::CardRemoved));
    let mut left = Vec::new();
    for raw_id in &written.added {
        if removed || session.delete_raw(raw_id).is_err() {
            left.push(String::from_utf8_lossy(raw_id).into_owned());
        }
    }
    let replaced: Vec<String> = written
        .replaced
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .collect();
    let deleted: Vec<String> = written
        .deleted
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .collect();
    describe_state(
        &State {
            left: &left,
            replaced: &replaced,
            deleted: &deleted,
            added: written.added.len(),
        },
        removed,
    )
}

/// What a failed run left on the key, as ids.
struct State<'a> {
    left: &'a [String],
    replaced: &'a [String],
    deleted: &'a [String],
    added: usize,
}

fn describe_state(state: &State, removed: bool) -> String {
    let mut text = if state.left.is_empty() {
        if state.added == 0 && state.replaced.is_empty() && state.deleted.is_empty() {
            "nothing was written to the key".to_owned()
        } else {
            format!(
                "the {} account(s) this run added were removed again",
                state.added
            )
        }
    } else {
        let when = if removed { " once the key is back" } else { "" };
        format!(
            "these accounts from this run are still on the key and could not be removed: {} \
             (delete them with 'oathbridge delete ID --force'{when})",
            state.left.join(", ")
        )
    };
    if !state.replaced.is_empty() {
        text.push_str(&format!(
            "; replaced with --force before the failure (the old seeds are gone): {}",
            state.replaced.join(", ")
        ));
    }
    if !state.deleted.is_empty() {
        text.push_str(&format!(
            "; deleted to be replaced, then writing the new one failed (the old seed is \
             gone; add it again): {}",
            state.deleted.join(", ")
        ));
    }
    if state.left.is_empty() && state.replaced.is_empty() && state.deleted.is_empty() {
        text.push_str("; the key is as it was before");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{Card, CardConfig, EmulatorTransport};
    use crate::import::Location;
    use crate::import::plan::tests::accounts as planned;
    use crate::import::plan::{KeyView, plan_key};
    use crate::oath::CredentialData;
    use std::sync::{Arc, Mutex};

    fn session(card: &Arc<Mutex<Card>>) -> Session<EmulatorTransport> {
        Session::open(EmulatorTransport::from_shared(card.clone()), None).expect("select")
    }

    /// The plan for `accounts` on the key behind `session`, as listed now.
    fn plan_on(
        session: &mut Session<EmulatorTransport>,
        accounts: &[Planned],
        force: bool,
    ) -> KeyPlan {
        let existing = session.list().expect("list");
        let quirks = session.quirks().clone();
        let key = KeyView {
            label: "test",
            quirks: &quirks,
            existing: &existing,
        };
        plan_key(accounts, &key, force).expect("plan")
    }

    #[test]
    fn a_card_removed_midway_is_described_and_nothing_else_is_claimed() {
        let card = Arc::new(Mutex::new(Card::new(CardConfig::default())));
        let accounts = planned(&["a", "b", "c"]);
        let mut session = session(&card);
        let plan = plan_on(&mut session, &accounts, false);
        // SELECT was the first APDU; answer two PUTs, then the card is gone.
        card.lock()
            .expect("card")
            .faults()
            .update(|f| f.power_loss_after = Some(2));
        let error = apply(&mut session, &accounts, &plan).expect_err("card removed");
        assert!(
            error.state.contains("Example:a, Example:b"),
            "{}",
            error.state
        );
    }

    #[test]
    fn a_refused_put_rolls_back_the_earlier_ones() {
        let card = Arc::new(Mutex::new(Card::new(CardConfig::default())));
        let mut accounts = planned(&["a", "b"]);
        // The card refuses this one (a key shorter than the PUT encoding allows is fine, so
        // use a name the card rejects: longer than 64 bytes).
        accounts.push(Planned {
            at: Location::source("test").at_entry(3),
            data: CredentialData::totp(None, &"x".repeat(70), b"handed-case-key-0003"),
        });
        let mut session = session(&card);
        let plan = KeyPlan {
            writes: (0..3)
                .map(|index| super::super::plan::Write {
                    index,
                    replaces: false,
                })
                .collect(),
        };
        let error = apply(&mut session, &accounts, &plan).expect_err("refused");
        assert!(
            error.state.contains("removed again") && error.state.contains("as it was"),
            "{}",
            error.state
        );
        assert!(session.list().expect("list").is_empty());
    }

    #[test]
    fn a_replacement_deleted_on_a_key_that_cannot_overwrite_is_named_when_its_put_fails() {
        let card = Arc::new(Mutex::new(Card::new(CardConfig {
            profile: crate::emulator::Profile::CanoKey,
            ..CardConfig::default()
        })));
        let mut session = session(&card);
        let old = planned(&["kept"]);
        session.put_planned(&old[0].data, false).expect("put");
        let accounts = planned(&["kept"]);
        assert!(
            !session.quirks().overwrite,
            "a CanoKey deletes before it replaces"
        );
        let plan = plan_on(&mut session, &accounts, true);
        // The DELETE is answered, then the key is gone before the PUT.
        card.lock()
            .expect("card")
            .faults()
            .update(|f| f.power_loss_after = Some(1));
        let error = apply(&mut session, &accounts, &plan).expect_err("card removed");
        assert!(
            error.state.contains("deleted to be replaced") && error.state.contains("Example:kept"),
            "{}",
            error.state
        );
        assert!(!error.state.contains("as it was"), "{}", error.state);
    }

    #[test]
    fn with_force_new_accounts_go_first_so_a_key_lost_midway_keeps_old_seeds() {
        let card = Arc::new(Mutex::new(Card::new(CardConfig::default())));
        let mut session = session(&card);
        let old = planned(&["kept"]);
        session
            .put_planned(&old[0].data, false)
            .expect("put the old account");
        // The replacement comes first in the input, a new account second.
        let mut accounts = planned(&["kept", "fresh"]);
        accounts[0].data.secret = zeroize::Zeroizing::new(b"handed-case-key-0002".to_vec());
        let plan = plan_on(&mut session, &accounts, true);
        // One PUT is answered, then the key is gone.
        card.lock()
            .expect("card")
            .faults()
            .update(|f| f.power_loss_after = Some(1));
        let error = apply(&mut session, &accounts, &plan).expect_err("card removed");
        assert!(
            !error.state.contains("replaced"),
            "an old seed was overwritten: {}",
            error.state
        );
        card.lock().expect("card").replug();
        let mut session = self::session(&card);
        let listed = session.list().expect("list");
        let kept = listed
            .iter()
            .find(|c| c.id_string() == "Example:kept")
            .expect("kept is listed");
        let code = session.calculate(kept, 1_700_000_000).expect("calculate");
        assert_eq!(code.value, "490998", "the old seed's code");
    }
}
