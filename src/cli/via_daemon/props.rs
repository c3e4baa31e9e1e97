//! Reading the daemon's property dictionaries and errors into the CLI's types.

use std::collections::HashMap;

use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::super::error::{CliError, exit};
use crate::oath::{Credential, CredentialId, Version};
use crate::otp::{HashAlgorithm, OathType};

pub type Properties = HashMap<String, OwnedValue>;

pub fn text(props: &Properties, name: &str) -> String {
    props
        .get(name)
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or_default()
        .to_owned()
}

/// An `as` property (empty when absent or of another type).
pub fn texts(props: &Properties, name: &str) -> Vec<String> {
    props
        .get(name)
        .and_then(|v| <Vec<String>>::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default()
}

pub fn number(props: &Properties, name: &str) -> u32 {
    props
        .get(name)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

pub fn big_number(props: &Properties, name: &str) -> u64 {
    props
        .get(name)
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

pub fn flag(props: &Properties, name: &str) -> bool {
    props
        .get(name)
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false)
}

pub fn path(props: &Properties, name: &str) -> Option<OwnedObjectPath> {
    props
        .get(name)
        .and_then(|v| OwnedObjectPath::try_from(v.try_clone().ok()?).ok())
}

pub fn parse_version(text: &str) -> Version {
    let mut parts = text.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
    Version(
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

fn oath_type(name: &str) -> OathType {
    if name == "hotp" {
        OathType::Hotp
    } else {
        OathType::Totp
    }
}

/// An account as the key reported it: from Account properties (`Id`, `Type`, …) or a
/// GetCodes entry (`id`, `type`, …), which differ only in the case of the names.
pub fn credential(props: &Properties, capitalised: bool) -> Credential {
    let field = |name: &str| {
        if capitalised {
            let mut chars = name.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        } else {
            name.to_owned()
        }
    };
    let oath_type = oath_type(&text(props, &field("type")));
    let id = text(props, &field("id"));
    let touch_field = if capitalised {
        "RequiresTouch"
    } else {
        "touch"
    };
    Credential {
        raw_id: id.as_bytes().to_vec(),
        id: CredentialId::parse(id.as_bytes(), oath_type),
        oath_type,
        algorithm: text(props, &field("algorithm"))
            .parse::<HashAlgorithm>()
            .ok(),
        digits: u8::try_from(number(props, &field("digits")))
            .ok()
            .filter(|d| *d != 0),
        touch: Some(flag(props, touch_field)),
    }
}

/// A D-Bus error from the daemon, with the exit code its name stands for (as direct mode).
pub fn from_dbus(error: zbus::Error) -> CliError {
    if let zbus::Error::MethodError(name, message, _) = &error {
        let message = message.clone().unwrap_or_else(|| name.to_string());
        let code = match name.as_str().rsplit('.').next().unwrap_or_default() {
            "NoDevice" | "DeviceRemoved" => exit::NO_KEY,
            "NoSuchAccount" => exit::NO_MATCH,
            "Locked" | "WrongPassword" => exit::PASSWORD,
            "TouchTimeout" => exit::TOUCH_TIMEOUT,
            "NoSpace" | "NotSupported" => exit::UNSUPPORTED,
            "InvalidInput" => exit::USAGE,
            // CardError, AccessDenied and anything unexpected.
            _ => exit::FAILURE,
        };
        return CliError::Daemon { code, message };
    }
    CliError::Daemon {
        code: exit::FAILURE,
        message: format!("the oathbridge daemon did not answer: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_map_to_direct_exit_codes() {
        let code = |name: &str| {
            let error = zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name).expect("error name"),
                Some("why".into()),
                zbus::message::Message::method_call("/", "Ping")
                    .expect("builder")
                    .build(&())
                    .expect("message"),
            );
            from_dbus(error).exit_code()
        };
        let base = "io.github.oathbridge.OathBridge1.Error.";
        assert_eq!(code(&format!("{base}NoDevice")), exit::NO_KEY);
        assert_eq!(code(&format!("{base}DeviceRemoved")), exit::NO_KEY);
        assert_eq!(code(&format!("{base}NoSuchAccount")), exit::NO_MATCH);
        assert_eq!(code(&format!("{base}Locked")), exit::PASSWORD);
        assert_eq!(code(&format!("{base}WrongPassword")), exit::PASSWORD);
        assert_eq!(code(&format!("{base}TouchTimeout")), exit::TOUCH_TIMEOUT);
        assert_eq!(code(&format!("{base}NoSpace")), exit::UNSUPPORTED);
        assert_eq!(code(&format!("{base}NotSupported")), exit::UNSUPPORTED);
        assert_eq!(code(&format!("{base}InvalidInput")), exit::USAGE);
        assert_eq!(code(&format!("{base}CardError")), exit::FAILURE);
        assert_eq!(code(&format!("{base}AccessDenied")), exit::FAILURE);
    }

    #[test]
    fn versions_parse_leniently() {
        assert_eq!(parse_version("5.7.1"), Version(5, 7, 1));
        assert_eq!(parse_version("x"), Version(0, 0, 0));
    }
}
