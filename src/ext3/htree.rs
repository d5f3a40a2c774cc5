//! Hash-tree (htree) directory lookup: the name hashes of
//! fs/ext4/hash.c (legacy, half-MD4 and TEA, signed and unsigned) and the
//! walk from the `dx_root` in block 0 through at most three index levels
//! to the one leaf block that can hold a name
//! (Documentation/filesystems/ext4/directory.rst, "Hash Tree Directories").
//! `lookup` in big directories reads a few blocks instead of all of
//! them, and readdir walks the leaves in hash order
//! ([`super::dx_readdir`]). Under
//! metadata_csum each index block's `dx_tail` checksum is verified on the
//! way, as Linux does. The writer
//! keeps indexes up to date with the same hashes and layout
//! (`write/htree_write.rs`).

use super::bytes::{le16, le32, u8_at};
use super::superblock::Superblock;

/// Offsets in block 0 of an indexed directory (`struct dx_root`: the `.`
/// and `..` entries, then `dx_root_info`, then the `dx_countlimit` that
/// takes the hash slot of the first `dx_entry`), and in an index node
/// (`struct dx_node`: a fake empty entry spanning the block, then the
/// `dx_countlimit`).
pub mod field {
    /// `dx_root_info.reserved_zero` (le32)
    pub const DX_RESERVED_ZERO: usize = 0x18;
    /// `dx_root_info.hash_version`
    pub const DX_HASH_VERSION: usize = 0x1C;
    /// `dx_root_info.info_length` (8)
    pub const DX_INFO_LENGTH: usize = 0x1D;
    /// `dx_root_info.indirect_levels`
    pub const DX_INDIRECT_LEVELS: usize = 0x1E;
    /// `dx_root_info.unused_flags`
    pub const DX_UNUSED_FLAGS: usize = 0x1F;
    /// `dx_countlimit` (limit le16, count le16) of the root's entries.
    pub const DX_ROOT_COUNTLIMIT: usize = 0x20;
    /// `dx_countlimit` of an index node's entries.
    pub const DX_NODE_COUNTLIMIT: usize = 0x08;
}
use field::*;

/// `dx_root_info.hash_version` values.
const DX_HASH_LEGACY: u8 = 0;
const DX_HASH_HALF_MD4: u8 = 1;
const DX_HASH_TEA: u8 = 2;
const DX_HASH_LEGACY_UNSIGNED: u8 = 3;
const DX_HASH_HALF_MD4_UNSIGNED: u8 = 4;
const DX_HASH_TEA_UNSIGNED: u8 = 5;

/// Deepest index Linux builds (large_dir: 3 levels).
const MAX_LEVELS: u8 = 3;

// The casts are the algorithm (fs/ext4/hash.c): `(int)(signed char)c`
// sign-extends, `len` and the products wrap to 32 bits as in C (hash
// math is modulo 2^32: wrapping_* is its real semantics).
#[allow(clippy::as_conversions)]
fn str2hashbuf(msg: &[u8], num: usize, signed: bool) -> [u32; 8] {
    let len = msg.len();
    let mut pad = (len as u32) | ((len as u32) << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let mut val = pad;
    // Full 4-byte groups stored so far (C counts `num` down instead; its
    // final `if (--num >= 0)` is `k < num` here).
    let mut k = 0usize;
    for (i, &c) in msg.iter().take(num.saturating_mul(4)).enumerate() {
        let ch = if signed {
            i32::from(c as i8) as u32
        } else {
            u32::from(c)
        };
        val = ch.wrapping_add(val << 8);
        if i % 4 == 3 {
            if let Some(o) = out.get_mut(k) {
                *o = val;
            }
            // At most `num` (4 or 8) groups: cannot saturate.
            k = k.saturating_add(1);
            val = pad;
        }
    }
    if k < num {
        if let Some(o) = out.get_mut(k) {
            *o = val;
        }
    }
    out
}

fn half_md4(buf: &mut [u32; 4], inp: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($f($b, $c, $d))
                .wrapping_add($x)
                .rotate_left($s);
        };
    }
    round!(f, a, b, c, d, inp[0], 3);
    round!(f, d, a, b, c, inp[1], 7);
    round!(f, c, d, a, b, inp[2], 11);
    round!(f, b, c, d, a, inp[3], 19);
    round!(f, a, b, c, d, inp[4], 3);
    round!(f, d, a, b, c, inp[5], 7);
    round!(f, c, d, a, b, inp[6], 11);
    round!(f, b, c, d, a, inp[7], 19);
    round!(g, a, b, c, d, inp[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, inp[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, inp[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, inp[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, inp[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, inp[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, inp[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, inp[6].wrapping_add(K2), 13);
    round!(h, a, b, c, d, inp[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, inp[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, inp[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, inp[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, inp[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, inp[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, inp[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, inp[4].wrapping_add(K3), 15);
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

fn tea(buf: &mut [u32; 4], inp: &[u32; 8]) {
    let mut sum = 0u32;
    let (mut b0, mut b1) = (buf[0], buf[1]);
    let (a, b, c, d) = (inp[0], inp[1], inp[2], inp[3]);
    for _ in 0..16 {
        sum = sum.wrapping_add(0x9E37_79B9);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(a) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(b),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(c) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(d),
        );
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

// The casts are the algorithm (fs/ext4/hash.c, dx_hack_hash).
#[allow(clippy::as_conversions)]
fn legacy(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &c in name {
        let ch = if signed {
            i32::from(c as i8)
        } else {
            i32::from(c)
        };
        let mut hash = h1.wrapping_add(h0 ^ (ch.wrapping_mul(7_152_373) as u32));
        if hash & 0x8000_0000 != 0 {
            hash = hash.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = hash;
    }
    h0 << 1
}

/// The major hash of `name` (`ext4fs_dirhash`), `None` for an unknown
/// hash version.
pub fn dirhash(name: &[u8], version: u8, seed: &[u32; 4]) -> Option<u32> {
    dirhash_pair(name, version, seed).map(|(major, _)| major)
}

/// The major and minor hashes of `name` (`ext4fs_dirhash`: the minor hash
/// is the next word of the hash state, 0 for the legacy hash), `None` for
/// an unknown hash version. Readdir orders an indexed directory by the
/// pair (see [`super::dx_readdir`]).
pub fn dirhash_pair(name: &[u8], version: u8, seed: &[u32; 4]) -> Option<(u32, u32)> {
    let mut buf = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    if seed.iter().any(|&w| w != 0) {
        buf = *seed;
    }
    let (hash, minor) = match version {
        DX_HASH_LEGACY | DX_HASH_LEGACY_UNSIGNED => (legacy(name, version == DX_HASH_LEGACY), 0),
        DX_HASH_HALF_MD4 | DX_HASH_HALF_MD4_UNSIGNED => {
            let signed = version == DX_HASH_HALF_MD4;
            let mut p = name;
            loop {
                half_md4(&mut buf, &str2hashbuf(p, 8, signed));
                if p.len() <= 32 {
                    break;
                }
                p = &p[32..];
            }
            (buf[1], buf[2])
        }
        DX_HASH_TEA | DX_HASH_TEA_UNSIGNED => {
            let signed = version == DX_HASH_TEA;
            let mut p = name;
            loop {
                tea(&mut buf, &str2hashbuf(p, 4, signed));
                if p.len() <= 16 {
                    break;
                }
                p = &p[16..];
            }
            (buf[0], buf[1])
        }
        _ => return None,
    };
    // The low bit marks continued hashes in the index, and the largest
    // even value is readdir's 32-bit end of directory: names never get
    // either.
    let hash = hash & !1;
    let major = if hash == 0x7fff_ffff << 1 {
        0x7fff_fffe << 1
    } else {
        hash
    };
    Some((major, minor))
}

/// What the root block says about the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DxRoot {
    /// `dx_root_info.hash_version`.
    pub hash_version: u8,
    /// `dx_root_info.indirect_levels`.
    pub indirect_levels: u8,
}

/// Parses `dx_root_info` of directory block 0; `None` when it does not
/// look like an htree root (then the directory is read linearly).
pub fn parse_root(b: &[u8]) -> Option<DxRoot> {
    if b.len() < 0x28 || le32(b, DX_RESERVED_ZERO) != 0 || u8_at(b, DX_INFO_LENGTH) != 8 {
        return None;
    }
    let levels = u8_at(b, DX_INDIRECT_LEVELS);
    (levels < MAX_LEVELS).then_some(DxRoot {
        hash_version: u8_at(b, DX_HASH_VERSION),
        indirect_levels: levels,
    })
}

/// The hash under which an indexed directory of filesystem `sb` files
/// `name`, for the root's `hash_version`: legacy, half-MD4 and TEA become
/// their unsigned-char variants when `s_flags` has
/// `EXT2_FLAGS_UNSIGNED_HASH` (else the signed ones, as on x86), seeded
/// with `s_hash_seed` (fs/ext4/namei.c, `dx_probe`). `None` for a hash
/// version this code does not know.
pub fn name_hash(sb: &Superblock, hash_version: u8, name: &[u8]) -> Option<u32> {
    name_hash_pair(sb, hash_version, name).map(|(major, _)| major)
}

/// [`name_hash`] with the minor hash: (major, minor).
pub fn name_hash_pair(sb: &Superblock, hash_version: u8, name: &[u8]) -> Option<(u32, u32)> {
    let mut version = hash_version;
    if version <= DX_HASH_TEA && sb.s_flags & EXT2_FLAGS_UNSIGNED_HASH != 0 {
        version = version.checked_add(3)?;
    }
    let seed: [u32; 4] = std::array::from_fn(|i| le32(&sb.s_hash_seed, i.saturating_mul(4)));
    dirhash_pair(name, version, &seed)
}

/// `dx_countlimit.limit` of the root of an indexed directory with blocks
/// of `block_size` bytes (`dx_root_limit`): the room after `.`, `..` (12
/// bytes each) and the 8-byte `dx_root_info`, less the 8-byte `dx_tail`
/// under metadata_csum, in 8-byte entries. Linux refuses a root whose
/// limit is anything else.
pub fn root_limit(block_size: usize, metadata_csum: bool) -> usize {
    let tail = if metadata_csum { 8 } else { 0 };
    block_size.saturating_sub(32).saturating_sub(tail) / 8
}

/// `dx_countlimit.limit` of an index node (`dx_node_limit`): the block
/// after the 8-byte fake entry, less the `dx_tail` under metadata_csum.
pub fn node_limit(block_size: usize, metadata_csum: bool) -> usize {
    let tail = if metadata_csum { 8 } else { 0 };
    block_size.saturating_sub(8).saturating_sub(tail) / 8
}

/// In an index node whose `dx_countlimit` is at `at` and that has `count`
/// entries (sorted by hash), the one that covers `hash`: the last whose
/// hash is <= `hash`, by binary search as Linux's `dx_probe`. Entry 0
/// stands for hash 0 (its hash field is the count/limit). A hash with the
/// continuation bit is above the plain hash, so a name whose hash equals
/// a continued one lands in the first leaf of the run.
pub fn covering_entry(b: &[u8], at: usize, count: usize, hash: u32) -> usize {
    // Invariant: entries [1, lo) have hash <= `hash`, [hi, count) above.
    let (mut lo, mut hi) = (1usize, count.max(1));
    while lo < hi {
        let mid = lo.midpoint(hi);
        if dx_entry(b, at, mid, 0) <= hash {
            // mid < hi: cannot saturate.
            lo = mid.saturating_add(1);
        } else {
            hi = mid;
        }
    }
    // lo starts at 1 and only grows.
    lo.saturating_sub(1)
}

/// The byte offset of field `field` (0: hash, 4: block) of `dx_entry` `i`
/// in the table whose `dx_countlimit` is at `at`; `None` on overflow.
fn dx_entry_at(at: usize, i: usize, field: usize) -> Option<usize> {
    i.checked_mul(8)?.checked_add(at)?.checked_add(field)
}

/// A field of a `dx_entry` (see [`dx_entry_at`]); 0 past the block, like
/// the other field readers.
fn dx_entry(b: &[u8], at: usize, i: usize, field: usize) -> u32 {
    dx_entry_at(at, i, field).map_or(0, |o| le32(b, o))
}

/// In an index node whose `dx_countlimit` is at `at`, the logical blocks
/// that can hold `hash`: the block of the last entry whose hash is <=
/// `hash`, then those of following entries that continue the same hash (a
/// collision spilled into the next leaf, marked by the low bit). The flag
/// says the run of continuations reached the end of the node, so that more
/// may follow in the next index node. `None` if the node is malformed.
pub fn probe(b: &[u8], at: usize, hash: u32) -> Option<(Vec<u32>, bool)> {
    let limit = usize::from(le16(b, at));
    let count = usize::from(le16(b, at.checked_add(2)?));
    if count == 0 || count > limit || dx_entry_at(at, limit, 0)? > b.len() {
        return None;
    }
    let entry_hash = |i: usize| dx_entry(b, at, i, 0);
    let entry_block = |i: usize| dx_entry(b, at, i, 4) & 0x0fff_ffff;
    let first = covering_entry(b, at, count, hash);
    let mut blocks = vec![entry_block(first)];
    // Entries are below `count` (a u16): the increments cannot saturate.
    let mut i = first.saturating_add(1);
    while i < count && entry_hash(i) & 1 == 1 && entry_hash(i) & !1 == hash {
        blocks.push(entry_block(i));
        i = i.saturating_add(1);
    }
    let open_end = i == count && blocks.len() > 1;
    Some((blocks, open_end))
}

/// The metadata_csum checksum of an index block whose `dx_countlimit` is
/// at `at` (`ext4_dx_csum`): the CRC32C, seeded per inode, of the block up
/// to the last used entry, then `dt_reserved` and a zeroed checksum field
/// of the `struct dx_tail` that follows `limit` entries. Returns where the
/// tail's checksum field is and the checksum; `None` when the limit leaves
/// no room for a tail or the count exceeds it.
pub fn dx_csum(b: &[u8], at: usize, inode_seed: u32) -> Option<(usize, u32)> {
    use super::journal::crc::crc32c;
    let limit = usize::from(le16(b, at));
    let count = usize::from(le16(b, at.checked_add(2)?));
    let tail = at.checked_add(limit.checked_mul(8)?)?;
    if count > limit || tail.checked_add(8)? > b.len() {
        return None;
    }
    // count <= limit, so the used entries end before the tail.
    let used = dx_entry_at(at, count, 0)?;
    let field = tail.checked_add(4)?;
    let mut c = crc32c(inode_seed, b.get(..used)?);
    c = crc32c(c, b.get(tail..field)?);
    c = crc32c(c, &[0; 4]);
    Some((field, c))
}

/// Checks the `dx_tail` of an index block (see [`dx_csum`]).
fn verify_dx_tail(b: &[u8], at: usize, inode_seed: u32) -> Result<(), super::error::Corrupt> {
    let Some((field, computed)) = dx_csum(b, at, inode_seed) else {
        return Err(super::error::Corrupt::BadField {
            field: "dx_countlimit (no room for the dx_tail)",
            value: u64::from(le16(b, at)),
        });
    };
    let stored = le32(b, field);
    if stored != computed {
        return Err(super::error::Corrupt::Checksum {
            structure: "htree index block",
            stored,
            computed,
        });
    }
    Ok(())
}

/// `s_flags` bit: directory hashes use unsigned chars.
const EXT2_FLAGS_UNSIGNED_HASH: u32 = 0x2;

impl<D: crate::block::BlockDevice> super::fs::Ext3<D> {
    /// Looks `name` up through the hash index of directory `ino`:
    /// `Ok(Some(Some(ino)))` found, `Ok(Some(None))` certainly absent,
    /// `Ok(None)` when the index cannot answer (not indexed, unknown hash,
    /// odd structure): the caller then reads the directory linearly.
    pub fn htree_lookup(
        &self,
        ino: u32,
        inode: &super::inode::Inode,
        name: &[u8],
    ) -> super::error::Result<Option<Option<u32>>> {
        use super::features::{Compat, Incompat};
        use super::map::Run;
        let sb = &self.sb;
        if inode.i_flags & super::inode::EXT4_INDEX_FL == 0
            || inode.has_inline_data()
            || !sb.s_feature_compat.contains(Compat::DIR_INDEX)
            || sb.s_feature_incompat.contains(Incompat::CASEFOLD)
            || name == b"."
            || name == b".."
        {
            return Ok(None);
        }
        let bs = u64::from(self.block_size());
        // The superblock parse bounds the block size to 1K..64K, so the
        // division is never by zero.
        let nblocks = inode.i_size.checked_div(bs).unwrap_or(0);
        let mut mapper = self.mapper(ino, inode);
        let csum_seed = self.inode_csum_seed(ino, inode);
        let mut read = |lblk: u32| -> super::error::Result<Option<Vec<u8>>> {
            if u64::from(lblk) >= nblocks {
                return Ok(None);
            }
            match mapper.run(u64::from(lblk), 1)? {
                Run::Data { pblk, .. } => self
                    .read_block(super::BlockIndex(pblk), &format!("directory inode {ino}"))
                    .map(Some),
                Run::Hole(_) => Ok(None),
            }
        };
        let Some(root_block) = read(0)? else {
            return Ok(None);
        };
        let Some(root) = parse_root(&root_block) else {
            return Ok(None);
        };
        let Some(hash) = name_hash(sb, root.hash_version, name) else {
            return Ok(None);
        };
        let mut node = root_block;
        let mut at = DX_ROOT_COUNTLIMIT;
        let verify = |b: &[u8], at: usize, lblk: u32| -> super::error::Result<()> {
            match csum_seed {
                Some(seed) => verify_dx_tail(b, at, seed).map_err(|c| {
                    super::error::Error::corrupt(format!("directory inode {ino} block {lblk}"), c)
                }),
                None => Ok(()),
            }
        };
        verify(&node, at, 0)?;
        // One index node per level; at most three levels.
        for _ in 0..root.indirect_levels {
            let Some((blocks, _)) = probe(&node, at, hash) else {
                return Ok(None);
            };
            let Some(next) = read(blocks[0])? else {
                return Ok(None);
            };
            node = next;
            at = DX_NODE_COUNTLIMIT;
            verify(&node, at, blocks[0])?;
        }
        let Some((leaves, open_end)) = probe(&node, at, hash) else {
            return Ok(None);
        };
        let filetype = sb.has_filetype();
        for leaf in leaves {
            let Some(block) = read(leaf)? else {
                return Ok(None);
            };
            if let Some(seed) = csum_seed {
                super::dir::verify_tail(&block, seed).map_err(|c| {
                    super::error::Error::corrupt(format!("directory inode {ino} block {leaf}"), c)
                })?;
            }
            let Ok(entries) = super::dir::parse_block(&block, filetype) else {
                return Ok(None);
            };
            if let Some(e) = entries.into_iter().find(|e| e.name == name) {
                return Ok(Some(Some(e.inode)));
            }
        }
        Ok(if open_end { None } else { Some(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_nodes_whose_limit_passes_the_block_or_the_address_space_are_refused() {
        // dx_countlimit at 0: limit 200 entries of 8 bytes > a 1 KiB block.
        let mut b = vec![0u8; 1024];
        b[0..2].copy_from_slice(&200u16.to_le_bytes());
        b[2..4].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(probe(&b, 0, 7), None);
        assert_eq!(dx_csum(&b, 0, 0), None);
        // A count/limit position at the end of the address space.
        assert_eq!(probe(&b, usize::MAX - 1, 7), None);
        assert_eq!(dx_csum(&b, usize::MAX - 1, 0), None);
        assert_eq!(covering_entry(&b, usize::MAX - 8, 5, 7), 4);
        // Limit 100 fits: one entry, the block of entry 0.
        b[0..2].copy_from_slice(&100u16.to_le_bytes());
        b[4..8].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(probe(&b, 0, 7), Some((vec![9], false)));
    }

    #[test]
    fn hashes_match_debugfs_dx_hash() {
        // `debugfs -R "dx_hash -h ALG NAME"` (zero seed) and with
        // `-s 00112233-4455-6677-8899-aabbccddeeff`.
        let zero = [0u32; 4];
        assert_eq!(
            dirhash(b"hello", DX_HASH_HALF_MD4, &zero),
            Some(0x1746_da32)
        );
        assert_eq!(dirhash(b"hello", DX_HASH_TEA, &zero), Some(0x6f5b_b1a8));
        assert_eq!(dirhash(b"hello", DX_HASH_LEGACY, &zero), Some(0x3225_2546));
        let seed = [0x3322_1100, 0x7766_5544, 0xbbaa_9988, 0xffee_ddcc];
        let name = b"a-rather-long-name-longer-than-32-bytes-\\xe9";
        assert_eq!(dirhash(name, DX_HASH_HALF_MD4, &seed), Some(0x15ed_f98a));
    }

    #[test]
    fn minor_hashes_match_debugfs_dx_hash() {
        // The "(minor ...)" part of the same `debugfs -R "dx_hash ..."`.
        let zero = [0u32; 4];
        assert_eq!(
            dirhash_pair(b"hello", DX_HASH_HALF_MD4, &zero),
            Some((0x1746_da32, 0x4200_13b5))
        );
        assert_eq!(
            dirhash_pair(b"hello", DX_HASH_TEA, &zero),
            Some((0x6f5b_b1a8, 0x2319_17c2))
        );
        assert_eq!(
            dirhash_pair(b"hello", DX_HASH_LEGACY, &zero),
            Some((0x3225_2546, 0))
        );
        let seed = [0x3322_1100, 0x7766_5544, 0xbbaa_9988, 0xffee_ddcc];
        let name = b"a-rather-long-name-longer-than-32-bytes-\\xe9";
        assert_eq!(
            dirhash_pair(name, DX_HASH_HALF_MD4, &seed),
            Some((0x15ed_f98a, 0x4760_802d))
        );
        let name = b"a-rather-long-name-longer-than-32-bytes";
        assert_eq!(
            dirhash_pair(name, DX_HASH_TEA, &seed),
            Some((0xe0e4_e55c, 0x4576_30e4))
        );
        assert_eq!(dirhash_pair(b"x", 6, &zero), None);
    }
}
