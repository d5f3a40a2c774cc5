//! The qcow2 header (qemu's docs/interop/qcow2.txt, "Header"): a pure
//! parser and serializer. All fields are big-endian; offsets are the
//! spec's. Only what umlkit converts is accepted: version 2 or 3, no
//! encryption, no incompatible features, refcount order 4 (16 bits).

use thiserror::Error;

/// `QFI\xfb`.
pub const MAGIC: u32 = 0x5146_49fb;
/// The length of a version 3 header as written (bytes 0..104).
pub const V3_HEADER_LEN: u32 = 104;
/// Header extension: backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Header extension: end of the list.
pub const EXT_END: u32 = 0;

/// Why a header was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Qcow2HeaderError {
    /// Not a qcow2 file.
    #[error("not a qcow2 file")]
    NotQcow2,
    /// Shorter than the header it declares.
    #[error("header truncated ({0} bytes)")]
    Short(usize),
    /// A version other than 2 or 3.
    #[error("unsupported qcow2 version {0}")]
    Version(u32),
    /// Encrypted images.
    #[error("encrypted qcow2 images are not supported")]
    Encrypted,
    /// Incompatible feature bits (dirty, corrupt, external data file, compression type, extended L2).
    #[error("unsupported qcow2 incompatible features {0:#x}")]
    Incompatible(u64),
    /// A cluster size outside 512 B..2 MiB.
    #[error("bad cluster_bits {0}")]
    ClusterBits(u32),
    /// A refcount width other than 16 bits.
    #[error("unsupported refcount order {0}")]
    RefcountOrder(u32),
    /// A field that does not fit the file or overflows.
    #[error("bad header field {0}")]
    Field(&'static str),
    /// Internal snapshots.
    #[error("qcow2 images with internal snapshots are not supported")]
    Snapshots,
}

/// The fields umlkit reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Header {
    /// 2 or 3.
    pub version: u32,
    /// Backing file name, empty for none.
    pub backing_file: Vec<u8>,
    /// Backing format from the header extension (`raw`), if present.
    pub backing_format: Option<Vec<u8>>,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// Entries in the L1 table.
    pub l1_size: u32,
    /// Offset of the L1 table.
    pub l1_table_offset: u64,
    /// Offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Clusters of the refcount table.
    pub refcount_table_clusters: u32,
    /// Header length (104 for v3 as written; 72 for v2).
    pub header_length: u32,
}

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn be64(b: &[u8], o: usize) -> u64 {
    (u64::from(be32(b, o)) << 32) | u64::from(be32(b, o + 4))
}

impl Qcow2Header {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// Parses a header from the file's first bytes (at least the first
    /// cluster, or the whole file when shorter).
    pub fn parse(b: &[u8]) -> Result<Qcow2Header, Qcow2HeaderError> {
        if b.len() < 4 || be32(b, 0) != MAGIC {
            return Err(Qcow2HeaderError::NotQcow2);
        }
        if b.len() < 72 {
            return Err(Qcow2HeaderError::Short(b.len()));
        }
        let version = be32(b, 4);
        if version != 2 && version != 3 {
            return Err(Qcow2HeaderError::Version(version));
        }
        let backing_file_offset = be64(b, 8);
        let backing_file_size = be32(b, 16);
        let cluster_bits = be32(b, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(Qcow2HeaderError::ClusterBits(cluster_bits));
        }
        let size = be64(b, 24);
        if be32(b, 32) != 0 {
            return Err(Qcow2HeaderError::Encrypted);
        }
        let l1_size = be32(b, 36);
        let l1_table_offset = be64(b, 40);
        let refcount_table_offset = be64(b, 48);
        let refcount_table_clusters = be32(b, 56);
        if be32(b, 60) != 0 {
            return Err(Qcow2HeaderError::Snapshots);
        }
        let (header_length, incompatible, refcount_order) = if version == 3 {
            if b.len() < 104 {
                return Err(Qcow2HeaderError::Short(b.len()));
            }
            (be32(b, 100), be64(b, 72), be32(b, 96))
        } else {
            (72, 0, 4)
        };
        if incompatible != 0 {
            return Err(Qcow2HeaderError::Incompatible(incompatible));
        }
        if refcount_order != 4 {
            return Err(Qcow2HeaderError::RefcountOrder(refcount_order));
        }
        let cluster = 1u64 << cluster_bits;
        if header_length < 72 || u64::from(header_length) > cluster {
            return Err(Qcow2HeaderError::Field("header_length"));
        }
        // Every L2 table maps cluster/8 clusters; the L1 table must cover size.
        let per_l1 = (cluster / 8)
            .checked_mul(cluster)
            .ok_or(Qcow2HeaderError::Field("cluster_bits"))?;
        if u64::from(l1_size) < size.div_ceil(per_l1) {
            return Err(Qcow2HeaderError::Field("l1_size"));
        }
        for (name, off) in [
            ("l1_table_offset", l1_table_offset),
            ("refcount_table_offset", refcount_table_offset),
        ] {
            if off == 0 || off % cluster != 0 {
                return Err(Qcow2HeaderError::Field(name));
            }
        }
        let mut backing_format = None;
        if version == 3 {
            let mut at = usize::try_from(header_length)
                .map_err(|_| Qcow2HeaderError::Field("header_length"))?;
            // Extensions are 8-byte aligned; bounded by the buffer.
            at = at.div_ceil(8) * 8;
            while let Some(h) = b.get(at..at + 8) {
                let (kind, len) = (be32(h, 0), be32(h, 4));
                if kind == EXT_END {
                    break;
                }
                let len = usize::try_from(len).map_err(|_| Qcow2HeaderError::Field("extension"))?;
                let data = b
                    .get(at + 8..at + 8 + len)
                    .ok_or(Qcow2HeaderError::Field("extension length"))?;
                if kind == EXT_BACKING_FORMAT {
                    backing_format = Some(data.to_vec());
                }
                at = at + 8 + len.div_ceil(8) * 8;
            }
        }
        let backing_file = if backing_file_offset == 0 {
            Vec::new()
        } else {
            let start = usize::try_from(backing_file_offset)
                .map_err(|_| Qcow2HeaderError::Field("backing_file_offset"))?;
            let len = usize::try_from(backing_file_size).unwrap_or(usize::MAX);
            if len > 1023 {
                return Err(Qcow2HeaderError::Field("backing_file_size"));
            }
            start
                .checked_add(len)
                .and_then(|end| b.get(start..end))
                .ok_or(Qcow2HeaderError::Field("backing_file_offset"))?
                .to_vec()
        };
        Ok(Qcow2Header {
            version,
            backing_file,
            backing_format,
            cluster_bits,
            size,
            l1_size,
            l1_table_offset,
            refcount_table_offset,
            refcount_table_clusters,
            header_length,
        })
    }

    /// Serializes as a version 3 header with a backing-format extension
    /// (when there is a backing file) and the backing name after the
    /// extensions. The result fits in the first cluster.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Qcow2HeaderError> {
        let mut b = vec![0u8; usize::try_from(V3_HEADER_LEN).unwrap_or(104)];
        let put32 =
            |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_be_bytes());
        let put64 =
            |b: &mut Vec<u8>, o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_be_bytes());
        put32(&mut b, 0, MAGIC);
        put32(&mut b, 4, 3);
        put32(&mut b, 20, self.cluster_bits);
        put64(&mut b, 24, self.size);
        put32(&mut b, 36, self.l1_size);
        put64(&mut b, 40, self.l1_table_offset);
        put64(&mut b, 48, self.refcount_table_offset);
        put32(&mut b, 56, self.refcount_table_clusters);
        put32(&mut b, 96, 4);
        put32(&mut b, 100, V3_HEADER_LEN);
        if !self.backing_file.is_empty() {
            let fmt = self
                .backing_format
                .clone()
                .unwrap_or_else(|| b"raw".to_vec());
            let len =
                u32::try_from(fmt.len()).map_err(|_| Qcow2HeaderError::Field("backing format"))?;
            b.extend_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&fmt);
            b.resize(b.len().div_ceil(8) * 8, 0);
        }
        b.extend_from_slice(&[0u8; 8]); // end of extensions
        if !self.backing_file.is_empty() {
            if self.backing_file.len() > 1023 {
                return Err(Qcow2HeaderError::Field("backing_file_size"));
            }
            let off = b.len() as u64;
            put64(&mut b, 8, off);
            put32(
                &mut b,
                16,
                u32::try_from(self.backing_file.len()).unwrap_or(0),
            );
            b.extend_from_slice(&self.backing_file);
        }
        if b.len() as u64 > self.cluster_size() {
            return Err(Qcow2HeaderError::Field("header larger than a cluster"));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Qcow2Header {
        Qcow2Header {
            version: 3,
            backing_file: b"/images/base.img".to_vec(),
            backing_format: Some(b"raw".to_vec()),
            cluster_bits: 16,
            size: 1 << 30,
            l1_size: 2,
            l1_table_offset: 0x10000,
            refcount_table_offset: 0x20000,
            refcount_table_clusters: 1,
            header_length: 104,
        }
    }

    #[test]
    fn a_written_header_parses_back_to_the_same_fields() {
        let h = sample();
        let bytes = h.to_bytes().unwrap();
        assert_eq!(&bytes[0..4], b"QFI\xfb");
        assert_eq!(Qcow2Header::parse(&bytes).unwrap(), h);
    }

    #[test]
    fn encrypted_dirty_snapshotted_and_foreign_files_are_refused() {
        let bytes = sample().to_bytes().unwrap();
        let mut b = bytes.clone();
        b[35] = 1;
        assert_eq!(Qcow2Header::parse(&b), Err(Qcow2HeaderError::Encrypted));
        let mut b = bytes.clone();
        b[79] = 1;
        assert_eq!(
            Qcow2Header::parse(&b),
            Err(Qcow2HeaderError::Incompatible(1))
        );
        let mut b = bytes.clone();
        b[63] = 1;
        assert_eq!(Qcow2Header::parse(&b), Err(Qcow2HeaderError::Snapshots));
        let mut b = bytes.clone();
        b[7] = 4;
        assert_eq!(Qcow2Header::parse(&b), Err(Qcow2HeaderError::Version(4)));
        assert_eq!(
            Qcow2Header::parse(b"COW\0"),
            Err(Qcow2HeaderError::NotQcow2)
        );
        assert_eq!(
            Qcow2Header::parse(&bytes[..50]),
            Err(Qcow2HeaderError::Short(50))
        );
        let mut h = sample();
        h.l1_size = 0;
        assert_eq!(
            Qcow2Header::parse(&h.to_bytes().unwrap()),
            Err(Qcow2HeaderError::Field("l1_size"))
        );
    }
}
