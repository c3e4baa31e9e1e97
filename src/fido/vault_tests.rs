use std::fs;

use super::*;
use crate::fido::soft::SoftAuthenticator;
use crate::oath::{CredentialData, Session};

fn soft(dir: &Path, name: &str) -> SoftAuthenticator {
    SoftAuthenticator::open(&dir.join(name)).unwrap()
}

fn seeded_clear_file(path: &Path) {
    let card = Arc::new(Mutex::new(
        Card::new(CardConfig::yubikey())
            .with_state_file(path)
            .unwrap(),
    ));
    let mut transport = crate::emulator::EmulatorTransport::from_shared(card.clone());
    let mut session = Session::open(&mut transport, None).unwrap();
    session.put(&seed("alice"), false).unwrap();
}

/// RFC 6238 appendix B's SHA-1 seed: 287082 at T = 59.
fn seed(name: &str) -> CredentialData {
    CredentialData::totp(None, name, b"12345678901234567890")
}

fn codes(card: Card) -> Vec<String> {
    let card = Arc::new(Mutex::new(card));
    let mut transport = crate::emulator::EmulatorTransport::from_shared(card);
    let mut session = Session::open(&mut transport, None).unwrap();
    session
        .calculate_all(59)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.code.map(|c| c.value))
        .collect()
}

#[test]
fn migrated_file_opens_with_the_same_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vk.json");
    seeded_clear_file(&path);
    let a = soft(dir.path(), "a.json");
    seal_existing(&path, &a, None, &mut |_| Ok(())).unwrap();
    assert!(is_sealed_file(&path));
    let before = fs::read(&path).unwrap();
    let opened = open(&path, &a, None).unwrap();
    assert_eq!(
        codes(card_from(&path, opened, CardConfig::yubikey()).unwrap()),
        vec!["287082"]
    );
    // Another authenticator does not know the credential; the file is untouched.
    let b = soft(dir.path(), "b.json");
    assert!(matches!(
        open(&path, &b, None),
        Err(VaultError::Fido(FidoError::CredentialNotFound))
    ));
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(matches!(
        seal_existing(&path, &a, None, &mut |_| Ok(())),
        Err(VaultError::AlreadySealed { .. })
    ));
}

#[test]
fn a_failure_before_the_rename_keeps_the_clear_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vk.json");
    seeded_clear_file(&path);
    let clear = fs::read(&path).unwrap();
    let a = soft(dir.path(), "a.json");
    let failed = seal_existing(&path, &a, None, &mut |step| match step {
        WriteStep::TempWritten => Err(std::io::Error::other("injected")),
        WriteStep::Renamed => Ok(()),
    });
    assert!(failed.is_err());
    assert_eq!(fs::read(&path).unwrap(), clear);
    // Only the two files: no temp left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    // After the rename, a failure leaves the complete sealed file.
    let _ = seal_existing(&path, &a, None, &mut |step| match step {
        WriteStep::Renamed => Err(std::io::Error::other("injected")),
        WriteStep::TempWritten => Ok(()),
    });
    assert!(open(&path, &a, None).is_ok());
}

#[test]
fn changes_are_sealed_again_and_lock_drops_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vk.sealed");
    let a: Arc<dyn HmacSecretAuthenticator> = Arc::new(soft(dir.path(), "a.json"));
    create(&path, a.as_ref(), None).unwrap();
    assert!(matches!(
        create(&path, a.as_ref(), None),
        Err(VaultError::Exists { .. })
    ));
    let key = SealedVirtualKey::load(&path, a.clone()).unwrap();
    assert!(key.card().is_none());
    key.unlock("").unwrap();
    {
        let card = key.card().unwrap();
        let mut transport = crate::emulator::EmulatorTransport::from_shared(card);
        let mut session = Session::open(&mut transport, None).unwrap();
        session.put(&seed("alice"), false).unwrap();
    }
    let bytes = fs::read(&path).unwrap();
    assert!(sealed::is_sealed(&bytes));
    assert!(!bytes.windows(5).any(|w| w == b"alice"));
    key.lock();
    assert!(!key.is_open());
    let opened = open(&path, a.as_ref(), None).unwrap();
    assert_eq!(
        codes(card_from(&path, opened, CardConfig::yubikey()).unwrap()),
        vec!["287082"]
    );
    assert_eq!(key.stand_in().oath_salt(), {
        let opened = open(&path, a.as_ref(), None).unwrap();
        opened.header.card_salt
    });
}
