//! `io.github.oathbridge.OathBridge1.Account`: one account on one key.

use std::sync::Mutex;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedObjectPath;
use zbus::{Connection, interface};

use super::Shared;
use super::access::{check_caller, check_reader};
use super::error::DaemonError;
use super::registry;
use crate::oath::{Credential, CredentialId};
use crate::otp::OathType;

pub struct Account {
    shared: Shared,
    device: String,
    device_path: OwnedObjectPath,
    credential: Mutex<Credential>,
}

impl Account {
    pub fn new(
        shared: Shared,
        device: String,
        device_path: OwnedObjectPath,
        credential: Credential,
    ) -> Self {
        Self {
            shared,
            device,
            device_path,
            credential: Mutex::new(credential),
        }
    }

    pub fn credential(&self) -> Credential {
        self.credential
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// New details from a later listing; keeps what the new listing does not know.
    pub fn update(&self, mut fresh: Credential) {
        let mut current = self.credential.lock().unwrap_or_else(|e| e.into_inner());
        fresh.algorithm = fresh.algorithm.or(current.algorithm);
        fresh.digits = fresh.digits.or(current.digits);
        fresh.touch = fresh.touch.or(current.touch);
        *current = fresh;
    }
}

#[interface(name = "io.github.oathbridge.OathBridge1.Account")]
impl Account {
    /// Calculate the code at `timestamp` (0 = now). Waits for a touch when needed.
    #[zbus(out_args("code", "valid_from", "valid_to"))]
    async fn calculate(
        &self,
        timestamp: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(String, u64, u64), DaemonError> {
        check_caller(connection, &header).await?;
        let at = if timestamp == 0 {
            crate::clock::unix_now()
        } else {
            timestamp
        };
        let device = self.shared.manager.get(&self.device)?;
        let credential = self.credential();
        let code = device
            .handle
            .run(move |worker| worker.calculate(&credential, at))
            .await?;
        Ok((code.value, code.valid_from, code.valid_to))
    }

    /// Delete the account from the key.
    async fn delete(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), DaemonError> {
        check_caller(connection, &header).await?;
        let device = self.shared.manager.get(&self.device)?;
        let credential = self.credential();
        let raw_id = credential.raw_id.clone();
        device
            .handle
            .run(move |worker| worker.delete(&credential))
            .await?;
        registry::remove_account(&self.shared, connection, &self.device, &raw_id).await;
        Ok(())
    }

    /// Rename the account; an empty issuer means none.
    async fn rename(
        &self,
        issuer: String,
        name: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), DaemonError> {
        check_caller(connection, &header).await?;
        let device = self.shared.manager.get(&self.device)?;
        let credential = self.credential();
        let new_id = CredentialId::new(
            Some(&issuer),
            &name,
            credential.oath_type,
            credential.id.period,
        );
        let renamed = device
            .handle
            .run(move |worker| worker.rename(&credential, &new_id))
            .await?;
        let old = self.credential();
        registry::rename_account(&self.shared, &self.device, &old.raw_id, &renamed.raw_id).await;
        *self.credential.lock().unwrap_or_else(|e| e.into_inner()) = renamed;
        self.id_changed(&emitter).await?;
        self.issuer_changed(&emitter).await?;
        self.name_changed(&emitter).await?;
        self.hidden_changed(&emitter).await?;
        Ok(())
    }

    /// The id as stored on the key: `[period/][issuer:]name`.
    #[zbus(property)]
    async fn id(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().id_string())
    }

    #[zbus(property)]
    async fn issuer(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().id.issuer.unwrap_or_default())
    }

    #[zbus(property)]
    async fn name(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().id.name)
    }

    /// "totp" or "hotp".
    #[zbus(property(emits_changed_signal = "const"), name = "Type")]
    async fn oath_type(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().oath_type.name().to_lowercase())
    }

    /// "sha1", "sha256", "sha512", or "" when the key did not say.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn algorithm(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self
            .credential()
            .algorithm
            .map(|a| a.name().to_lowercase())
            .unwrap_or_default())
    }

    /// Number of digits; 0 when the key did not say.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn digits(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<u32> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().digits.map(u32::from).unwrap_or(0))
    }

    /// TOTP period in seconds; 0 for HOTP.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn period(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<u32> {
        check_reader(connection, header.as_ref()).await?;
        let credential = self.credential();
        Ok(match credential.oath_type {
            OathType::Totp => credential.id.period,
            OathType::Hotp => 0,
        })
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn requires_touch(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<bool> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().touch == Some(true))
    }

    /// Issuer "_hidden": launchers should not show it.
    #[zbus(property)]
    async fn hidden(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<bool> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.credential().id.is_hidden())
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn device(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.device_path.clone())
    }
}
