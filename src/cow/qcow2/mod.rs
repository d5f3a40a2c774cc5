//! A minimal qcow2 (version 3) reader and writer, for converting UML COW
//! files to qcow2 overlays and back (`uml_cow convert`).
//!
//! ```text
//!   file: [header + extensions + backing name][L1][L2 tables][data ...][refcount table][refcount blocks]
//!   read vcluster i: L1[i / n] -> L2 table -> entry: data offset | zero flag | unallocated (-> backing)
//! ```
//!
//! The writer lays a file out in one pass (clusters of 64 KiB, 16-bit
//! refcounts, every cluster referenced once); the reader accepts what the
//! converter needs: no compression, encryption, snapshots or external
//! data, and a raw backing file.

pub mod header;
pub mod image;
pub mod write;

pub use header::{Qcow2Header, Qcow2HeaderError};
pub use image::Qcow2Image;
pub use write::write_qcow2;

/// L2 entry and L1 entry: the cluster is referenced exactly once.
pub const OFLAG_COPIED: u64 = 1 << 63;
/// L2 entry: compressed cluster.
pub const OFLAG_COMPRESSED: u64 = 1 << 62;
/// L2 entry (v3): the cluster reads as zeros.
pub const OFLAG_ZERO: u64 = 1;
/// Bits 9..55 of an L1 or L2 entry: the host offset.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
