//! FIDO2 keys in `devices` (authenticatorGetInfo through `ctap-hid-fido2`) and
//! `devices --identify`.

use super::GlobalArgs;
use super::backend;
use super::error::{CliError, CliResult};
use super::output::print_json;
use super::virtual_key::fido_exit_code;
use crate::fido::ctap::{self, FidoKeyInfo};

/// The FIDO HID authenticators connected now (none, quietly, without hidraw).
pub fn list() -> Vec<FidoKeyInfo> {
    ctap::list()
}

/// `devices --json` entries: kind "FIDO2", id = the hidraw node.
pub fn json(keys: &[FidoKeyInfo]) -> Vec<serde_json::Value> {
    keys.iter()
        .map(|key| {
            let mut value = serde_json::to_value(key).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("id".into(), key.path.clone().into());
                object.insert("kind".into(), "FIDO2".into());
            }
            value
        })
        .collect()
}

/// One line per FIDO2 key (after the OATH keys), or the JSON array alone.
pub fn print(global: &GlobalArgs, keys: &[FidoKeyInfo]) -> CliResult<()> {
    if global.json {
        return Ok(print_json(&json(keys))?);
    }
    for key in keys {
        if let Some(error) = &key.error {
            println!("{}  FIDO2 {}  ({error})", key.path, key.product);
            continue;
        }
        let pin = match key.pin_set {
            Some(true) => "PIN set",
            Some(false) => "no PIN",
            None => "no clientPIN",
        };
        println!(
            "{}  FIDO2 {}  AAGUID {}  {}  firmware {}  {}  hmac-secret {}",
            key.path,
            key.product,
            key.aaguid,
            key.versions.join(","),
            key.firmware,
            pin,
            if key.hmac_secret { "yes" } else { "no" },
        );
    }
    Ok(())
}

/// `devices --identify ID`: a FIDO2 key by hidraw node (WINK, else authenticatorSelection),
/// else the OATH key with that id (through the daemon when it serves it).
pub fn identify(global: &GlobalArgs, id: &str) -> CliResult<()> {
    if id.starts_with("/dev/") {
        ctap::identify(std::path::Path::new(id)).map_err(|error| CliError::Coded {
            code: fido_exit_code(&error),
            message: error.to_string(),
        })?;
        eprintln!("FIDO2 key {id} is showing itself");
        return Ok(());
    }
    let mut global = global.clone();
    global.device = Some(id.to_owned());
    let mut backend = backend::open(&global)?;
    let index = backend.single()?;
    backend.identify(index)?;
    eprintln!("Key {id} is showing itself");
    Ok(())
}
