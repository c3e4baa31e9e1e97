//! `AddAccount` and `ImportAccounts` on the import pipeline: credential dictionaries become
//! planned accounts, every target key is planned before any is written, and a failure on a
//! later key takes this call's accounts off the earlier ones.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zeroize::Zeroizing;

use super::Shared;
use super::error::{DaemonError, DaemonResult};
use crate::core::CoreError;
use crate::import::plan::{Planned, ProblemKind, Problems, prepare};
use crate::import::sources::text::{UriAccounts, parse_uri};
use crate::import::{InputErrors, Location};
use crate::oath::consts::{DEFAULT_DIGITS, DEFAULT_PERIOD};
use crate::oath::{CredentialData, CredentialId};
use crate::otp::{HashAlgorithm, OathType};

pub type Dict = HashMap<String, OwnedValue>;

pub fn invalid(message: impl Into<String>) -> DaemonError {
    DaemonError::InvalidInput(message.into())
}

/// A typed value of a dictionary; a wrong type names the key, never the value.
pub fn get<'a, T>(dict: &'a Dict, key: &str) -> DaemonResult<Option<T>>
where
    T: TryFrom<&'a OwnedValue>,
{
    match dict.get(key) {
        None => Ok(None),
        Some(value) => T::try_from(value)
            .map(Some)
            .map_err(|_| invalid(format!("{key:?} has the wrong type"))),
    }
}

/// The accounts one credential dictionary describes: "uri" (s; an otpauth:// or
/// otpauth-migration:// URI, so possibly several), or "name", "issuer" (s), "secret" (ay),
/// "type", "algorithm" (s), "digits", "period", "counter" (u), "touch" (b). "source" (s)
/// names where the caller read it, for messages.
pub fn accounts_from(dict: &Dict, entry: usize) -> DaemonResult<Vec<Planned>> {
    let source = get::<&str>(dict, "source")?
        .map(str::to_owned)
        .unwrap_or_else(|| format!("credential {entry}"));
    let at = Location::source(&source);
    let touch = get::<bool>(dict, "touch")?.unwrap_or(false);
    if let Some(uri) = get::<&str>(dict, "uri")? {
        let mut found = UriAccounts::default();
        let mut errors = Vec::new();
        if !parse_uri(uri, &at, &mut found, &mut errors) {
            errors.push(at.error(Some("uri"), "not an otpauth:// or otpauth-migration:// URI"));
        }
        if !errors.is_empty() {
            return Err(invalid(InputErrors(errors).to_string()));
        }
        return found
            .accounts
            .into_iter()
            .map(|spec| {
                let uri = spec.account;
                Ok(Planned {
                    at: spec.at,
                    data: CredentialData {
                        id: CredentialId::new(
                            uri.issuer.as_deref(),
                            &uri.name,
                            uri.oath_type,
                            uri.period,
                        ),
                        oath_type: uri.oath_type,
                        algorithm: uri.algorithm,
                        digits: uri.digits,
                        secret: uri.secret.clone(),
                        counter: u32::try_from(uri.counter)
                            .map_err(|_| invalid(format!("{at}: counter: too large")))?,
                        touch,
                    },
                })
            })
            .collect();
    }
    let name = get::<&str>(dict, "name")?
        .ok_or_else(|| invalid(format!("{at}: give \"uri\", or \"name\" and \"secret\"")))?;
    let secret: Zeroizing<Vec<u8>> = match dict.get("secret") {
        Some(value) => Zeroizing::new(
            value
                .try_clone()
                .ok()
                .and_then(|v| <Vec<u8>>::try_from(v).ok())
                .ok_or_else(|| invalid(format!("{at}: secret: must be a byte array (ay)")))?,
        ),
        None => return Err(invalid(format!("{at}: secret: missing"))),
    };
    let oath_type = match get::<&str>(dict, "type")? {
        Some(text) => text
            .parse::<OathType>()
            .map_err(|_| invalid(format!("{at}: type: expected totp or hotp")))?,
        None => OathType::Totp,
    };
    let algorithm = match get::<&str>(dict, "algorithm")? {
        Some(text) => text
            .parse::<HashAlgorithm>()
            .map_err(|_| invalid(format!("{at}: algorithm: expected SHA1, SHA256 or SHA512")))?,
        None => HashAlgorithm::Sha1,
    };
    let digits = get::<u32>(dict, "digits")?.unwrap_or(u32::from(DEFAULT_DIGITS));
    let period = get::<u32>(dict, "period")?.unwrap_or(DEFAULT_PERIOD);
    Ok(vec![Planned {
        at: at.clone(),
        data: CredentialData {
            id: CredentialId::new(get::<&str>(dict, "issuer")?, name, oath_type, period),
            oath_type,
            algorithm,
            digits: u8::try_from(digits)
                .map_err(|_| invalid(format!("{at}: digits: expected 6, 7 or 8")))?,
            secret,
            counter: get::<u32>(dict, "counter")?.unwrap_or(0),
            touch,
        },
    }])
}

/// A refused plan as the D-Bus error clients map to exit 2 (input) or 8 (the key).
pub fn refused(problems: &Problems) -> DaemonError {
    match problems.kind() {
        ProblemKind::Input => DaemonError::InvalidInput(problems.to_string()),
        ProblemKind::Unsupported => DaemonError::NotSupported(problems.to_string()),
    }
}

/// Plan on every target key, then write each; returns the new accounts' object paths.
pub async fn import(
    shared: &Shared,
    connection: &Connection,
    planned: Vec<Planned>,
    targets: Vec<String>,
    overwrite: bool,
    dry_run: bool,
) -> DaemonResult<Vec<OwnedObjectPath>> {
    let accounts = Arc::new(prepare(planned).map_err(|p| refused(&p))?);
    let devices: Vec<_> = shared
        .manager
        .devices()
        .into_iter()
        .filter(|d| targets.contains(&d.info.id))
        .collect();
    let mut problems = Vec::new();
    for device in &devices {
        let accounts = accounts.clone();
        match device
            .handle
            .run(move |worker| worker.import(&accounts, overwrite, true))
            .await
        {
            Ok(_) => {}
            Err(CoreError::Refused(p)) => problems.extend(p.0),
            Err(other) => return Err(other.into()),
        }
    }
    if !problems.is_empty() {
        return Err(refused(&Problems(problems)));
    }
    if dry_run {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for device in &devices {
        let job_accounts = accounts.clone();
        let result = device
            .handle
            .run(move |worker| worker.import(&job_accounts, overwrite, false))
            .await;
        match result {
            Ok(credentials) => written.push((device.clone(), credentials)),
            Err(error) => {
                for (earlier, credentials) in &written {
                    for credential in credentials.clone() {
                        let _ = earlier
                            .handle
                            .run(move |worker| worker.delete(&credential))
                            .await;
                    }
                }
                return Err(error.into());
            }
        }
    }
    let mut paths = Vec::new();
    for (device, credentials) in &written {
        super::refresh_accounts(shared, connection, &device.info.id).await?;
        let registry = shared.registry.lock().await;
        paths.extend(
            credentials
                .iter()
                .filter_map(|c| registry.account_path(&device.info.id, &c.raw_id)),
        );
    }
    Ok(paths)
}
