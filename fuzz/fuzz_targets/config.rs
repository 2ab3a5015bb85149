//! `cargo fuzz run config`: the ferry.toml parser and role ARN check on arbitrary bytes.
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::config(data));
