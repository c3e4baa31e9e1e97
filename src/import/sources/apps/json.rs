//! A JSON tree whose strings and numbers are wiped when dropped; field readers are in
//! [`super::fields`].

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use zeroize::{Zeroize, Zeroizing};

use crate::import::{InputError, Location};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Any JSON value. Strings are [`Zeroizing`] and numbers are wiped on drop, because any of
/// them may be (part of) a seed: FreeOTP+ stores seeds as lists of numbers.
pub(super) enum Json {
    Null,
    Bool(bool),
    Uint(u64),
    Negative(i64),
    Float(f64),
    Str(Zeroizing<String>),
    Array(Vec<Json>),
    /// In file order; [`parse`] refuses duplicate keys.
    Object(Vec<(String, Json)>),
}

impl Drop for Json {
    fn drop(&mut self) {
        match self {
            Json::Uint(number) => number.zeroize(),
            Json::Negative(number) => number.zeroize(),
            Json::Float(number) => number.zeroize(),
            _ => {}
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Uint(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(u64::try_from(value).map_or(Json::Negative(value), Json::Uint))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(Json::Float(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::Str(Zeroizing::new(value.to_owned())))
    }
    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::Str(Zeroizing::new(value)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            fields.push((key, value));
        }
        let mut keys: Vec<&str> = fields.iter().map(|(key, _)| key.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(de::Error::custom("duplicate key"));
        }
        Ok(Json::Object(fields))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// True when the bytes look like JSON: optional UTF-8 BOM, whitespace, then `{` or `[`.
pub(super) fn looks_like_json(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    bytes
        .iter()
        .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|byte| matches!(byte, b'{' | b'['))
}

/// Parses a whole document (a UTF-8 BOM is skipped). A document that is the file itself is
/// reported at its line (`field` None); one found inside a field (a decrypted vault) names
/// the field and gives line and column in the text. serde_json's messages are never shown:
/// they quote the input.
pub(super) fn parse(bytes: &[u8], at: &Location, field: Option<&str>) -> Result<Json, InputError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|error| {
        let problem = match error.classify() {
            Category::Eof => "the JSON ends too early",
            Category::Syntax => "not valid JSON",
            Category::Data => "a key appears twice in one JSON object",
            Category::Io => "could not be read",
        };
        let (line, column) = (error.line(), error.column());
        match field {
            Some(field) => at.error(
                Some(field),
                format!("{problem} (line {line}, column {column})"),
            ),
            None if line > 0 => at
                .at_line(line)
                .error(None, format!("{problem} (column {column})")),
            None => at.error(None, problem),
        }
    })
}

/// A JSON object and its path from the document root (`"info."`, `""` at the top).
#[derive(Clone)]
pub(super) struct Obj<'a> {
    fields: &'a [(String, Json)],
    path: String,
}

impl<'a> Obj<'a> {
    pub(super) fn new(json: &'a Json, path: impl Into<String>) -> Option<Self> {
        match json {
            Json::Object(fields) => Some(Self {
                fields,
                path: path.into(),
            }),
            _ => None,
        }
    }

    /// The value of `key`; a `null` counts as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Json> {
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
            .filter(|value| !matches!(value, Json::Null))
    }

    /// `key` with this object's path in front, for error messages.
    pub(super) fn field(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }
}
