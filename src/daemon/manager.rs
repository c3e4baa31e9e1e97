//! `io.github.oathbridge.OathBridge1.Manager` at the root object: codes in one round trip,
//! and adding accounts.

use std::collections::HashMap;

use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, interface};
use zeroize::Zeroizing;

use super::Shared;
use super::access::check_caller;
use super::error::{DaemonError, DaemonResult};
use crate::core::CoreError;
use crate::oath::consts::{DEFAULT_DIGITS, DEFAULT_PERIOD};
use crate::oath::{CodeEntry, CredentialData, CredentialId};
use crate::otp::{HashAlgorithm, OathType, parse_otpauth_uri};

pub struct Manager {
    pub shared: Shared,
}

type Dict = HashMap<String, OwnedValue>;

fn invalid(message: impl Into<String>) -> DaemonError {
    DaemonError::InvalidInput(message.into())
}

fn get<'a, T>(dict: &'a Dict, key: &str) -> DaemonResult<Option<T>>
where
    T: TryFrom<&'a OwnedValue>,
{
    match dict.get(key) {
        None => Ok(None),
        Some(value) => T::try_from(value)
            .map(Some)
            .map_err(|_| invalid(format!("option {key:?} has the wrong type"))),
    }
}

fn value<'a>(v: impl Into<Value<'a>>) -> OwnedValue {
    // Plain values (strings, numbers, paths) always convert; fds are never used here.
    v.into()
        .try_to_owned()
        .unwrap_or_else(|_| OwnedValue::from(0u32))
}

/// Matching like the CLI: an exact id wins, else a case-insensitive substring.
fn matching(entries: &[CodeEntry], query: Option<&str>, show_hidden: bool) -> Vec<usize> {
    let visible = |e: &CodeEntry| show_hidden || !e.credential.id.is_hidden();
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return (0..entries.len())
            .filter(|i| visible(&entries[*i]))
            .collect();
    };
    let exact: Vec<usize> = (0..entries.len())
        .filter(|i| entries[*i].credential.id_string() == query)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let needle = query.to_lowercase();
    (0..entries.len())
        .filter(|i| visible(&entries[*i]))
        .filter(|i| {
            entries[*i]
                .credential
                .id_string()
                .to_lowercase()
                .contains(&needle)
        })
        .collect()
}

/// Build the credential an AddAccount call describes.
fn credential_from(dict: &Dict) -> Result<CredentialData, DaemonError> {
    if let Some(uri) = get::<&str>(dict, "uri")? {
        let parsed = parse_otpauth_uri(uri).map_err(|e| invalid(e.to_string()))?;
        let counter = u32::try_from(parsed.counter).map_err(|_| invalid("counter too large"))?;
        let data = CredentialData {
            id: CredentialId::new(
                parsed.issuer.as_deref(),
                &parsed.name,
                parsed.oath_type,
                parsed.period,
            ),
            oath_type: parsed.oath_type,
            algorithm: parsed.algorithm,
            digits: parsed.digits,
            secret: parsed.secret.clone(),
            counter,
            touch: get::<bool>(dict, "touch")?.unwrap_or(false),
        };
        data.validate().map_err(|e| invalid(e.to_string()))?;
        return Ok(data);
    }
    let name = get::<&str>(dict, "name")?
        .ok_or_else(|| invalid("give \"uri\" or \"name\" and \"secret\""))?;
    let secret: Zeroizing<Vec<u8>> = match dict.get("secret") {
        Some(value) => Zeroizing::new(
            <Vec<u8>>::try_from(value.try_clone().map_err(|_| invalid("bad secret"))?)
                .map_err(|_| invalid("\"secret\" must be a byte array (ay)"))?,
        ),
        None => return Err(invalid("missing \"secret\"")),
    };
    let oath_type = match get::<&str>(dict, "type")? {
        Some(text) => text.parse::<OathType>().map_err(invalid)?,
        None => OathType::Totp,
    };
    let algorithm = match get::<&str>(dict, "algorithm")? {
        Some(text) => text.parse::<HashAlgorithm>().map_err(invalid)?,
        None => HashAlgorithm::Sha1,
    };
    let digits = get::<u32>(dict, "digits")?.unwrap_or(u32::from(DEFAULT_DIGITS));
    let period = get::<u32>(dict, "period")?.unwrap_or(DEFAULT_PERIOD);
    let data = CredentialData {
        id: CredentialId::new(get::<&str>(dict, "issuer")?, name, oath_type, period),
        oath_type,
        algorithm,
        digits: u8::try_from(digits).map_err(|_| invalid("bad digits"))?,
        secret,
        counter: get::<u32>(dict, "counter")?.unwrap_or(0),
        touch: get::<bool>(dict, "touch")?.unwrap_or(false),
    };
    data.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(data)
}

#[interface(name = "io.github.oathbridge.OathBridge1.Manager")]
impl Manager {
    /// Codes of every unlocked key in one call. Options: "query" (s), "show_hidden" (b),
    /// "timestamp" (t, unix seconds; default now). Entries: "account" (o), "device" (o),
    /// "id", "issuer", "name", "type" (s), "touch" (b), "algorithm" (s) when the key told
    /// it, and for accounts the key calculated: "code" (s), "valid_from", "valid_to" (t).
    #[zbus(out_args("codes"))]
    async fn get_codes(
        &self,
        options: Dict,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<Dict>, DaemonError> {
        check_caller(connection, &header).await?;
        let query = get::<&str>(&options, "query")?.map(str::to_owned);
        let show_hidden = get::<bool>(&options, "show_hidden")?.unwrap_or(false);
        let timestamp = get::<u64>(&options, "timestamp")?.filter(|t| *t != 0);
        let mut out = Vec::new();
        for device in self.shared.manager.devices() {
            let id = device.info.id.clone();
            let entries = match device
                .handle
                .run(move |worker| worker.codes(timestamp))
                .await
            {
                Ok(entries) => entries,
                // Locked or vanished keys contribute nothing; the others still answer.
                Err(CoreError::Locked | CoreError::DeviceRemoved) => continue,
                Err(error) => return Err(error.into()),
            };
            let paths = super::account_paths(&self.shared, connection, &id, &entries).await?;
            let Some(device_path) = self.shared.registry.lock().await.device_path(&id) else {
                continue;
            };
            for index in matching(&entries, query.as_deref(), show_hidden) {
                let entry = &entries[index];
                let credential = &entry.credential;
                let mut dict = Dict::new();
                if let Some(path) = &paths[index] {
                    dict.insert("account".into(), value(path.clone()));
                }
                dict.insert("device".into(), value(device_path.clone()));
                dict.insert("id".into(), value(credential.id_string()));
                dict.insert(
                    "issuer".into(),
                    value(credential.id.issuer.clone().unwrap_or_default()),
                );
                dict.insert("name".into(), value(credential.id.name.clone()));
                dict.insert(
                    "type".into(),
                    value(credential.oath_type.name().to_lowercase()),
                );
                dict.insert("touch".into(), value(credential.touch == Some(true)));
                if let Some(algorithm) = credential.algorithm {
                    dict.insert("algorithm".into(), value(algorithm.name().to_lowercase()));
                }
                if let Some(code) = &entry.code {
                    dict.insert("code".into(), value(code.value.clone()));
                    dict.insert("valid_from".into(), value(code.valid_from));
                    dict.insert("valid_to".into(), value(code.valid_to));
                }
                out.push(dict);
            }
        }
        Ok(out)
    }

    /// Put an account on a key. Credential: "uri" (s), or "name", "issuer" (s), "secret"
    /// (ay), "type", "algorithm" (s), "digits", "period", "counter" (u), "touch" (b).
    /// Options: "device" (o), "all_devices" (b), "overwrite" (b). Returns the new accounts.
    #[zbus(out_args("accounts"))]
    async fn add_account(
        &self,
        credential: Dict,
        options: Dict,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<OwnedObjectPath>, DaemonError> {
        check_caller(connection, &header).await?;
        let data = credential_from(&credential)?;
        let overwrite = get::<bool>(&options, "overwrite")?.unwrap_or(false);
        let all = get::<bool>(&options, "all_devices")?.unwrap_or(false);
        let devices = self.shared.manager.devices();
        let device_path = match options.get("device") {
            None => None,
            Some(v) => Some(
                v.try_clone()
                    .ok()
                    .and_then(|v| OwnedObjectPath::try_from(v).ok())
                    .ok_or_else(|| invalid("option \"device\" must be an object path"))?,
            ),
        };
        let targets = if let Some(path) = device_path {
            let registry = self.shared.registry.lock().await;
            let id = registry
                .device_for_path(&path)
                .ok_or_else(|| DaemonError::NoDevice(format!("no key at {path}")))?;
            devices.into_iter().filter(|d| d.info.id == id).collect()
        } else if all || devices.len() == 1 {
            devices
        } else if devices.is_empty() {
            return Err(DaemonError::NoDevice("no key connected".into()));
        } else {
            return Err(invalid(
                "several keys connected: pass \"device\" or \"all_devices\"",
            ));
        };
        let mut added = Vec::new();
        for device in targets {
            let data = data.clone();
            let credential = device
                .handle
                .run(move |worker| worker.put(&data, overwrite))
                .await?;
            super::refresh_accounts(&self.shared, connection, &device.info.id).await?;
            if let Some(path) = self
                .shared
                .registry
                .lock()
                .await
                .account_path(&device.info.id, &credential.raw_id)
            {
                added.push(path);
            }
        }
        Ok(added)
    }

    /// The daemon's version.
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_build_a_credential_and_bad_ones_are_refused() {
        let mut dict = Dict::new();
        dict.insert("name".into(), value("alice"));
        dict.insert("issuer".into(), value("GitHub"));
        dict.insert("secret".into(), value(b"12345678901234567890".to_vec()));
        dict.insert("digits".into(), value(8u32));
        let data = credential_from(&dict).unwrap();
        assert_eq!(data.id.to_string(), "GitHub:alice");
        assert_eq!(data.digits, 8);
        dict.insert("digits".into(), value(9u32));
        assert!(credential_from(&dict).is_err());
        dict.insert("digits".into(), value("8"));
        assert!(credential_from(&dict).is_err(), "wrong type");
    }
}
