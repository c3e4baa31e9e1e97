//! The daemon as a backend: the same data the direct path reads, over D-Bus.

mod props;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use tokio::runtime::Runtime;
use tracing::debug;
use zbus::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::backend::Backend;
use super::error::{CliError, CliResult};
use super::keys::{Key, KeyFilter, Keys};
use crate::daemon::{BUS_NAME, ROOT_PATH};
use crate::import::plan::Planned;
use crate::oath::{Code, CodeEntry, Credential, CredentialId, OathError};
use props::{Properties, big_number, flag, from_dbus, number, parse_version, path, text, texts};

const DEVICE_IFACE: &str = "io.github.oathbridge.OathBridge1.Device";
const ACCOUNT_IFACE: &str = "io.github.oathbridge.OathBridge1.Account";
const MANAGER_IFACE: &str = "io.github.oathbridge.OathBridge1.Manager";
/// Ordinary calls; a call may queue behind another client's touch wait on the same key.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Calculate waits for a touch as long as the key does; D-Bus' usual 25 s is too short.
const TOUCH_CALL_TIMEOUT: Duration = Duration::from_secs(120);

type ManagedObjects = HashMap<OwnedObjectPath, HashMap<String, Properties>>;

struct Account {
    path: OwnedObjectPath,
    credential: Credential,
}

pub struct DaemonBackend {
    runtime: Runtime,
    connection: Connection,
    filter: KeyFilter,
    keys: Vec<Key>,
    device_paths: Vec<OwnedObjectPath>,
    accounts: Vec<Vec<Account>>,
    /// The last GetCodes answer and its timestamp: it covers every key, so a command over
    /// several keys asks once.
    codes: Option<(Option<u64>, Vec<Properties>)>,
}

impl DaemonBackend {
    /// The daemon with its keys and accounts, if it runs or can be activated on the session
    /// bus; None otherwise (the caller talks to the keys directly).
    pub fn connect(global: &GlobalArgs) -> CliResult<Option<Self>> {
        let Some(mut backend) = Self::attach(global)? else {
            return Ok(None);
        };
        backend.reload()?;
        Ok(Some(backend))
    }

    /// Connect without reading the keys yet (`--watch` waits for keys that are not there).
    pub fn attach(global: &GlobalArgs) -> CliResult<Option<Self>> {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            debug!("no DBUS_SESSION_BUS_ADDRESS");
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Failure(format!("cannot start the async runtime: {e}")))?;
        let found = runtime.block_on(async {
            let connection = match Connection::session().await {
                Ok(connection) => connection,
                Err(error) => {
                    debug!(%error, "session bus unreachable");
                    return None;
                }
            };
            let bus = zbus::fdo::DBusProxy::new(&connection).await.ok()?;
            let name = zbus::names::BusName::try_from(BUS_NAME).ok()?;
            let running = bus.name_has_owner(name).await.unwrap_or(false);
            let activatable = running
                || bus
                    .list_activatable_names()
                    .await
                    .map(|names| names.iter().any(|n| n.as_str() == BUS_NAME))
                    .unwrap_or(false);
            debug!(running, activatable, "oathbridge daemon on the session bus");
            activatable.then_some(connection)
        });
        Ok(found.map(|connection| Self {
            runtime,
            connection,
            filter: global.filter(),
            keys: Vec::new(),
            device_paths: Vec::new(),
            accounts: Vec::new(),
            codes: None,
        }))
    }

    fn call_with<B, R>(
        &self,
        timeout: Duration,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> CliResult<R>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        self.runtime.block_on(async {
            let call = self
                .connection
                .call_method(Some(BUS_NAME), path, Some(iface), method, body);
            let reply = tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| {
                    CliError::Failure(format!(
                        "the oathbridge daemon did not answer {method} within {} s",
                        timeout.as_secs()
                    ))
                })?
                .map_err(from_dbus)?;
            reply.body().deserialize::<R>().map_err(from_dbus)
        })
    }

    fn call<B, R>(&self, path: &str, iface: &str, method: &str, body: &B) -> CliResult<R>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        self.call_with(CALL_TIMEOUT, path, iface, method, body)
    }

    pub fn keys_len(&self) -> usize {
        self.keys.len()
    }

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

    /// A key the daemon holds locked: ask for its password on a terminal and unlock it in
    /// the daemon (which keeps it in memory); without a terminal, fail as direct mode does.
    pub fn ensure_unlocked(&mut self, key: usize) -> CliResult<()> {
        if !self.keys[key].locked {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(OathError::Locked.into());
        }
        let password = Zeroizing::new(rpassword::prompt_password(format!(
            "Password for key {}: ",
            self.keys[key].id
        ))?);
        self.unlock(key, &password, false)?;
        // The daemon publishes the accounts on unlock; the key must still be the same one.
        let id = self.keys[key].id.clone();
        self.reload()?;
        if self.keys.get(key).is_none_or(|k| k.id != id) {
            return Err(CliError::NoKey(format!("key {id} was removed")));
        }
        Ok(())
    }

    /// Codes of one key from GetCodes: at `timestamp`, or from the daemon's cache (None).
    pub fn get_codes(&mut self, key: usize, timestamp: Option<u64>) -> CliResult<Vec<CodeEntry>> {
        self.ensure_unlocked(key)?;
        if self.codes.as_ref().is_none_or(|(at, _)| *at != timestamp) {
            let entries = self.call_get_codes(timestamp, false)?;
            self.codes = Some((timestamp, entries));
        }
        let entries = self.codes.as_ref().map_or(&[][..], |(_, e)| e.as_slice());
        let device = self.device_paths[key].clone();
        let mut out = Vec::new();
        for entry in entries {
            if path(entry, "device").as_ref() != Some(&device) {
                continue;
            }
            if flag(entry, "pending") {
                return Err(CliError::Failure(format!(
                    "key {} is busy (waiting for a touch?); try again",
                    self.keys[key].id
                )));
            }
            let mut credential = props::credential(entry, false);
            // Digits as the key listed them, like CALCULATE ALL details in direct mode.
            credential.digits = self.accounts[key]
                .iter()
                .find(|a| a.credential.raw_id == credential.raw_id)
                .and_then(|a| a.credential.digits);
            let code = entry.contains_key("code").then(|| Code {
                value: text(entry, "code"),
                valid_from: big_number(entry, "valid_from"),
                valid_to: big_number(entry, "valid_to"),
            });
            out.push(CodeEntry { credential, code });
        }
        // GetCodes leaves locked keys out; say so, as the direct path does.
        if out.is_empty() {
            let locked: OwnedValue = self.call(
                device.as_str(),
                "org.freedesktop.DBus.Properties",
                "Get",
                &(DEVICE_IFACE, "Locked"),
            )?;
            if bool::try_from(&locked).unwrap_or(false) {
                return Err(OathError::Locked.into());
            }
        }
        Ok(out)
    }

    /// GetCodes for every key at `timestamp` (None: now), read again if `refresh`.
    fn call_get_codes(&self, timestamp: Option<u64>, refresh: bool) -> CliResult<Vec<Properties>> {
        // The CLI wants every key's answer, as in direct mode: wait as long as a call.
        let wait_ms = u32::try_from(CALL_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
        let mut options: HashMap<&str, Value<'_>> = HashMap::from([
            ("show_hidden", Value::from(true)),
            ("wait_ms", Value::from(wait_ms)),
        ]);
        if let Some(timestamp) = timestamp {
            options.insert("timestamp", Value::from(at_for_daemon(timestamp)));
        }
        if refresh {
            options.insert("refresh", Value::from(true));
        }
        self.call(ROOT_PATH, MANAGER_IFACE, "GetCodes", &(options,))
    }

    fn account_path(&self, key: usize, credential: &Credential) -> CliResult<OwnedObjectPath> {
        self.accounts[key]
            .iter()
            .find(|a| a.credential.raw_id == credential.raw_id)
            .map(|a| a.path.clone())
            .ok_or(CliError::NoMatch)
    }
}

/// The daemon reads timestamp 0 as "now"; `--at 0` means the epoch. Second 1 is in the
/// same time step as 0 for every period over 1 s, so it gives the epoch's codes and
/// validity (a 1 s period, which no issuer uses, would be one step off).
fn at_for_daemon(timestamp: u64) -> u64 {
    timestamp.max(1)
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

impl Backend for DaemonBackend {
    fn keys(&self) -> &[Key] {
        &self.keys
    }

    fn list(&mut self, key: usize) -> CliResult<Vec<Credential>> {
        self.ensure_unlocked(key)?;
        Ok(self.accounts[key]
            .iter()
            .map(|a| a.credential.clone())
            .collect())
    }

    fn codes(&mut self, key: usize, timestamp: u64) -> CliResult<Vec<CodeEntry>> {
        self.get_codes(key, Some(timestamp))
    }

    /// The daemon answers from its cache, which misses what another program (ykman,
    /// `--direct`) wrote since: GetCodes with "refresh" makes it read every key again and
    /// update its Account objects, which are then read again too.
    fn refresh(&mut self) -> CliResult<bool> {
        let timestamp = self.codes.as_ref().and_then(|(at, _)| *at);
        let entries = self.call_get_codes(timestamp, true)?;
        self.reload()?;
        self.codes = Some((timestamp, entries));
        Ok(true)
    }

    fn calculate(
        &mut self,
        key: usize,
        credential: &Credential,
        at: &[u64],
    ) -> CliResult<Vec<Code>> {
        let path = self.account_path(key, credential)?;
        at.iter()
            .map(|t| {
                let (value, valid_from, valid_to): (String, u64, u64) = self.call_with(
                    TOUCH_CALL_TIMEOUT,
                    path.as_str(),
                    ACCOUNT_IFACE,
                    "Calculate",
                    &(at_for_daemon(*t),),
                )?;
                Ok(Code {
                    value,
                    valid_from,
                    valid_to,
                })
            })
            .collect()
    }

    fn check_import(&mut self, key: usize, accounts: &[Planned], force: bool) -> CliResult<()> {
        self.ensure_unlocked(key)?;
        self.import_call(key, accounts, force, true).map(drop)
    }

    fn import(
        &mut self,
        key: usize,
        accounts: &[Planned],
        force: bool,
    ) -> CliResult<Vec<Credential>> {
        self.ensure_unlocked(key)?;
        self.import_call(key, accounts, force, false)?;
        Ok(accounts
            .iter()
            .map(|account| Credential {
                raw_id: account.data.id.to_bytes(),
                id: account.data.id.clone(),
                oath_type: account.data.oath_type,
                algorithm: Some(account.data.algorithm),
                digits: Some(account.data.digits),
                touch: Some(account.data.touch),
            })
            .collect())
    }

    /// Whether a password is set on `key`. The daemon only says whether it holds the key
    /// locked; one it keeps unlocked is asked directly through pcscd (a SELECT, shared),
    /// and assumed to have one if pcscd cannot see it (a virtual key inside the daemon).
    fn has_password(&self, key: usize) -> bool {
        let key = &self.keys[key];
        if key.locked {
            return true;
        }
        let filter = KeyFilter {
            reader: Some(key.reader.clone()),
            device: Some(key.id.clone()),
            ..KeyFilter::default()
        };
        match Keys::discover(&filter) {
            Ok(found) => found.keys.first().is_none_or(|k| k.locked),
            Err(error) => {
                debug!(%error, "cannot ask the key directly whether it has a password");
                true
            }
        }
    }

    fn delete(&mut self, key: usize, credential: &Credential) -> CliResult<()> {
        let path = self.account_path(key, credential)?;
        self.call(path.as_str(), ACCOUNT_IFACE, "Delete", &())
    }

    fn set_password(
        &mut self,
        key: usize,
        current: Option<&str>,
        new: &str,
        remember: bool,
    ) -> CliResult<()> {
        let path = self.device_paths[key].clone();
        self.call(
            path.as_str(),
            DEVICE_IFACE,
            "SetPassword",
            &(current.unwrap_or(""), new, remember),
        )
    }

    fn unlock(&mut self, key: usize, password: &str, remember: bool) -> CliResult<()> {
        let path = self.device_paths[key].clone();
        self.call(path.as_str(), DEVICE_IFACE, "Unlock", &(password, remember))
            .map_err(|error| match error {
                // The daemon's InvalidInput for this case; direct mode exits 6 with it.
                CliError::Daemon { message, .. }
                    if message == OathError::NoPassword.to_string() =>
                {
                    OathError::NoPassword.into()
                }
                other => other,
            })
    }

    /// As in direct mode: the remembered key leaves the Secret Service (the daemon shares
    /// the store), with the same note when there was none and the same error when there is
    /// no Secret Service; the daemon then drops the password it holds in memory.
    fn forget(&mut self, key: usize) -> CliResult<()> {
        let id = self.keys[key].id.clone();
        let forgotten = super::backend::with_store(async |store| store.forget(&id).await);
        let path = self.device_paths[key].clone();
        self.call::<_, ()>(path.as_str(), DEVICE_IFACE, "Forget", &())?;
        if !forgotten? {
            eprintln!("No password was remembered for key {id}");
        }
        Ok(())
    }

    fn reset(&mut self, key: usize) -> CliResult<()> {
        let path = self.device_paths[key].clone();
        self.call(path.as_str(), DEVICE_IFACE, "Reset", &())
    }

    fn identify(&mut self, key: usize) -> CliResult<()> {
        let path = self.device_paths[key].clone();
        self.call(path.as_str(), DEVICE_IFACE, "Identify", &())
    }

    fn rename(
        &mut self,
        key: usize,
        credential: &Credential,
        new_id: &CredentialId,
    ) -> CliResult<Credential> {
        let path = self.account_path(key, credential)?;
        let issuer = new_id.issuer.clone().unwrap_or_default();
        let () = self.call(
            path.as_str(),
            ACCOUNT_IFACE,
            "Rename",
            &(issuer, new_id.name.as_str()),
        )?;
        let mut id = new_id.clone();
        id.period = credential.id.period;
        Ok(Credential {
            raw_id: id.to_bytes(),
            id,
            ..credential.clone()
        })
    }
}

impl DaemonBackend {
    /// One `ImportAccounts` call: the daemon plans and writes all of it, or nothing.
    fn import_call(
        &mut self,
        key: usize,
        accounts: &[Planned],
        force: bool,
        dry_run: bool,
    ) -> CliResult<Vec<OwnedObjectPath>> {
        let secrets: Vec<Zeroizing<Vec<u8>>> = accounts
            .iter()
            .map(|a| Zeroizing::new(a.data.secret.to_vec()))
            .collect();
        let credentials: Vec<HashMap<&str, Value<'_>>> = accounts
            .iter()
            .zip(&secrets)
            .map(|(account, secret)| {
                let data = &account.data;
                let mut credential = HashMap::from([
                    ("name", Value::from(data.id.name.as_str())),
                    ("secret", Value::from(secret.as_slice())),
                    ("type", Value::from(data.oath_type.name())),
                    ("algorithm", Value::from(data.algorithm.name())),
                    ("digits", Value::from(u32::from(data.digits))),
                    ("period", Value::from(data.id.period.max(1))),
                    ("counter", Value::from(data.counter)),
                    ("touch", Value::from(data.touch)),
                    ("source", Value::from(account.at.to_string())),
                ]);
                if let Some(issuer) = &data.id.issuer {
                    credential.insert("issuer", Value::from(issuer.as_str()));
                }
                credential
            })
            .collect();
        let device = self.device_paths[key].clone();
        let options: HashMap<&str, Value<'_>> = HashMap::from([
            ("device", Value::from(device.as_ref())),
            ("overwrite", Value::from(force)),
            ("dry_run", Value::from(dry_run)),
        ]);
        self.call(
            ROOT_PATH,
            MANAGER_IFACE,
            "ImportAccounts",
            &(credentials, options),
        )
    }
}
