//! Shared helpers for the runnel test suites.
