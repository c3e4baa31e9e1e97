//! A YKOATH card in software (owned by the emulator work; placeholder).
