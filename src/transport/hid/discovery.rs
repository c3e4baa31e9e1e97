//! Finding HID keys: hidraw nodes (hidapi enumeration) and emulator bridge sockets.
