//! Test helpers for the fsimg tests.
