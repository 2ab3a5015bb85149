//! `cargo fuzz run appspec`: the appspec.yml checks on arbitrary bytes.
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::appspec(data));
