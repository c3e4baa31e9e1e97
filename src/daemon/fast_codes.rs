//! The Manager interface as served: `GetCodes` replies are copied together from the
//! prebuilt encodings of [`super::codes_reply`] instead of being serialised per call (zbus
//! serialises a reply twice, and a D-Bus variant costs a signature parse each time); every
//! other method, property and the introspection go to the `#[interface]` implementation
//! in [`super::manager`], which also stays the reference for GetCodes' shape: the copied
//! body is byte for byte its serialisation (tests in `codes_reply`).
//!
//! Serve it instead of `Manager`: `builder.serve_at(ROOT_PATH, FastCodes::new(manager))`.
//! Like [`super::access::ObjectManager`], this implements zbus's `Interface` by hand and
//! forwards to zbus's own generated implementation.

use std::collections::HashMap;

use zbus::message::{Flags, Header};
use zbus::names::MemberName;
use zbus::object_server::{DispatchResult2, Interface, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, Message, ObjectServer};

use super::access::check_caller;
use super::codes_reply::ENDIAN;
use super::import::Dict;
use super::manager::Manager;

pub struct FastCodes {
    inner: Manager,
}

impl FastCodes {
    pub fn new(inner: Manager) -> Self {
        Self { inner }
    }

    /// GetCodes: the same checks and answer as [`Manager`]'s, sent from prebuilt bytes.
    async fn get_codes(&self, connection: &Connection, message: &Message) -> zbus::fdo::Result<()> {
        let header = message.header();
        let options: Dict = message.body().deserialize().map_err(|e| {
            zbus::fdo::Error::InvalidArgs(format!("GetCodes takes one a{{sv}}: {e}"))
        })?;
        let answer = match check_caller(connection, &header).await {
            Ok(()) => self.inner.codes(&options, connection).await,
            Err(denied) => Err(denied),
        };
        if header.primary().flags().contains(Flags::NoReplyExpected) {
            return Ok(());
        }
        let codes = match answer {
            Ok(codes) => codes,
            Err(error) => {
                connection.reply_dbus_error(&header, error).await?;
                return Ok(());
            }
        };
        let reply = match codes.body() {
            // SAFETY: the body is the aa{sv} encoding of `codes` in ENDIAN, byte for byte
            // what serialising it would give (checked by codes_reply's tests), and it has
            // no file descriptors.
            Some(body) => unsafe {
                Message::method_return(&header)?
                    .endian(ENDIAN)
                    .build_raw_body(&body, "aa{sv}", Vec::new())?
            },
            None => Message::method_return(&header)?.build(&(codes,))?,
        };
        connection.send(&reply).await?;
        Ok(())
    }
}

#[zbus::export::async_trait::async_trait]
impl Interface for FastCodes {
    super::access::forward_interface_basics!(Manager);

    async fn get(
        &self,
        property_name: &str,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<zbus::fdo::Result<OwnedValue>> {
        self.inner
            .get(property_name, server, connection, header, emitter)
            .await
    }

    async fn get_all(
        &self,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> zbus::fdo::Result<HashMap<String, OwnedValue>> {
        self.inner
            .get_all(server, connection, header, emitter)
            .await
    }

    async fn set_mut(
        &mut self,
        property_name: &str,
        value: &Value<'_>,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<zbus::fdo::Result<()>> {
        self.inner
            .set_mut(property_name, value, server, connection, header, emitter)
            .await
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        message: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult2<'call> {
        if name.as_str() == "GetCodes" {
            return DispatchResult2::Async(Box::pin(self.get_codes(connection, message)));
        }
        self.inner.call(server, connection, message, name)
    }
}
