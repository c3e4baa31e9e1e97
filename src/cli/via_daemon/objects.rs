//! The daemon's keys and accounts as the CLI sees them: its Device and Account objects
//! (GetManagedObjects), filtered by `--reader`/`--device` like direct discovery.

use zbus::zvariant::OwnedObjectPath;

use super::props::{self, Properties, flag, number, parse_version, path, text, texts};
use super::{ACCOUNT_IFACE, Account, DEVICE_IFACE, DaemonBackend, ManagedObjects};
use crate::cli::error::{CliError, CliResult};
use crate::cli::keys::{Key, Keys};
use crate::daemon::ROOT_PATH;

impl DaemonBackend {
    /// Every key and account the daemon serves, filtered like direct discovery.
    pub fn reload(&mut self) -> CliResult<()> {
        let objects: ManagedObjects = self.call(
            ROOT_PATH,
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
            &(),
        )?;
        let mut devices: Vec<(&OwnedObjectPath, &Properties)> = objects
            .iter()
            .filter_map(|(path, ifaces)| ifaces.get(DEVICE_IFACE).map(|p| (path, p)))
            .collect();
        devices.sort_by_key(|(_, props)| text(props, "Reader"));
        self.keys.clear();
        self.device_paths.clear();
        self.accounts.clear();
        self.codes = None;
        let filter = self.filter.clone();
        for (device_path, props) in devices {
            let serial = number(props, "Serial");
            let key = Key {
                id: text(props, "Id"),
                reader: text(props, "Reader"),
                kind: text(props, "Name"),
                firmware: parse_version(&text(props, "Firmware")),
                serial: (serial != 0).then_some(serial),
                locked: flag(props, "Locked"),
                capacity: usize::try_from(number(props, "Capacity"))
                    .ok()
                    .filter(|c| *c != 0),
                transports: texts(props, "Transports"),
                access: Default::default(),
            };
            if let Some(reader) = &filter.reader
                && !key.reader.to_lowercase().contains(&reader.to_lowercase())
            {
                continue;
            }
            if let Some(device) = &filter.device
                && key.id != *device
                && key.serial.map(|s| s.to_string()).as_deref() != Some(device.as_str())
            {
                continue;
            }
            self.keys.push(key);
            self.device_paths.push(device_path.clone());
            self.accounts.push(accounts_of(&objects, device_path));
        }
        if self.keys.is_empty() {
            // Say why as direct mode would (no reader matches, pcscd not running, …): ask
            // PC/SC; the daemon's own words only if the keys are there after all.
            Keys::discover(&filter)?;
            return Err(CliError::NoKey(match (&filter.reader, &filter.device) {
                (_, Some(device)) => format!("no OATH key with id or serial {device:?} found"),
                (Some(reader), None) => format!("no OATH key found in readers matching {reader:?}"),
                (None, None) => "no OATH key found: is it plugged in?".to_owned(),
            }));
        }
        Ok(())
    }
}

/// The accounts of `device`, in the order the key listed them.
fn accounts_of(objects: &ManagedObjects, device: &OwnedObjectPath) -> Vec<Account> {
    let mut accounts: Vec<(u64, Account)> = objects
        .iter()
        .filter_map(|(account_path, ifaces)| {
            let props = ifaces.get(ACCOUNT_IFACE)?;
            (path(props, "Device").as_ref() == Some(device)).then(|| {
                // Object paths end in a counter: their order is the key's listing order.
                let order = account_path
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                let account = Account {
                    path: account_path.clone(),
                    credential: props::credential(props, true),
                };
                (order, account)
            })
        })
        .collect();
    accounts.sort_by_key(|(order, _)| *order);
    accounts.into_iter().map(|(_, a)| a).collect()
}
