//! The daemon as a backend: the same data the direct path reads, over D-Bus.

mod codes;
mod objects;
mod props;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use tokio::runtime::Runtime;
use tracing::debug;
use zbus::Connection;
use zbus::zvariant::{OwnedObjectPath, Value};
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::backend::Backend;
use super::error::{CliError, CliResult};
use super::keys::{Key, KeyFilter, Keys};
use crate::daemon::{BUS_NAME, ROOT_PATH};
use crate::import::plan::Planned;
use crate::oath::{Code, CodeEntry, Credential, CredentialId, OathError};
use codes::at_for_daemon;
use props::{Properties, from_dbus};

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

    /// A key the daemon holds locked: ask for its password on a terminal and unlock it in
    /// the daemon (which keeps it in memory); without a terminal, fail as direct mode does.
    pub fn ensure_unlocked(&mut self, key: usize) -> CliResult<()> {
        if !self.keys[key].locked {
            return Ok(());
        }
        // The daemon learns of a password another program removed only when it reads the
        // key again.
        let id = self.keys[key].id.clone();
        self.refresh_codes()?;
        match self.keys.get(key) {
            Some(k) if k.id == id && !k.locked => return Ok(()),
            Some(k) if k.id == id => {}
            _ => return Err(CliError::NoKey(format!("key {id} was removed"))),
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
    /// `--direct`) wrote since: see [`DaemonBackend::refresh_codes`].
    fn refresh(&mut self) -> CliResult<bool> {
        self.refresh_codes()?;
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
