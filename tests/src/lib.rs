//! Shared helpers for the runnel test suites: fixture discovery and loading, conversion modes and
//! the error measure, all from [`runnel_test_support`] (re-exported here so that the suites in
//! `tests/` can `use runnel_tests::*`).

pub use runnel_test_support::*;
