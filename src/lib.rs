//! umlkit: the User-Mode Linux toolkit.
//!
//! The crate is one block layer with tools on top of it:
//!
//! ```text
//!   uml_moo  uml_cow  uml_mkcow   uml_fs        linux (guest kernel)
//!       \      |      /             |              |
//!        +-- cow::CowDevice --+   ext3 (reader / journaling writer)
//!                             |     |   served through fs::InodeFs
//!                             |     |   (the FUSE server in kernel)
//!                  block::BlockDevice (positional read/write)
//!                             |
//!                  block::FileDevice (pread/pwrite) | MemDevice (tests)
//! ```
//!
//! and one networking room beside it:
//!
//! ```text
//!   tunctl   uml_net        uml_switch          linux (eth<N>=)
//!      \        |               |                 /     \
//!       net (Mac, tap::Tap, Request, host)  ── switch::client
//!                |               |
//!              sys::net (TUN ioctls, SIOC*, SCM_RIGHTS, rtnetlink)
//! ```
//!
//! The management console (`mconsole`) lives beside both; all share only
//! the `sys` wrappers.
#![deny(missing_docs)]

pub mod block;
pub mod cli;
pub mod cow;
pub mod ext3;
pub mod fs;
pub mod kernel;
pub mod lab;
pub mod mconsole;
pub mod net;
pub mod switch;
pub mod sys;
