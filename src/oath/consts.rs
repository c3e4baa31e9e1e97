//! YKOATH instruction bytes, tags and properties (see docs/ykoath notes).

pub const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

pub const INS_PUT: u8 = 0x01;
pub const INS_DELETE: u8 = 0x02;
pub const INS_SET_CODE: u8 = 0x03;
pub const INS_RESET: u8 = 0x04;
pub const INS_RENAME: u8 = 0x05;
pub const INS_LIST: u8 = 0xA1;
pub const INS_CALCULATE: u8 = 0xA2;
pub const INS_VALIDATE: u8 = 0xA3;
/// CALCULATE ALL shares its INS with ISO SELECT; P1 tells them apart (00 vs 04).
pub const INS_CALCULATE_ALL: u8 = 0xA4;
pub const INS_SELECT: u8 = 0xA4;
pub const INS_SEND_REMAINING: u8 = 0xA5;

pub const P1_SELECT_BY_AID: u8 = 0x04;
pub const P2_TRUNCATED: u8 = 0x01;
pub const P2_FULL: u8 = 0x00;
pub const RESET_P1: u8 = 0xDE;
pub const RESET_P2: u8 = 0xAD;

pub const TAG_NAME: u8 = 0x71;
pub const TAG_NAME_LIST: u8 = 0x72;
pub const TAG_KEY: u8 = 0x73;
pub const TAG_CHALLENGE: u8 = 0x74;
pub const TAG_RESPONSE: u8 = 0x75;
pub const TAG_TRUNCATED: u8 = 0x76;
pub const TAG_HOTP: u8 = 0x77;
/// Followed by one raw property byte, no length.
pub const TAG_PROPERTY: u8 = 0x78;
pub const TAG_VERSION: u8 = 0x79;
pub const TAG_IMF: u8 = 0x7A;
pub const TAG_ALGORITHM: u8 = 0x7B;
pub const TAG_TOUCH: u8 = 0x7C;
/// Nitrokey 3: serial number in SELECT.
pub const TAG_SERIAL: u8 = 0x8F;

pub const PROP_ONLY_INCREASING: u8 = 0x01;
pub const PROP_REQUIRE_TOUCH: u8 = 0x02;

pub const MASK_TYPE: u8 = 0xF0;
pub const MASK_ALGO: u8 = 0x0F;

/// Credential id limit on a YubiKey (YKOATH spec) and a CanoKey, in UTF-8 bytes.
pub const MAX_ID_LEN: usize = 64;
/// Credential id (label) limit on a Nitrokey 3 Secrets App, in bytes: the longest id any
/// supported key stores (reference §2.3, pynitrokey `CREDENTIAL_LABEL_MAX_SIZE = 127`).
pub const NITROKEY_MAX_ID_LEN: usize = 127;
/// Longest HMAC key a CanoKey stores, in bytes (canokey-core `MAX_KEY_LEN` 66 minus the
/// type and digits bytes).
pub const CANOKEY_MAX_KEY_LEN: usize = 64;
/// Keys shorter than this are zero-padded (newer YubiKeys refuse shorter keys).
pub const MIN_KEY_LEN: usize = 14;
pub const DEFAULT_PERIOD: u32 = 30;
pub const DEFAULT_DIGITS: u8 = 6;
pub const PBKDF2_ITERATIONS: u32 = 1000;
pub const ACCESS_KEY_LEN: usize = 16;
pub const CHALLENGE_LEN: usize = 8;
