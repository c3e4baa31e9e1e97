//! Which D-Bus object stands for which key and account, and keeping them in step with the
//! keys: objects are added and removed here only, so InterfacesAdded/Removed follow.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::warn;
use zbus::Connection;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use super::account::Account;
use super::device::Device;
use super::{ACCOUNTS_PATH, DEVICES_PATH, Shared};
use crate::oath::Credential;

#[derive(Default)]
pub struct Registry {
    devices: BTreeMap<String, OwnedObjectPath>,
    accounts: BTreeMap<(String, Vec<u8>), OwnedObjectPath>,
    next_account: u64,
    /// Bumped on every change of a path: replies built from older paths are stale.
    generation: u64,
}

/// Device ids are base64; object path elements allow `[A-Za-z0-9_]` only.
pub fn device_path(id: &str) -> OwnedObjectPath {
    let mut element = String::with_capacity(id.len() * 2);
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() {
            element.push(byte as char);
        } else {
            element.push_str(&format!("_{byte:02x}"));
        }
    }
    ObjectPath::try_from(format!("{DEVICES_PATH}/{element}"))
        .map(OwnedObjectPath::from)
        .unwrap_or_else(|_| {
            OwnedObjectPath::from(ObjectPath::from_static_str_unchecked(DEVICES_PATH))
        })
}

pub type SharedRegistry = Arc<Mutex<Registry>>;

impl Registry {
    /// Changes with every object added, removed or moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn device_path(&self, id: &str) -> Option<OwnedObjectPath> {
        self.devices.get(id).cloned()
    }

    pub fn device_for_path(&self, path: &ObjectPath<'_>) -> Option<String> {
        self.devices
            .iter()
            .find(|(_, p)| p.as_str() == path.as_str())
            .map(|(id, _)| id.clone())
    }

    pub fn account_count(&self, device: &str) -> u32 {
        let count = self.accounts.keys().filter(|(d, _)| d == device).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The accounts of one key, by raw id (one ordered range, no per-account allocation).
    pub fn accounts_of<'a>(
        &'a self,
        device: &'a str,
    ) -> impl Iterator<Item = (&'a [u8], &'a OwnedObjectPath)> + 'a {
        self.accounts
            .range((device.to_owned(), Vec::new())..)
            .take_while(move |((d, _), _)| d == device)
            .map(|((_, raw_id), path)| (raw_id.as_slice(), path))
    }

    pub fn account_path(&self, device: &str, raw_id: &[u8]) -> Option<OwnedObjectPath> {
        self.accounts
            .get(&(device.to_owned(), raw_id.to_vec()))
            .cloned()
    }
}

/// Serve a Device object for `id` (no-op if it exists).
pub async fn add_device(shared: &Shared, connection: &Connection, id: &str) {
    if shared.registry.lock().await.devices.contains_key(id) {
        return;
    }
    let path = device_path(id);
    // Record the path first: serving emits InterfacesAdded, which reads the Device's
    // properties, and one of them (Used) takes the registry lock.
    shared
        .registry
        .lock()
        .await
        .devices
        .insert(id.to_owned(), path.clone());
    shared.registry.lock().await.generation += 1;
    let device = Device::new(shared.clone(), id.to_owned());
    if let Err(error) = connection.object_server().at(&path, device).await {
        warn!(%error, "cannot serve device object");
        shared.registry.lock().await.devices.remove(id);
    }
}

/// Remove a Device object and every Account object of that key.
pub async fn remove_device(shared: &Shared, connection: &Connection, id: &str) {
    let mut registry = shared.registry.lock().await;
    registry.generation += 1;
    let server = connection.object_server();
    let gone: Vec<(String, Vec<u8>)> = registry
        .accounts
        .keys()
        .filter(|(device, _)| device == id)
        .cloned()
        .collect();
    for key in gone {
        if let Some(path) = registry.accounts.remove(&key) {
            let _ = server.remove::<Account, _>(&path).await;
        }
    }
    if let Some(path) = registry.devices.remove(id) {
        let _ = server.remove::<Device, _>(&path).await;
    }
    shared.replies.forget(id);
}

/// Make the Account objects of `device` match `credentials`. Returns their paths in order.
pub async fn sync_accounts(
    shared: &Shared,
    connection: &Connection,
    device: &str,
    credentials: &[Credential],
) -> Vec<OwnedObjectPath> {
    let mut registry = shared.registry.lock().await;
    let Some(device_path) = registry.devices.get(device).cloned() else {
        return Vec::new();
    };
    registry.generation += 1;
    let server = connection.object_server();
    let stale: Vec<(String, Vec<u8>)> = registry
        .accounts
        .keys()
        .filter(|(d, raw)| d == device && !credentials.iter().any(|c| &c.raw_id == raw))
        .cloned()
        .collect();
    for key in stale {
        if let Some(path) = registry.accounts.remove(&key) {
            let _ = server.remove::<Account, _>(&path).await;
        }
    }
    let mut paths = Vec::with_capacity(credentials.len());
    for credential in credentials {
        let key = (device.to_owned(), credential.raw_id.clone());
        if let Some(path) = registry.accounts.get(&key) {
            // Refresh what the key reported this time (touch, digits).
            if let Ok(account) = server.interface::<_, Account>(path).await {
                account.get().await.update(credential.clone());
            }
            paths.push(path.clone());
            continue;
        }
        registry.next_account += 1;
        let Ok(path) = ObjectPath::try_from(format!("{ACCOUNTS_PATH}/{}", registry.next_account))
        else {
            continue;
        };
        let path = OwnedObjectPath::from(path);
        let account = Account::new(
            shared.clone(),
            device.to_owned(),
            device_path.clone(),
            credential.clone(),
        );
        match server.at(&path, account).await {
            Ok(_) => {
                registry.accounts.insert(key, path.clone());
                paths.push(path);
            }
            Err(error) => warn!(%error, "cannot serve account object"),
        }
    }
    paths
}

/// Forget one account object (after Delete).
pub async fn remove_account(shared: &Shared, connection: &Connection, device: &str, raw_id: &[u8]) {
    let mut registry = shared.registry.lock().await;
    registry.generation += 1;
    if let Some(path) = registry
        .accounts
        .remove(&(device.to_owned(), raw_id.to_vec()))
    {
        let _ = connection.object_server().remove::<Account, _>(&path).await;
    }
}

/// Move an account object to a new raw id (after Rename) without changing its path.
pub async fn rename_account(shared: &Shared, device: &str, old: &[u8], new: &[u8]) {
    let mut registry = shared.registry.lock().await;
    registry.generation += 1;
    if let Some(path) = registry.accounts.remove(&(device.to_owned(), old.to_vec())) {
        registry
            .accounts
            .insert((device.to_owned(), new.to_vec()), path);
    }
}
