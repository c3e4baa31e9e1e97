//! The daemon as a backend: the same data the direct path reads, over D-Bus.

use std::collections::HashMap;
use std::time::Duration;

use tokio::runtime::Runtime;
use zbus::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::GlobalArgs;
use super::backend::Backend;
use super::error::{CliError, CliResult, exit};
use super::keys::Key;
use crate::daemon::{BUS_NAME, ROOT_PATH};
use crate::oath::{Code, CodeEntry, Credential, CredentialData, CredentialId, OathError, Version};
use crate::otp::{HashAlgorithm, OathType};

const DEVICE_IFACE: &str = "io.github.oathbridge.OathBridge1.Device";
const ACCOUNT_IFACE: &str = "io.github.oathbridge.OathBridge1.Account";
const MANAGER_IFACE: &str = "io.github.oathbridge.OathBridge1.Manager";
/// A touch may take as long as the user needs; D-Bus' default 25 s is too short.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

type Properties = HashMap<String, OwnedValue>;
type ManagedObjects = HashMap<OwnedObjectPath, HashMap<String, Properties>>;

struct Account {
    path: OwnedObjectPath,
    credential: Credential,
}

pub struct DaemonBackend {
    runtime: Runtime,
    connection: Connection,
    keys: Vec<Key>,
    device_paths: Vec<OwnedObjectPath>,
    accounts: Vec<Vec<Account>>,
}

fn text(props: &Properties, name: &str) -> String {
    props
        .get(name)
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or_default()
        .to_owned()
}

fn number(props: &Properties, name: &str) -> u32 {
    props
        .get(name)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

fn flag(props: &Properties, name: &str) -> bool {
    props
        .get(name)
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false)
}

fn parse_version(text: &str) -> Version {
    let mut parts = text.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
    Version(
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn credential_from(props: &Properties) -> Credential {
    let oath_type = if text(props, "Type") == "hotp" {
        OathType::Hotp
    } else {
        OathType::Totp
    };
    let id = text(props, "Id");
    Credential {
        raw_id: id.as_bytes().to_vec(),
        id: CredentialId::parse(id.as_bytes(), oath_type),
        oath_type,
        algorithm: text(props, "Algorithm").parse::<HashAlgorithm>().ok(),
        digits: u8::try_from(number(props, "Digits"))
            .ok()
            .filter(|d| *d != 0),
        touch: Some(flag(props, "RequiresTouch")),
    }
}

/// A D-Bus error from the daemon, with the exit code its name stands for.
fn from_dbus(error: zbus::Error) -> CliError {
    if let zbus::Error::MethodError(name, message, _) = &error {
        let message = message.clone().unwrap_or_else(|| name.to_string());
        let code = match name.as_str().rsplit('.').next().unwrap_or_default() {
            "NoDevice" | "DeviceRemoved" => exit::NO_KEY,
            "NoSuchAccount" => exit::NO_MATCH,
            "Locked" | "WrongPassword" => exit::PASSWORD,
            "TouchTimeout" => exit::TOUCH_TIMEOUT,
            "NoSpace" | "NotSupported" => exit::UNSUPPORTED,
            "InvalidInput" => exit::USAGE,
            _ => exit::FAILURE,
        };
        return CliError::Daemon { code, message };
    }
    CliError::Daemon {
        code: exit::FAILURE,
        message: format!("the oathbridge daemon did not answer: {error}"),
    }
}

impl DaemonBackend {
    /// The daemon, if it runs or can be activated on the session bus; None otherwise.
    pub fn connect(global: &GlobalArgs) -> CliResult<Option<Self>> {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Failure(format!("cannot start the async runtime: {e}")))?;
        let found = runtime.block_on(async {
            let connection = Connection::session().await.ok()?;
            let bus = zbus::fdo::DBusProxy::new(&connection).await.ok()?;
            let name = zbus::names::BusName::try_from(BUS_NAME).ok()?;
            let running = bus.name_has_owner(name).await.unwrap_or(false);
            let activatable = running
                || bus
                    .list_activatable_names()
                    .await
                    .map(|names| names.iter().any(|n| n.as_str() == BUS_NAME))
                    .unwrap_or(false);
            activatable.then_some(connection)
        });
        let Some(connection) = found else {
            return Ok(None);
        };
        let mut backend = Self {
            runtime,
            connection,
            keys: Vec::new(),
            device_paths: Vec::new(),
            accounts: Vec::new(),
        };
        backend.load(global)?;
        Ok(Some(backend))
    }

    fn call<B, R>(&self, path: &str, iface: &str, method: &str, body: &B) -> CliResult<R>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        self.runtime.block_on(async {
            let call = self
                .connection
                .call_method(Some(BUS_NAME), path, Some(iface), method, body);
            let reply = tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| {
                    CliError::Failure("the oathbridge daemon did not answer in time".into())
                })?
                .map_err(from_dbus)?;
            reply.body().deserialize::<R>().map_err(from_dbus)
        })
    }

    /// Every key and account the daemon serves, filtered like direct discovery.
    fn load(&mut self, global: &GlobalArgs) -> CliResult<()> {
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
        let filter = global.filter();
        for (path, props) in devices {
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
            let mut accounts: Vec<(String, Account)> = objects
                .iter()
                .filter_map(|(account_path, ifaces)| {
                    let props = ifaces.get(ACCOUNT_IFACE)?;
                    let owner = props
                        .get("Device")
                        .and_then(|v| OwnedObjectPath::try_from(v.try_clone().ok()?).ok())?;
                    (owner == *path).then(|| {
                        (
                            account_path.to_string(),
                            Account {
                                path: account_path.clone(),
                                credential: credential_from(props),
                            },
                        )
                    })
                })
                .collect();
            // Object paths end in a counter: their order is the order the key listed them.
            accounts.sort_by_key(|(p, _)| {
                p.rsplit('/')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            });
            self.keys.push(key);
            self.device_paths.push(path.clone());
            self.accounts
                .push(accounts.into_iter().map(|(_, a)| a).collect());
        }
        if self.keys.is_empty() {
            return Err(CliError::NoKey(match (&filter.reader, &filter.device) {
                (_, Some(device)) => format!("no OATH key with id or serial {device:?} found"),
                (Some(reader), None) => format!("no OATH key found in readers matching {reader:?}"),
                (None, None) => "no OATH key found: is it plugged in?".to_owned(),
            }));
        }
        Ok(())
    }

    fn require_unlocked(&self, key: usize) -> CliResult<()> {
        if self.keys[key].locked {
            return Err(OathError::Locked.into());
        }
        Ok(())
    }

    fn account_path(&self, key: usize, credential: &Credential) -> CliResult<OwnedObjectPath> {
        self.accounts[key]
            .iter()
            .find(|a| a.credential.raw_id == credential.raw_id)
            .map(|a| a.path.clone())
            .ok_or(CliError::NoMatch)
    }
}

impl Backend for DaemonBackend {
    fn keys(&self) -> &[Key] {
        &self.keys
    }

    fn list(&mut self, key: usize) -> CliResult<Vec<Credential>> {
        self.require_unlocked(key)?;
        Ok(self.accounts[key]
            .iter()
            .map(|a| a.credential.clone())
            .collect())
    }

    fn codes(&mut self, key: usize, timestamp: u64) -> CliResult<Vec<CodeEntry>> {
        self.require_unlocked(key)?;
        let options: HashMap<&str, Value<'_>> = HashMap::from([
            ("timestamp", Value::from(timestamp)),
            ("show_hidden", Value::from(true)),
        ]);
        let entries: Vec<Properties> =
            self.call(ROOT_PATH, MANAGER_IFACE, "GetCodes", &(options,))?;
        let device = self.device_paths[key].clone();
        let mut out = Vec::new();
        for entry in entries {
            let owner = entry
                .get("device")
                .and_then(|v| OwnedObjectPath::try_from(v.try_clone().ok()?).ok());
            if owner.as_ref() != Some(&device) {
                continue;
            }
            let id = text(&entry, "id");
            // Details as the key reported them (digits), like CALCULATE ALL in direct mode.
            let known = self.accounts[key]
                .iter()
                .find(|a| a.credential.raw_id == id.as_bytes());
            let oath_type = if text(&entry, "type") == "hotp" {
                OathType::Hotp
            } else {
                OathType::Totp
            };
            let credential = Credential {
                raw_id: id.as_bytes().to_vec(),
                id: CredentialId::parse(id.as_bytes(), oath_type),
                oath_type,
                algorithm: text(&entry, "algorithm").parse::<HashAlgorithm>().ok(),
                digits: known.and_then(|a| a.credential.digits),
                touch: Some(flag(&entry, "touch")),
            };
            let code = entry.contains_key("code").then(|| Code {
                value: text(&entry, "code"),
                valid_from: entry
                    .get("valid_from")
                    .and_then(|v| u64::try_from(v).ok())
                    .unwrap_or(0),
                valid_to: entry
                    .get("valid_to")
                    .and_then(|v| u64::try_from(v).ok())
                    .unwrap_or(0),
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

    fn calculate(
        &mut self,
        key: usize,
        credential: &Credential,
        at: &[u64],
    ) -> CliResult<Vec<Code>> {
        let path = self.account_path(key, credential)?;
        at.iter()
            .map(|t| {
                let (value, valid_from, valid_to): (String, u64, u64) =
                    self.call(path.as_str(), ACCOUNT_IFACE, "Calculate", &(*t,))?;
                Ok(Code {
                    value,
                    valid_from,
                    valid_to,
                })
            })
            .collect()
    }

    fn add(
        &mut self,
        key: usize,
        accounts: &[CredentialData],
        force: bool,
    ) -> CliResult<Vec<Credential>> {
        self.require_unlocked(key)?;
        // Refuse before the first write, as the direct path does.
        if !force
            && accounts.iter().any(|a| {
                self.accounts[key]
                    .iter()
                    .any(|e| e.credential.raw_id == a.id.to_bytes())
            })
        {
            return Err(OathError::AlreadyExists.into());
        }
        let device = self.device_paths[key].clone();
        let mut added = Vec::new();
        for account in accounts {
            let secret = zeroize::Zeroizing::new(account.secret.to_vec());
            let mut credential: HashMap<&str, Value<'_>> = HashMap::from([
                ("name", Value::from(account.id.name.as_str())),
                ("secret", Value::from(secret.as_slice())),
                ("type", Value::from(account.oath_type.name())),
                ("algorithm", Value::from(account.algorithm.name())),
                ("digits", Value::from(u32::from(account.digits))),
                ("period", Value::from(account.id.period.max(1))),
                ("counter", Value::from(account.counter)),
                ("touch", Value::from(account.touch)),
            ]);
            if let Some(issuer) = &account.id.issuer {
                credential.insert("issuer", Value::from(issuer.as_str()));
            }
            let options: HashMap<&str, Value<'_>> = HashMap::from([
                ("device", Value::from(device.as_ref())),
                ("overwrite", Value::from(force)),
            ]);
            let _paths: Vec<OwnedObjectPath> = self.call(
                ROOT_PATH,
                MANAGER_IFACE,
                "AddAccount",
                &(credential, options),
            )?;
            added.push(Credential {
                raw_id: account.id.to_bytes(),
                id: account.id.clone(),
                oath_type: account.oath_type,
                algorithm: Some(account.algorithm),
                digits: Some(account.digits),
                touch: Some(account.touch),
            });
        }
        Ok(added)
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
    }

    fn forget(&mut self, key: usize) -> CliResult<()> {
        let path = self.device_paths[key].clone();
        self.call(path.as_str(), DEVICE_IFACE, "Forget", &())
    }

    fn reset(&mut self, key: usize) -> CliResult<()> {
        let path = self.device_paths[key].clone();
        self.call(path.as_str(), DEVICE_IFACE, "Reset", &())
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
