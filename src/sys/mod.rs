//! Thin safe wrappers over the system calls umlkit needs. Every `unsafe`
//! block of the crate lives below this module, each with a `SAFETY:` note.

pub mod daemon;
pub mod fs;
pub mod guest;
pub mod knet;
pub mod mount;
pub mod mountinfo;
pub mod net;
pub mod process;
pub mod seccomp;
pub mod tty;
