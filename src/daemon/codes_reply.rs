//! GetCodes replies built once per key and time step, then reused: a cached answer costs
//! one filter over prebuilt entries and their serialisation, with no per-account lookup,
//! formatting or allocation.
//!
//! A key's entries are memoised on the address of its cached code set (the worker's cache
//! hands out the same `Arc` for every request of one step) and on the registry's
//! generation (object paths change when accounts come and go).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use zbus::zvariant::serialized::Context;
use zbus::zvariant::{Endian, OwnedObjectPath, OwnedValue, Signature, Type, to_bytes};

use crate::oath::CodeEntry;

/// One GetCodes entry, serialised as `a{sv}` with absent fields left out.
#[derive(Debug, Default, Clone)]
pub struct CodeDict {
    pub account: Option<OwnedObjectPath>,
    pub device: Option<OwnedObjectPath>,
    pub id: Option<String>,
    pub issuer: Option<String>,
    pub name: Option<String>,
    /// "totp" or "hotp" (the `type` key).
    pub oath_type: Option<&'static str>,
    pub touch: Option<bool>,
    pub algorithm: Option<&'static str>,
    pub code: Option<String>,
    /// Unix seconds.
    pub valid_from: Option<u64>,
    /// Unix seconds.
    pub valid_to: Option<u64>,
    pub pending: Option<bool>,
}

impl CodeDict {
    /// The entry for one account of the key at `device`.
    pub fn for_entry(
        entry: &CodeEntry,
        account: Option<OwnedObjectPath>,
        device: OwnedObjectPath,
    ) -> Self {
        let credential = &entry.credential;
        Self {
            account,
            device: Some(device),
            id: Some(credential.id_string()),
            issuer: Some(credential.id.issuer.clone().unwrap_or_default()),
            name: Some(credential.id.name.clone()),
            oath_type: Some(credential.oath_type.dbus_name()),
            touch: Some(credential.touch == Some(true)),
            algorithm: credential.algorithm.map(|a| a.dbus_name()),
            code: entry.code.as_ref().map(|c| c.value.clone()),
            valid_from: entry.code.as_ref().map(|c| c.valid_from),
            valid_to: entry.code.as_ref().map(|c| c.valid_to),
            pending: None,
        }
    }

    /// The entry of a key still busy after the caller's wait.
    pub fn pending(device: OwnedObjectPath) -> Self {
        Self {
            device: Some(device),
            pending: Some(true),
            ..Self::default()
        }
    }
}

impl Type for CodeDict {
    const SIGNATURE: &'static Signature = <HashMap<String, OwnedValue> as Type>::SIGNATURE;
}

// By hand rather than derived: each value goes out as a borrowed `Value`, with no
// per-field signature parsing (zbus serialises a reply twice: to size it, then to write).
/// A D-Bus variant whose signature is one fixed letter: the encoding zvariant's own
/// `as_value::Serialize` produces, without formatting a `Signature` for every value.
struct Variant<'a, T: ?Sized>(&'static str, &'a T);

impl<T: Serialize + ?Sized> Serialize for Variant<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut variant = serializer.serialize_struct("Variant", 2)?;
        variant.serialize_field("signature", self.0)?;
        variant.serialize_field("value", self.1)?;
        variant.end()
    }
}

// By hand rather than derived: zbus serialises a reply twice (to size it, then to write
// it), and `Value`s or derived dicts format and parse a signature for every field.
impl Serialize for CodeDict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let present = [
            self.account.is_some(),
            self.device.is_some(),
            self.id.is_some(),
            self.issuer.is_some(),
            self.name.is_some(),
            self.oath_type.is_some(),
            self.touch.is_some(),
            self.algorithm.is_some(),
            self.code.is_some(),
            self.valid_from.is_some(),
            self.valid_to.is_some(),
            self.pending.is_some(),
        ]
        .iter()
        .filter(|p| **p)
        .count();
        let mut map = serializer.serialize_map(Some(present))?;
        let paths = [("account", &self.account), ("device", &self.device)];
        for (key, value) in paths {
            if let Some(path) = value {
                map.serialize_entry(key, &Variant("o", path.as_str()))?;
            }
        }
        let texts = [
            ("id", self.id.as_deref()),
            ("issuer", self.issuer.as_deref()),
            ("name", self.name.as_deref()),
            ("type", self.oath_type),
        ];
        for (key, value) in texts {
            if let Some(text) = value {
                map.serialize_entry(key, &Variant("s", text))?;
            }
        }
        if let Some(touch) = &self.touch {
            map.serialize_entry("touch", &Variant("b", touch))?;
        }
        let texts = [
            ("algorithm", self.algorithm),
            ("code", self.code.as_deref()),
        ];
        for (key, value) in texts {
            if let Some(text) = value {
                map.serialize_entry(key, &Variant("s", text))?;
            }
        }
        let times = [
            ("valid_from", &self.valid_from),
            ("valid_to", &self.valid_to),
        ];
        for (key, value) in times {
            if let Some(seconds) = value {
                map.serialize_entry(key, &Variant("t", seconds))?;
            }
        }
        if let Some(pending) = &self.pending {
            map.serialize_entry("pending", &Variant("b", pending))?;
        }
        map.end()
    }
}

/// Byte order of prebuilt encodings (and of the replies made from them).
pub const ENDIAN: Endian = Endian::Little;

/// One prebuilt entry: the dict and its D-Bus encodings. An `a{sv}` is 4-aligned but its
/// entries are 8-aligned, so its bytes depend only on whether it starts at 0 or 4 modulo
/// 8: both are kept, and a reply body is these encodings copied one after another. None
/// if encoding failed (the reply is then serialised normally).
#[derive(Debug)]
pub struct BuiltEntry {
    pub dict: CodeDict,
    /// Starting at 0 and at 4 modulo 8.
    encoded: Option<[Vec<u8>; 2]>,
}

impl BuiltEntry {
    pub fn new(dict: CodeDict) -> Self {
        let at = |offset| {
            to_bytes(Context::new_dbus(ENDIAN, offset), &dict)
                .ok()
                .map(|bytes| bytes.to_vec())
        };
        let encoded = at(0).zip(at(4)).map(|(even, odd)| [even, odd]);
        Self { dict, encoded }
    }
}

/// One key's prebuilt entries, in the key's order.
pub type Built = Arc<Vec<BuiltEntry>>;

/// A GetCodes reply: slices of prebuilt entries (shared, not copied) and pending entries.
#[derive(Debug, Default)]
pub struct CodeList(Vec<Part>);

#[derive(Debug)]
enum Part {
    All(Built),
    Picked(Built, Vec<usize>),
    One(Box<BuiltEntry>),
}

impl CodeList {
    pub fn push_all(&mut self, built: Built) {
        self.0.push(Part::All(built));
    }

    pub fn push_picked(&mut self, built: Built, picked: Vec<usize>) {
        self.0.push(Part::Picked(built, picked));
    }

    pub fn push(&mut self, entry: CodeDict) {
        self.0.push(Part::One(Box::new(BuiltEntry::new(entry))));
    }

    /// How many entries the reply has.
    pub fn len(&self) -> usize {
        self.0
            .iter()
            .map(|part| match part {
                Part::All(built) => built.len(),
                Part::Picked(_, picked) => picked.len(),
                Part::One(_) => 1,
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> impl Iterator<Item = &BuiltEntry> {
        self.0
            .iter()
            .flat_map(|part| -> Box<dyn Iterator<Item = &BuiltEntry> + '_> {
                match part {
                    Part::All(built) => Box::new(built.iter()),
                    Part::Picked(built, picked) => {
                        Box::new(picked.iter().filter_map(|i| built.get(*i)))
                    }
                    Part::One(entry) => Box::new(std::iter::once(&**entry)),
                }
            })
    }
}

impl CodeList {
    /// The reply body (`aa{sv}`, [`ENDIAN`]) copied together from prebuilt encodings: the
    /// array's byte length, then each entry at a 4-aligned offset (D-Bus specification,
    /// "Marshaling (Wire Format)": arrays). None if an entry has no encoding.
    pub fn body(&self) -> Option<Vec<u8>> {
        let mut body = Vec::with_capacity(
            4 + self
                .entries()
                .map(|e| e.encoded.as_ref().map_or(0, |b| b[0].len() + 8))
                .sum::<usize>(),
        );
        body.extend_from_slice(&[0; 4]);
        for entry in self.entries() {
            body.resize(body.len().next_multiple_of(4), 0);
            let encodings = entry.encoded.as_ref()?;
            body.extend_from_slice(&encodings[usize::from(body.len() % 8 != 0)]);
        }
        let length = u32::try_from(body.len() - 4).ok()?;
        body[..4].copy_from_slice(&length.to_le_bytes());
        Some(body)
    }
}

impl Type for CodeList {
    const SIGNATURE: &'static Signature = <Vec<HashMap<String, OwnedValue>> as Type>::SIGNATURE;
}

impl Serialize for CodeList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for entry in self.entries() {
            seq.serialize_element(&entry.dict)?;
        }
        seq.end()
    }
}

struct Memo {
    /// Kept to compare addresses: a new step or a refreshed set is a new `Arc`.
    codes: Arc<Vec<CodeEntry>>,
    generation: u64,
    built: Built,
}

/// Prebuilt entries per key (by device id), one time step each.
#[derive(Default)]
pub struct ReplyMemo(Mutex<HashMap<String, Memo>>);

impl ReplyMemo {
    /// The entries built for `codes` at registry `generation`, if still current.
    pub fn get(&self, device: &str, codes: &Arc<Vec<CodeEntry>>, generation: u64) -> Option<Built> {
        let memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        memo.get(device)
            .filter(|m| m.generation == generation && Arc::ptr_eq(&m.codes, codes))
            .map(|m| m.built.clone())
    }

    pub fn put(&self, device: &str, codes: Arc<Vec<CodeEntry>>, generation: u64, built: Built) {
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        memo.insert(
            device.to_owned(),
            Memo {
                codes,
                generation,
                built,
            },
        );
    }

    /// Forget a key that left.
    pub fn forget(&self, device: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::LE;
    use zbus::zvariant::serialized::Format;

    fn sample() -> CodeDict {
        CodeDict {
            account: Some(OwnedObjectPath::try_from("/a/1").unwrap()),
            device: Some(OwnedObjectPath::try_from("/d/x").unwrap()),
            id: Some("GitHub:alice".into()),
            issuer: Some("GitHub".into()),
            name: Some("alice".into()),
            oath_type: Some("totp"),
            touch: Some(false),
            algorithm: None,
            code: Some("123456".into()),
            valid_from: Some(30),
            valid_to: Some(60),
            pending: None,
        }
    }

    /// The hand-written encoding decodes as the `a{sv}` a client reads, absent keys absent.
    #[test]
    fn encodes_as_a_dict_of_variants() {
        let mut list = CodeList::default();
        let mut second = sample();
        second.touch = Some(true);
        second.code = None;
        second.name = Some("bob, whose name is long enough to need other padding".into());
        let built: Built = Arc::new(vec![BuiltEntry::new(sample()), BuiltEntry::new(second)]);
        list.push_picked(built.clone(), vec![1]);
        list.push_all(built);
        list.push(CodeDict::pending(
            OwnedObjectPath::try_from("/d/y").unwrap(),
        ));
        assert_eq!(list.len(), 4);
        let ctxt = Context::new(Format::DBus, LE, 0);
        let bytes = to_bytes(ctxt, &list).unwrap();
        assert_eq!(
            list.body().expect("every entry encoded"),
            &*bytes,
            "the copied-together body is byte for byte the serialised one"
        );
        let (decoded, _): (Vec<HashMap<String, OwnedValue>>, _) = bytes.deserialize().unwrap();
        assert_eq!(decoded.len(), 4);
        let first = &decoded[1];
        assert_eq!(first.len(), 10, "algorithm and pending are left out");
        assert_eq!(String::try_from(first["code"].clone()).unwrap(), "123456");
        assert_eq!(String::try_from(first["type"].clone()).unwrap(), "totp");
        assert_eq!(u64::try_from(first["valid_to"].clone()).unwrap(), 60);
        assert!(!bool::try_from(first["touch"].clone()).unwrap());
        assert_eq!(
            OwnedObjectPath::try_from(first["account"].clone())
                .unwrap()
                .as_str(),
            "/a/1"
        );
        let pending = &decoded[3];
        assert_eq!(pending.len(), 2);
        assert!(bool::try_from(pending["pending"].clone()).unwrap());
    }

    /// Every mix of entry lengths (so every alignment) and the empty reply.
    #[test]
    fn copied_body_matches_serialisation_for_any_alignment() {
        let ctxt = Context::new(Format::DBus, LE, 0);
        for count in 0..6usize {
            let built: Built = Arc::new(
                (0..count)
                    .map(|i| {
                        let mut dict = sample();
                        dict.name = Some("n".repeat(i * 3));
                        dict.code = (i % 2 == 0).then(|| "1".repeat(i));
                        BuiltEntry::new(dict)
                    })
                    .collect(),
            );
            let mut list = CodeList::default();
            list.push_all(built.clone());
            list.push_picked(built, (0..count).rev().step_by(2).collect());
            let serialised = to_bytes(ctxt, &list).unwrap();
            assert_eq!(list.body().unwrap(), &*serialised, "{count} entries");
        }
    }
}
