//! PC/SC transport (placeholder).
