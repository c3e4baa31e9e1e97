//! Remembered access keys in the Secret Service (GNOME Keyring, KWallet, KeePassXC…).
//!
//! Only the 16-byte key derived from the password is stored, never the password, under
//! the attributes `application=oathbridge`, `device-id=<id>`. The CLI and the daemon share
//! the store. Talks to `org.freedesktop.secrets` directly over zbus with the "plain"
//! session (the bus is local; the secret is a derived key, not the password).

use std::collections::HashMap;

use thiserror::Error;
use zbus::Connection;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};
use zeroize::Zeroizing;

const SERVICE: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_IFACE: &str = "org.freedesktop.Secret.Service";
const COLLECTION_IFACE: &str = "org.freedesktop.Secret.Collection";
const ITEM_IFACE: &str = "org.freedesktop.Secret.Item";
const APPLICATION: &str = "oathbridge";

#[derive(Debug, Error)]
pub enum SecretsError {
    #[error("no Secret Service on the session bus (install and unlock gnome-keyring or KWallet)")]
    Unavailable,
    #[error("the Secret Service keyring is locked; unlock it and try again")]
    Locked,
    #[error("Secret Service error: {0}")]
    Service(String),
}

impl From<zbus::Error> for SecretsError {
    fn from(error: zbus::Error) -> Self {
        match &error {
            zbus::Error::MethodError(name, _, _)
                if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                    || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
            {
                Self::Unavailable
            }
            zbus::Error::MethodError(name, _, _)
                if name.as_str() == "org.freedesktop.Secret.Error.IsLocked" =>
            {
                Self::Locked
            }
            _ => Self::Service(error.to_string()),
        }
    }
}

/// Secret as the Secret Service transports it: (session, parameters, value, content type).
type Secret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

pub struct SecretStore {
    connection: Connection,
    session: OwnedObjectPath,
}

fn attributes(device_id: &str) -> HashMap<&str, &str> {
    HashMap::from([("application", APPLICATION), ("device-id", device_id)])
}

impl SecretStore {
    /// Open a session with the Secret Service on `connection` (the session bus).
    pub async fn open(connection: &Connection) -> Result<Self, SecretsError> {
        let reply = connection
            .call_method(
                Some(SERVICE),
                SERVICE_PATH,
                Some(SERVICE_IFACE),
                "OpenSession",
                &("plain", Value::from("")),
            )
            .await?;
        let (_, session): (OwnedValue, OwnedObjectPath) = reply.body().deserialize()?;
        Ok(Self {
            connection: connection.clone(),
            session,
        })
    }

    pub async fn open_session_bus() -> Result<Self, SecretsError> {
        let connection = Connection::session()
            .await
            .map_err(|_| SecretsError::Unavailable)?;
        Self::open(&connection).await
    }

    async fn call<B, R>(
        &self,
        path: &ObjectPath<'_>,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, SecretsError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        let reply = self
            .connection
            .call_method(Some(SERVICE), path, Some(iface), method, body)
            .await?;
        Ok(reply.body().deserialize()?)
    }

    async fn find(&self, device_id: &str) -> Result<Vec<OwnedObjectPath>, SecretsError> {
        let root = ObjectPath::from_static_str_unchecked(SERVICE_PATH);
        let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) = self
            .call(
                &root,
                SERVICE_IFACE,
                "SearchItems",
                &(attributes(device_id),),
            )
            .await?;
        if unlocked.is_empty() && !locked.is_empty() {
            return Err(SecretsError::Locked);
        }
        Ok(unlocked)
    }

    /// The remembered key for `device_id`, if any.
    pub async fn get(&self, device_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretsError> {
        let Some(item) = self.find(device_id).await?.into_iter().next() else {
            return Ok(None);
        };
        let (_, _, value, _): Secret = self
            .call(&item, ITEM_IFACE, "GetSecret", &(&self.session,))
            .await?;
        Ok(Some(Zeroizing::new(value)))
    }

    /// Store (or replace) the key for `device_id` in the default collection.
    pub async fn store(&self, device_id: &str, key: &[u8]) -> Result<(), SecretsError> {
        let root = ObjectPath::from_static_str_unchecked(SERVICE_PATH);
        let collection: OwnedObjectPath = self
            .call(&root, SERVICE_IFACE, "ReadAlias", &("default",))
            .await?;
        if collection.as_str() == "/" {
            return Err(SecretsError::Service(
                "no default keyring collection".into(),
            ));
        }
        let mut properties: HashMap<&str, Value<'_>> = HashMap::new();
        properties.insert(
            "org.freedesktop.Secret.Item.Label",
            Value::from(format!("oathbridge: OATH access key for {device_id}")),
        );
        properties.insert(
            "org.freedesktop.Secret.Item.Attributes",
            Value::from(attributes(device_id)),
        );
        // Borrowed, not copied: no unwiped copy of the key is left behind on our heap.
        let secret = (&self.session, &[] as &[u8], key, "application/octet-stream");
        let (_item, prompt): (OwnedObjectPath, OwnedObjectPath) = self
            .call(
                &collection,
                COLLECTION_IFACE,
                "CreateItem",
                &(properties, secret, true),
            )
            .await?;
        if prompt.as_str() != "/" {
            return Err(SecretsError::Locked);
        }
        Ok(())
    }

    /// Drop every remembered key for `device_id`. Returns whether one existed.
    pub async fn forget(&self, device_id: &str) -> Result<bool, SecretsError> {
        let items = self.find(device_id).await?;
        for item in &items {
            let _prompt: OwnedObjectPath = self.call(item, ITEM_IFACE, "Delete", &()).await?;
        }
        Ok(!items.is_empty())
    }
}
