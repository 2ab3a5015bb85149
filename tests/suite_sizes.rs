//! How much the fault suite and the bad-input corpus cover, held to the
//! floors issues 8 and 18 set and counted from the sources so the numbers
//! cannot drift. `scripts/test-counts` prints the same counts at the end of
//! `scripts/test`, since nextest hides a passing test's output.

use std::path::Path;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn count_tests(file: &str) -> usize {
    let text = std::fs::read_to_string(Path::new(REPO).join(file)).unwrap();
    text.matches("#[test]").count()
}

#[test]
fn fault_suite_and_bad_input_corpus_sizes() {
    let faults = count_tests("tests/faults.rs");
    let corpus: Vec<String> = std::fs::read_dir(Path::new(REPO).join("tests/bad-input"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .filter(|text| text.lines().any(|l| l.trim() == "[expect]"))
        .collect();
    let reaching_aws = corpus.iter().filter(|t| t.lines().any(|l| l.trim() == "aws = true")).count();
    let fuzz_targets = std::fs::read_dir(Path::new(REPO).join("fuzz/fuzz_targets")).unwrap().count();

    println!("fault suite: {faults} fault cases (tests/faults.rs)");
    println!(
        "bad-input corpus: {} cases, {} refused before any AWS call (tests/bad-input/)",
        corpus.len(),
        corpus.len() - reaching_aws
    );
    println!("fuzz targets: {fuzz_targets} (fuzz/), smoke-run on stable by tests/fuzz_smoke.rs");

    assert!(faults >= 6, "the fault suite covers the six faults of issue 8");
    assert!(corpus.len() >= 100, "the bad-input corpus has at least 100 cases (issue 18)");
    assert!(fuzz_targets >= 2, "appspec and config parsers are fuzzed");
}
