//! IO tests.
