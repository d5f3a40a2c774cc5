//! Test helpers for the guest kernel (`linux`) tests.
