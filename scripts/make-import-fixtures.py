#!/usr/bin/env python3
"""Writes the authenticator-app export fixtures in tests/data/import/apps/.

The files are written by us from the apps' public format descriptions (Aegis docs/vault.md,
the backups 2FAS, andOTP and FreeOTP+ write, Bitwarden's JSON export); no app produced them.
Seeds are the ASCII bytes `handed-case-key-000N`. Everything is deterministic: the encrypted
Aegis vault takes its salt, nonces and master key from SHA-256 of fixed labels.

Needs Python 3.9+ and `cryptography` (AES-GCM); run from the repository root:
    python3 scripts/make-import-fixtures.py
"""

import base64
import hashlib
import json
import pathlib
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "import" / "apps"
PASSWORD = "correct horse battery staple"


def seed(n: int) -> str:
    return base64.b32encode(f"handed-case-key-{n:04d}".encode()).decode().rstrip("=")


def seed_bytes(n: int) -> list:
    """The seed as Java's signed bytes, as FreeOTP+ writes it."""
    return [b - 256 if b > 127 else b for b in f"handed-case-key-{n:04d}".encode()]


def fixed(label: str, size: int) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:size]


def fixed_uuid(label: str) -> str:
    return str(uuid.UUID(bytes=fixed(label, 16), version=4))


def write(name: str, data, indent=4) -> None:
    text = data if isinstance(data, str) else json.dumps(data, indent=indent, ensure_ascii=False)
    (OUT / name).write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")


def aegis_entry(kind, name, issuer, info):
    return {
        "type": kind, "uuid": fixed_uuid(f"aegis {kind} {name}"), "name": name, "issuer": issuer,
        "note": "", "favorite": False, "icon": None, "info": info, "groups": [],
    }


def aegis_plain_content():
    return {"version": 3, "entries": [
        aegis_entry("totp", "alice@example.com", "Example",
                    {"secret": seed(1), "algo": "SHA1", "digits": 6, "period": 30}),
        aegis_entry("hotp", "bob", "Forge",
                    {"secret": seed(2), "algo": "SHA256", "digits": 8, "counter": 0}),
        aegis_entry("steam", "carol", "Steam",
                    {"secret": seed(3), "algo": "SHA1", "digits": 5, "period": 30}),
    ], "groups": []}


def aegis_plain():
    return {"version": 1, "header": {"slots": None, "params": None}, "db": aegis_plain_content()}


def seal(key: bytes, nonce: bytes, plaintext: bytes):
    sealed = AESGCM(key).encrypt(nonce, plaintext, None)
    return sealed[:-16], {"nonce": nonce.hex(), "tag": sealed[-16:].hex()}


def aegis_encrypted():
    content = {"version": 3, "entries": [
        aegis_entry("totp", "dave", "Mail",
                    {"secret": seed(4), "algo": "SHA512", "digits": 7, "period": 60}),
        aegis_entry("totp", "erin", "",
                    {"secret": seed(5), "algo": "SHA1", "digits": 6, "period": 30}),
    ], "groups": []}
    master_key = fixed("aegis fixture master key", 32)
    salt = fixed("aegis fixture salt", 32)
    n, r, p = 32768, 8, 1
    derived = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                             maxmem=64 * 1024 * 1024)
    sealed_key, key_params = seal(derived, fixed("aegis fixture slot nonce", 12), master_key)
    # A biometric slot (type 2) as the phone adds one: its key is unknown here and skipped.
    biometric_key, biometric_params = seal(fixed("aegis fixture keystore key", 32),
                                           fixed("aegis fixture biometric nonce", 12), master_key)
    db, params = seal(master_key, fixed("aegis fixture db nonce", 12),
                      json.dumps(content, indent=4).encode())
    return {"version": 1, "header": {"slots": [
        {"type": 1, "uuid": fixed_uuid("aegis password slot"), "key": sealed_key.hex(),
         "key_params": key_params, "n": n, "r": r, "p": p, "salt": salt.hex(),
         "repaired": True, "is_backup": False},
        {"type": 2, "uuid": fixed_uuid("aegis biometric slot"), "key": biometric_key.hex(),
         "key_params": biometric_params},
    ], "params": params}, "db": base64.b64encode(db).decode()}


def twofas_service(name, account, kind, number, extra):
    otp = {"label": account, "account": account, "issuer": name, "digits": 6,
           "algorithm": "SHA1", "tokenType": kind, "source": "Link"}
    otp.update(extra)
    return {"name": name, "secret": seed(number), "updatedAt": 1700000000000 + number, "otp": otp,
            "order": {"position": number - 1},
            "icon": {"selected": "Label", "label": {"text": name[:2].upper(),
                                                    "backgroundColor": "Default"}}}


def twofas():
    return {"services": [
        twofas_service("Example", "alice@example.com", "TOTP", 1, {"period": 30}),
        twofas_service("Forge", "bob", "HOTP", 2,
                       {"digits": 8, "algorithm": "SHA256", "counter": 7}),
        twofas_service("Steam", "carol", "STEAM", 3, {"digits": 5, "period": 30}),
    ], "groups": [], "updatedAt": 1700000000000, "schemaVersion": 4,
        "appVersionCode": 5000009, "appVersionName": "5.1.0", "appOrigin": "android"}


def andotp_entry(number, issuer, label, kind, extra):
    entry = {"secret": seed(number), "issuer": issuer, "label": label, "digits": 6,
             "type": kind, "algorithm": "SHA1", "thumbnail": "Default",
             "last_used": 1700000000000 + number, "used_frequency": 0, "tags": []}
    entry.update(extra)
    return entry


def andotp():
    return [
        andotp_entry(1, "Example", "alice@example.com", "TOTP", {"period": 30}),
        andotp_entry(2, "Forge", "bob", "HOTP", {"counter": 0}),
        andotp_entry(3, "Steam", "carol", "STEAM", {"digits": 5}),
    ]


def bitwarden_login(name, username, totp, number):
    return {"id": fixed_uuid(f"bitwarden {name}"), "organizationId": None, "folderId": None,
            "type": 1, "reprompt": 0, "name": name, "notes": None, "favorite": False,
            "login": {"uris": [{"match": None, "uri": f"https://{name.lower()}.example"}],
                      "username": username, "password": f"not-a-secret-{number}",
                      "totp": totp},
            "collectionIds": None}


def bitwarden():
    return {"encrypted": False, "folders": [], "items": [
        bitwarden_login("Example", "alice@example.com",
                        f"otpauth://totp/Example:alice%40example.com?secret={seed(1)}"
                        "&issuer=Example", 1),
        bitwarden_login("Bank", "bob", None, 2),
        bitwarden_login("Forge", "bob", " ".join(seed(2).lower()[i:i + 4]
                                                 for i in range(0, 32, 4)), 3),
        {"id": fixed_uuid("bitwarden note"), "organizationId": None, "folderId": None,
         "type": 2, "reprompt": 0, "name": "Note", "notes": "no login here",
         "favorite": False, "secureNote": {"type": 0}, "collectionIds": None},
        bitwarden_login("Steam", "carol", f"steam://{seed(3)}", 5),
    ]}


def freeotp_plus():
    return {"tokenOrder": ["Example:alice@example.com", "Forge:bob"], "tokens": [
        {"algo": "SHA256", "counter": 0, "digits": 6, "issuerExt": "Example",
         "issuerInt": "Example", "label": "alice@example.com", "period": 30,
         "secret": seed_bytes(1), "type": "TOTP"},
        {"algo": "SHA1", "counter": 0, "digits": 6, "issuerExt": "Forge", "issuerInt": "Forge",
         "label": "bob", "period": 30, "secret": seed_bytes(2), "type": "HOTP"},
    ]}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write("aegis-plain.json", aegis_plain())
    vault = aegis_encrypted()
    write("aegis-encrypted.json", vault)
    write("2fas.2fas", json.dumps(twofas(), separators=(",", ":")))
    write("andotp.json", json.dumps(andotp(), separators=(",", ":")))
    write("bitwarden.json", bitwarden(), indent=2)
    write("freeotp-plus.json", json.dumps(freeotp_plus(), separators=(",", ":")))

    # Malformed copies.
    bad = aegis_plain()
    bad["db"]["entries"][1]["info"]["digits"] = 9
    write("aegis-bad-digits.json", bad)

    tampered = json.loads(json.dumps(vault))
    db = bytearray(base64.b64decode(tampered["db"]))
    db[10] ^= 0x01
    tampered["db"] = base64.b64encode(bytes(db)).decode()
    write("aegis-encrypted-tampered.json", tampered)

    text = json.dumps(andotp(), indent=2)
    write("andotp-truncated.json", text[: text.index('"label": "bob"') + len('"label": "bob",')])

    fields = andotp()
    fields[0]["algorithm"] = ""
    fields[0]["period"] = 0
    fields[1]["counter"] = -1
    fields[1]["secret"] = seed(2)[:8] + "!" + seed(2)[9:]
    fields[2]["type"] = "MOTP"
    del fields[2]["label"]
    write("andotp-bad-fields.json", fields, indent=2)

    encrypted_2fas = {"services": [], "groups": [], "updatedAt": 1700000000000,
                      "schemaVersion": 4, "appVersionCode": 5000009,
                      "appVersionName": "5.1.0", "appOrigin": "android",
                      "servicesEncrypted": base64.b64encode(fixed("2fas data", 32)).decode()
                      + ":" + base64.b64encode(fixed("2fas salt", 32)).decode()
                      + ":" + base64.b64encode(fixed("2fas iv", 12)).decode()}
    write("2fas-encrypted.2fas", json.dumps(encrypted_2fas, separators=(",", ":")))

    write("bitwarden-encrypted.json", {
        "encrypted": True, "passwordProtected": True,
        "salt": base64.b64encode(fixed("bitwarden salt", 16)).decode(),
        "kdfType": 0, "kdfIterations": 600000,
        "encKeyValidation_DO_NOT_EDIT": "2." + base64.b64encode(fixed("bw iv", 16)).decode()
        + "|" + base64.b64encode(fixed("bw key", 32)).decode(),
        "data": "2." + base64.b64encode(fixed("bw data iv", 16)).decode()
        + "|" + base64.b64encode(fixed("bw data", 32)).decode(),
    }, indent=2)

    bad_secret = freeotp_plus()
    bad_secret["tokens"][1]["secret"][3] = 200
    write("freeotp-plus-bad-secret.json", json.dumps(bad_secret, separators=(",", ":")))

    write("unknown-kind.json", {"accounts": [{"name": "alice", "code": "123456"}]})


if __name__ == "__main__":
    main()
