//! The UML copy-on-write (COW) format and the COW block device.
