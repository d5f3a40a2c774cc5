//! Test helpers for the net tests.
