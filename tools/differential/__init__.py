"""Differential testing against the real Rust reducer (tools/rust-oracle): see :mod:`.runner`."""
