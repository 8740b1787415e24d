//! Runs the Python suite (DataStax's `cassandra-driver` and `cqlsh` from
//! PyPI) in `tests/python` against the same binary.
//!
//! The Python environment is `target/pyenv` (made by `.ci/run`, or by hand:
//! `python3 -m venv target/pyenv && target/pyenv/bin/pip install
//! cassandra-driver cqlsh pytest lz4`); `TESSERA_PYTHON` names another interpreter.
use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_driver_and_cqlsh_suite() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("TESSERA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/pyenv/bin/python"));
    assert!(
        python.exists(),
        "no Python environment at {}: run `python3 -m venv target/pyenv && \
         target/pyenv/bin/pip install cassandra-driver cqlsh pytest lz4` (as .ci/run does)",
        python.display()
    );
    let output = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(&root)
        .env("TESSERA_BIN", env!("CARGO_BIN_EXE_tessera"))
        .output()
        .expect("run pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "python suite failed:\n{report}");
    println!("{report}");
}
