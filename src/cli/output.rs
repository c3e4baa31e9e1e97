//! Stable JSON shapes (documented in the README) and plain-text rendering.

use serde::Serialize;

use crate::oath::Credential;
use crate::otp::OathType;

use super::keys::Key;

/// One account in `list` / `code` output.
#[derive(Debug, Serialize)]
pub struct AccountJson<'a> {
    pub device: &'a str,
    pub id: String,
    pub issuer: Option<&'a str>,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub oath_type: &'static str,
    pub algorithm: Option<&'static str>,
    pub digits: Option<u8>,
    pub period: Option<u32>,
    pub touch: Option<bool>,
    pub hidden: bool,
}

impl<'a> AccountJson<'a> {
    pub fn new(key: &'a Key, credential: &'a Credential) -> Self {
        Self {
            device: &key.id,
            id: credential.id_string(),
            issuer: credential.id.issuer.as_deref(),
            name: &credential.id.name,
            oath_type: credential.oath_type.name(),
            algorithm: credential.algorithm.map(|a| a.name()),
            digits: credential.digits,
            period: (credential.oath_type == OathType::Totp).then_some(credential.id.period),
            touch: credential.touch,
            hidden: credential.id.is_hidden(),
        }
    }
}

/// One code in `code` output; `code` is null when touch or HOTP was not calculated.
#[derive(Debug, Serialize)]
pub struct CodeJson<'a> {
    #[serde(flatten)]
    pub account: AccountJson<'a>,
    pub code: Option<&'a str>,
    pub valid_from: Option<u64>,
    pub valid_to: Option<u64>,
}

pub fn print_json(value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    println!("{text}");
    Ok(())
}
