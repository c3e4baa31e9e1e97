//! `--virtual-key FILE`: a clear-text state file (served unlocked, with a warning) or a
//! file sealed by a FIDO2 key (served locked until `Unlock` opens it with a touch).

use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::warn;

use crate::core::Link;
use crate::emulator::{Card, CardConfig};
use crate::fido::AuthenticatorSpec;
use crate::fido::vault::{SealedVirtualKey, is_sealed_file};

/// The link for the virtual key at `path`; `fido` opens a sealed one (looked up at unlock,
/// so the daemon starts without the FIDO2 key plugged in).
pub fn link(path: &Path, fido: &AuthenticatorSpec) -> Result<Link, String> {
    let label = format!("virtual:{}", path.display());
    if is_sealed_file(path) {
        let key =
            SealedVirtualKey::load(path, Arc::new(fido.clone())).map_err(|e| e.to_string())?;
        return Ok(Link::Sealed {
            key: Arc::new(key),
            label,
        });
    }
    let existed = path.exists();
    let card = Card::new(CardConfig::yubikey())
        .with_state_file(path)
        .map_err(|e| e.to_string())?;
    if existed {
        warn!(
            path = %path.display(),
            "virtual key keeps its seeds in clear text; seal it: oathbridge virtual-key seal FILE"
        );
    } else {
        // Write it now, so the key keeps its identity from the first start on.
        card.save_state(path).map_err(|e| e.to_string())?;
    }
    Ok(Link::Virtual {
        card: Arc::new(Mutex::new(card)),
        label,
    })
}
