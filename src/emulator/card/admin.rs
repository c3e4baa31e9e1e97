//! The CanoKey admin applet, as far as OATH needs it (canokey-core `applets/admin/admin.c`):
//! SELECT `F0 00 00 00 00`, VERIFY and CHANGE the admin PIN, and RESET OATH — the only
//! way to reset a CanoKey's OATH applet (it has no INS 04). Other admin instructions
//! answer 6982 before the PIN is verified and 6D00 after.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{Card, random_bytes};
use crate::emulator::profile::Profile;
use crate::emulator::state::PersistentState;
use crate::oath::StatusWord;
use crate::oath::apdu::CommandApdu;
use crate::oath::device::canokey::{
    ADMIN_PIN_LEN, ADMIN_PIN_RETRIES, DEFAULT_ADMIN_PIN, INS_CHANGE_PIN, INS_RESET_OATH,
    INS_VERIFY_PIN, SW_PIN_RETRIES,
};

type Reply = Result<Vec<u8>, StatusWord>;

/// The admin PIN and its retry counter.
#[derive(Debug)]
pub(super) struct AdminPin {
    pin: Zeroizing<Vec<u8>>,
    retries: u8,
}

impl Default for AdminPin {
    fn default() -> Self {
        Self {
            pin: Zeroizing::new(DEFAULT_ADMIN_PIN.to_vec()),
            retries: ADMIN_PIN_RETRIES,
        }
    }
}

impl Card {
    pub(super) fn has_admin_applet(&self) -> bool {
        self.profile == Profile::CanoKey
    }

    /// SELECT the admin applet: the OATH applet is no longer selected.
    pub(super) fn select_admin(&mut self) -> Reply {
        self.session.selected = false;
        self.session.validated = false;
        self.session.select_challenge = None;
        self.session.admin_selected = true;
        Ok(Vec::new())
    }

    pub(super) fn admin_dispatch(&mut self, apdu: &CommandApdu) -> Reply {
        match apdu.ins {
            INS_VERIFY_PIN => self.admin_verify(apdu.p1, apdu.p2, &apdu.data),
            _ if !self.session.admin_verified => Err(StatusWord::SecurityStatusNotSatisfied),
            INS_CHANGE_PIN => self.admin_change_pin(apdu.p1, apdu.p2, &apdu.data),
            INS_RESET_OATH => self.admin_reset_oath(),
            _ => Err(StatusWord::InsNotSupported),
        }
    }

    /// VERIFY: no data asks for the state (9000 when verified, else `63 CX`); a PIN of the
    /// wrong length is 6700; a wrong PIN costs a try (`63 CX`; 6983 once none is left).
    fn admin_verify(&mut self, p1: u8, p2: u8, pin: &[u8]) -> Reply {
        if (p1, p2) != (0, 0) {
            return Err(StatusWord::WrongParameters);
        }
        if pin.is_empty() {
            return if self.session.admin_verified {
                Ok(Vec::new())
            } else {
                Err(pin_retries(self.admin.retries))
            };
        }
        if !ADMIN_PIN_LEN.contains(&pin.len()) {
            return Err(StatusWord::WrongLength);
        }
        if self.admin.retries == 0 {
            return Err(StatusWord::OperationBlocked);
        }
        if bool::from(self.admin.pin.as_slice().ct_eq(pin)) {
            self.admin.retries = ADMIN_PIN_RETRIES;
            self.session.admin_verified = true;
            return Ok(Vec::new());
        }
        self.session.admin_verified = false;
        self.admin.retries -= 1;
        if self.admin.retries == 0 {
            return Err(StatusWord::OperationBlocked);
        }
        Err(pin_retries(self.admin.retries))
    }

    fn admin_change_pin(&mut self, p1: u8, p2: u8, new_pin: &[u8]) -> Reply {
        if (p1, p2) != (0, 0) {
            return Err(StatusWord::WrongParameters);
        }
        if !ADMIN_PIN_LEN.contains(&new_pin.len()) {
            return Err(StatusWord::WrongLength);
        }
        self.admin.pin = Zeroizing::new(new_pin.to_vec());
        Ok(Vec::new())
    }

    /// `oath_install(1)`: every credential and the password go, and a new handle (salt).
    fn admin_reset_oath(&mut self) -> Reply {
        self.state = PersistentState::fresh(random_bytes());
        self.persist()?;
        Ok(Vec::new())
    }
}

/// `63 CX`: X tries left.
fn pin_retries(retries: u8) -> StatusWord {
    StatusWord::from_u16(SW_PIN_RETRIES | u16::from(retries.min(0x0F)))
}
