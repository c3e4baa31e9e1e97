//! `io.github.oathbridge.OathBridge1.Device`: one key.

use std::sync::atomic::{AtomicBool, Ordering};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};
use zeroize::Zeroizing;

use super::Shared;
use super::access::{check_caller, check_reader};
use super::error::DaemonError;
use crate::core::DeviceInfo;
use crate::secrets::SecretStore;

pub struct Device {
    shared: Shared,
    id: String,
    remembered: AtomicBool,
    touch_pending: AtomicBool,
}

impl Device {
    pub fn new(shared: Shared, id: String) -> Self {
        Self {
            shared,
            id,
            remembered: AtomicBool::new(false),
            touch_pending: AtomicBool::new(false),
        }
    }

    fn info(&self) -> Option<DeviceInfo> {
        self.shared.manager.get(&self.id).ok().map(|d| d.info)
    }

    /// Unlocked at plug-in with a remembered key.
    pub fn set_unlocked_by_memory(&self) {
        self.remembered.store(true, Ordering::Relaxed);
    }

    /// Store the key in memory in the Secret Service.
    async fn remember(&self, connection: &Connection) -> Result<(), DaemonError> {
        let device = self.shared.manager.get(&self.id)?;
        let Some(key) = device.handle.run(|worker| Ok(worker.access_key())).await? else {
            return Ok(());
        };
        let store = SecretStore::open(connection)
            .await
            .map_err(|e| DaemonError::NotSupported(format!("cannot remember the password: {e}")))?;
        store
            .store(&self.id, &key)
            .await
            .map_err(|e| DaemonError::NotSupported(format!("cannot remember the password: {e}")))?;
        self.remembered.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub fn set_touch_pending(&self, pending: bool) {
        self.touch_pending.store(pending, Ordering::Relaxed);
    }
}

#[interface(name = "io.github.oathbridge.OathBridge1.Device")]
impl Device {
    /// Check the password and keep the derived key in memory until the key is pulled or
    /// Lock() is called. Wrong attempts are rate-limited. For a sealed virtual key the
    /// password is the FIDO2 PIN (empty without one), and the FIDO2 key must be touched.
    async fn unlock(
        &self,
        password: String,
        remember: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), DaemonError> {
        // Wiped when dropped, also on the early returns below.
        let password = Zeroizing::new(password);
        check_caller(connection, &header).await?;
        let _ = remember; // kept in memory either way; persistent memory is not built yet
        let device = self.shared.manager.get(&self.id)?;
        device
            .handle
            .run(move |worker| worker.unlock(&password))
            .await?;
        self.locked_changed(&emitter).await?;
        super::refresh_accounts(&self.shared, connection, &self.id).await?;
        Ok(())
    }

    /// Set or change the password; an empty `new` clears it.
    async fn set_password(
        &self,
        current: String,
        new: String,
        remember: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), DaemonError> {
        // Wiped when dropped, also on the early returns below.
        let (current, new) = (Zeroizing::new(current), Zeroizing::new(new));
        check_caller(connection, &header).await?;
        let clearing = new.is_empty();
        let device = self.shared.manager.get(&self.id)?;
        let info = device
            .handle
            .run(move |worker| {
                worker.set_password(&current, &new)?;
                Ok(worker.info().clone())
            })
            .await?;
        self.shared.manager.update(&self.id, info);
        self.locked_changed(&emitter).await?;
        // A remembered key for the old password is useless now.
        if self.remembered.swap(false, Ordering::Relaxed)
            && let Ok(store) = SecretStore::open(connection).await
        {
            let _ = store.forget(&self.id).await;
        }
        if remember && !clearing {
            self.remember(connection).await?;
        }
        self.remembered_changed(&emitter).await?;
        Ok(())
    }

    /// Drop the key from memory and from the Secret Service.
    async fn forget(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), DaemonError> {
        check_caller(connection, &header).await?;
        if let Ok(store) = SecretStore::open(connection).await {
            store
                .forget(&self.id)
                .await
                .map_err(|e| DaemonError::CardError(e.to_string()))?;
        }
        self.remembered.store(false, Ordering::Relaxed);
        self.remembered_changed(&emitter).await?;
        self.lock(header, connection, emitter).await
    }

    /// Drop the in-memory key: the key's accounts need the password again.
    async fn lock(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), DaemonError> {
        check_caller(connection, &header).await?;
        let device = self.shared.manager.get(&self.id)?;
        device
            .handle
            .run(|worker| {
                worker.lock();
                Ok(())
            })
            .await?;
        self.locked_changed(&emitter).await?;
        Ok(())
    }

    /// Make the key show itself (blink: CTAPHID WINK). Keys that cannot (CCID-only
    /// transport, virtual keys) answer NotSupported with the reason.
    async fn identify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), DaemonError> {
        check_caller(connection, &header).await?;
        let device = self.shared.manager.get(&self.id)?;
        device.handle.run(|worker| worker.wink()).await?;
        Ok(())
    }

    /// Delete every account and the password. The key gets a new id, so this object is
    /// replaced by a new one.
    async fn reset(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), DaemonError> {
        check_caller(connection, &header).await?;
        let device = self.shared.manager.get(&self.id)?;
        let info = device.handle.run(|worker| worker.reset()).await?;
        self.shared.manager.update(&self.id, info);
        Ok(())
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn id(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.id.clone())
    }

    /// Model, e.g. "YubiKey", "Nitrokey 3", "Virtual key".
    #[zbus(property(emits_changed_signal = "const"))]
    async fn name(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.info().map(|i| i.name).unwrap_or_default())
    }

    /// "hardware" or "virtual".
    #[zbus(property(emits_changed_signal = "const"))]
    async fn kind(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(match self.info() {
            Some(info) if info.is_virtual => "virtual".into(),
            _ => "hardware".into(),
        })
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn reader(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.info().map(|i| i.reader).unwrap_or_default())
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn firmware(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<String> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self
            .info()
            .map(|i| i.firmware.to_string())
            .unwrap_or_default())
    }

    /// How the key is reached: "ccid" (PC/SC), "hid" (CTAPHID or the YubiKey OTP
    /// interface), or both for one key found on both; empty for a virtual key.
    #[zbus(property(emits_changed_signal = "false"))]
    async fn transports(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<Vec<String>> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self
            .shared
            .manager
            .transports(&self.id)
            .into_iter()
            .map(str::to_owned)
            .collect())
    }

    /// Serial number; 0 when the key does not tell it over OATH.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn serial(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<u32> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.info().and_then(|i| i.serial).unwrap_or(0))
    }

    /// A password is set and not given yet.
    #[zbus(property)]
    async fn locked(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<bool> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self
            .shared
            .manager
            .get(&self.id)
            .is_ok_and(|device| device.handle.status.locked()))
    }

    /// The key is stored in the Secret Service and unlocks the key when it is plugged in.
    #[zbus(property)]
    async fn remembered(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<bool> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.remembered.load(Ordering::Relaxed))
    }

    /// How many accounts fit; 0 when unknown.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn capacity(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<u32> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self
            .info()
            .and_then(|i| i.quirks.capacity)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0))
    }

    /// Accounts known on the key (0 while locked).
    #[zbus(property(emits_changed_signal = "false"))]
    async fn used(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<u32> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.shared.registry.lock().await.account_count(&self.id))
    }

    /// True while the key waits for a touch.
    #[zbus(property)]
    async fn touch_pending(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<bool> {
        check_reader(connection, header.as_ref()).await?;
        Ok(self.touch_pending.load(Ordering::Relaxed))
    }
}
