// The properties both fuzzers check, shared by the cargo-fuzz targets
// (fuzz/fuzz_targets/) and the stable smoke run (tests/fuzz_smoke.rs).
// Panics are the finding; these add what a clear error must look like.

/// appspec.yml text: never panics, and every problem names the file and says
/// what to do.
pub fn appspec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for problem in ferry::appspec::check(text) {
        let text = problem.to_string();
        assert!(text.contains("appspec.yml"), "problem does not name the file: {text:?}");
    }
}

/// ferry.toml text: never panics; errors name the file; any role ARN that
/// parses has a 12-digit account and a role name.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("fuzz/ferry.toml");
    match ferry::config::parse_file(path, text) {
        Ok(envs) => {
            for settings in envs.values() {
                if let Some(Ok(arn)) = settings.role_arn.as_deref().map(ferry::config::RoleArn::parse) {
                    assert!(arn.account.len() == 12 && arn.account.bytes().all(|b| b.is_ascii_digit()), "{arn:?}");
                    assert!(!arn.name.is_empty(), "{arn:?}");
                }
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz/ferry.toml"), "error does not name the file: {e}"),
    }
}
