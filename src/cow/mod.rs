//! The UML copy-on-write (COW) format and the COW block device.
//!
//! ```text
//!   CowDevice ── reads sector i from ──┬─ COW data area   (bitmap bit i set)
//!   (BlockDevice)                      └─ backing device  (otherwise)
//! ```
//!
//! - [`header`]: parse and emit v1, v2, v3 and the broken 64-bit v3 layout.
//! - [`bitmap`]: one bit per sector and runs of equal bits.
//! - [`device`]: the COW block device.
//! - [`open`]: the kernel's `ubdN=` rules: plain image, single COW file or
//!   `COW,BACKING`; creation, backing checks, locking.
//! - [`merge`]: `uml_moo`'s merges, to a new image or in place.
//! - [`qcow2`] and [`convert`]: qcow2 overlays, and `uml_cow convert`
//!   between COW, qcow2 and raw.
//! - [`signature`]: whether a file looks like a disk image (`uml_moo -d`
//!   writes only into one that does).
#![forbid(unsafe_code)]
// As ext4-view: no silent `as` casts and no unchecked arithmetic in code
// that reads untrusted images. `as_conversions` holds in all of cow/;
// the modules allowing `arithmetic_side_effects` below compute offsets
// from a header whose sizes `header::parse` checks (with checked_mul), and
// are the next ones to convert.
// Unit tests build fixtures with casts and plain arithmetic on small
// constants; the lints are for the code that reads images.
#![cfg_attr(
    not(test),
    warn(clippy::as_conversions, clippy::arithmetic_side_effects)
)]

#[allow(clippy::arithmetic_side_effects)] // not yet audited: see above
pub mod bitmap;
#[allow(clippy::arithmetic_side_effects, clippy::as_conversions)]
// sizes bounded by the checked header
pub mod convert;
#[allow(clippy::arithmetic_side_effects)] // not yet audited: see above
pub mod device;
pub mod error;
#[allow(clippy::arithmetic_side_effects)] // not yet audited: see above
pub mod header;
#[allow(clippy::arithmetic_side_effects)] // not yet audited: see above
pub mod merge;
pub mod open;
#[allow(clippy::arithmetic_side_effects, clippy::as_conversions)]
// offsets bounded by header::parse and the file length
pub mod qcow2;
pub mod signature;

pub use bitmap::Bitmap;
pub use device::CowDevice;
pub use error::CowError;
pub use header::{Header, HeaderError, Layout};
pub use open::{create_cow, open_cow, open_disk, Disk, DiskOptions, DiskSpec};
