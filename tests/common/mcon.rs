//! Test helpers for the mcon tests.
