//! Password → access key derivation and the mutual VALIDATE proof.

use pbkdf2::pbkdf2_hmac;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::consts::{ACCESS_KEY_LEN, CHALLENGE_LEN, PBKDF2_ITERATIONS};
use super::error::OathError;
use crate::otp::{HashAlgorithm, hmac};

/// The 16-byte key derived from a password; wiped on drop.
pub type AccessKey = Zeroizing<[u8; ACCESS_KEY_LEN]>;

/// PBKDF2-HMAC-SHA1(password, salt, 1000 iterations, 16 bytes), as ykman does.
pub fn derive_access_key(password: &str, salt: &[u8]) -> AccessKey {
    let mut key = Zeroizing::new([0u8; ACCESS_KEY_LEN]);
    pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, PBKDF2_ITERATIONS, key.as_mut());
    key
}

/// The response proving knowledge of `key` for `challenge`.
pub fn prove(algorithm: HashAlgorithm, key: &[u8], challenge: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(hmac(algorithm, key, challenge))
}

/// Constant-time check of the card's proof.
pub fn verify_proof(algorithm: HashAlgorithm, key: &[u8], challenge: &[u8], proof: &[u8]) -> bool {
    let expected = prove(algorithm, key, challenge);
    expected.len() == proof.len() && bool::from(expected.as_slice().ct_eq(proof))
}

pub fn random_challenge() -> Result<[u8; CHALLENGE_LEN], OathError> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut challenge).map_err(|e| OathError::Random(e.to_string()))?;
    Ok(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(key: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(key)
    }

    #[test]
    fn ykman_derive_key_vectors() {
        assert_eq!(
            hex(derive_access_key("foobar", &[0; 8]).as_ref()),
            "b07da1e7de87f89a87a2b598eaa2188c"
        );
        assert_eq!(
            hex(derive_access_key("Hallå världen!", b"12345678").as_ref()),
            "da818e6b2cf0a2d0bf19b3ddd34b83f5"
        );
        assert_eq!(
            hex(derive_access_key("Ťᶒśƫ ᵽĥřӓşḛ", b"saltsalt").as_ref()),
            "f3dfa78154c810329945fbc4b535e537"
        );
    }

    #[test]
    fn set_code_example_from_the_sdk_docs() {
        let key = data_encoding::HEXLOWER
            .decode(b"780e45a00652ccb08c4bdacddaca5134")
            .unwrap();
        let challenge = data_encoding::HEXLOWER.decode(b"f103da8958e44085").unwrap();
        let proof = prove(HashAlgorithm::Sha1, &key, &challenge);
        assert_eq!(hex(&proof), "011ee1ff2a982d4dcccd8eb33a12e4887ef5e00c");
        assert!(verify_proof(HashAlgorithm::Sha1, &key, &challenge, &proof));
        assert!(!verify_proof(
            HashAlgorithm::Sha1,
            &key,
            &challenge,
            &proof[..19]
        ));
    }
}
