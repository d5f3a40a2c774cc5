//! Feature flags of the superblock (`s_feature_compat`, `_incompat`,
//! `_ro_compat`), their names as e2fsprogs prints them, and the check that
//! refuses filesystems this reader cannot interpret.

/// Defines a flag set newtype with named bits.
macro_rules! flags {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, { $($(#[$fdoc:meta])* $flag:ident = $bit:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$fdoc])* pub const $flag: u32 = $bit;)*

            /// True when `bit` is set.
            pub fn contains(self, bit: u32) -> bool {
                self.0 & bit == bit
            }

            /// The names of the set bits in bit order (unknown bits as
            /// e2fsprogs writes them, e.g. `FEATURE_I12`).
            pub fn names(self) -> Vec<String> {
                (0..32)
                    .map(|i| 1u32 << i)
                    .filter(|bit| self.0 & bit != 0)
                    .map(|bit| match bit {
                        $($bit => $text.to_string(),)*
                        _ => format!("FEATURE_{}{}", $prefix, bit.trailing_zeros()),
                    })
                    .collect()
            }
        }
    };
}

flags!(
    /// `s_feature_compat`.
    Compat, "C", {
    /// dir_prealloc
    DIR_PREALLOC = 0x1, "dir_prealloc";
    /// imagic_inodes
    IMAGIC_INODES = 0x2, "imagic_inodes";
    /// has_journal
    HAS_JOURNAL = 0x4, "has_journal";
    /// ext_attr
    EXT_ATTR = 0x8, "ext_attr";
    /// resize_inode
    RESIZE_INODE = 0x10, "resize_inode";
    /// dir_index
    DIR_INDEX = 0x20, "dir_index";
    /// lazy_bg
    LAZY_BG = 0x40, "lazy_bg";
    /// snapshot_bitmap
    EXCLUDE_BITMAP = 0x100, "snapshot_bitmap";
    /// sparse_super2
    SPARSE_SUPER2 = 0x200, "sparse_super2";
    /// fast_commit
    FAST_COMMIT = 0x400, "fast_commit";
    /// stable_inodes
    STABLE_INODES = 0x800, "stable_inodes";
    /// orphan_file
    ORPHAN_FILE = 0x1000, "orphan_file";
});

flags!(
    /// `s_feature_incompat`.
    Incompat, "I", {
    /// compression
    COMPRESSION = 0x1, "compression";
    /// filetype
    FILETYPE = 0x2, "filetype";
    /// needs_recovery
    RECOVER = 0x4, "needs_recovery";
    /// journal_dev
    JOURNAL_DEV = 0x8, "journal_dev";
    /// meta_bg
    META_BG = 0x10, "meta_bg";
    /// extent
    EXTENTS = 0x40, "extent";
    /// 64bit
    BIT64 = 0x80, "64bit";
    /// mmp
    MMP = 0x100, "mmp";
    /// flex_bg
    FLEX_BG = 0x200, "flex_bg";
    /// ea_inode
    EA_INODE = 0x400, "ea_inode";
    /// dirdata
    DIRDATA = 0x1000, "dirdata";
    /// metadata_csum_seed
    CSUM_SEED = 0x2000, "metadata_csum_seed";
    /// large_dir
    LARGEDIR = 0x4000, "large_dir";
    /// inline_data
    INLINE_DATA = 0x8000, "inline_data";
    /// encrypt
    ENCRYPT = 0x10000, "encrypt";
    /// casefold
    CASEFOLD = 0x20000, "casefold";
});

flags!(
    /// `s_feature_ro_compat`.
    RoCompat, "R", {
    /// sparse_super
    SPARSE_SUPER = 0x1, "sparse_super";
    /// large_file
    LARGE_FILE = 0x2, "large_file";
    /// huge_file
    HUGE_FILE = 0x8, "huge_file";
    /// uninit_bg (gdt_csum)
    GDT_CSUM = 0x10, "uninit_bg";
    /// dir_nlink
    DIR_NLINK = 0x20, "dir_nlink";
    /// extra_isize
    EXTRA_ISIZE = 0x40, "extra_isize";
    /// snapshot
    HAS_SNAPSHOT = 0x80, "snapshot";
    /// quota
    QUOTA = 0x100, "quota";
    /// bigalloc
    BIGALLOC = 0x200, "bigalloc";
    /// metadata_csum
    METADATA_CSUM = 0x400, "metadata_csum";
    /// replica
    REPLICA = 0x800, "replica";
    /// read-only
    READONLY = 0x1000, "read-only";
    /// project
    PROJECT = 0x2000, "project";
    /// shared_blocks
    SHARED_BLOCKS = 0x4000, "shared_blocks";
    /// verity
    VERITY = 0x8000, "verity";
    /// orphan_present
    ORPHAN_PRESENT = 0x10000, "orphan_present";
});

/// The incompatible features this reader understands. Everything else in
/// `s_feature_incompat` makes [`unsupported_incompat`] name it: reading on would give
/// garbage.
pub const READABLE_INCOMPAT: u32 = Incompat::FILETYPE
    | Incompat::RECOVER
    | Incompat::META_BG
    | Incompat::EXTENTS
    | Incompat::BIT64
    | Incompat::MMP
    | Incompat::FLEX_BG
    | Incompat::CSUM_SEED
    | Incompat::LARGEDIR
    | Incompat::INLINE_DATA
    | Incompat::CASEFOLD;

/// Returns the name of the first incompatible feature this reader cannot
/// read, if any. Read-only-compatible features never prevent reading.
pub fn unsupported_incompat(incompat: Incompat) -> Option<String> {
    let unknown = Incompat(incompat.0 & !READABLE_INCOMPAT);
    unknown.names().into_iter().next()
}

/// Everything in the three words, in the order `dumpe2fs` prints them.
pub fn all_names(c: Compat, i: Incompat, r: RoCompat) -> Vec<String> {
    let mut v = c.names();
    v.extend(i.names());
    v.extend(r.names());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_e2fsprogs_order_and_spelling() {
        let names = all_names(Compat(0x3c), Incompat(0x2c2), RoCompat(0x46b));
        assert_eq!(
            names.join(" "),
            "has_journal ext_attr resize_inode dir_index filetype extent 64bit flex_bg \
             sparse_super large_file huge_file dir_nlink extra_isize metadata_csum"
        );
    }

    #[test]
    fn unknown_and_unreadable_incompat_bits_are_named() {
        assert_eq!(unsupported_incompat(Incompat(0x2 | 0x40)), None);
        assert_eq!(
            unsupported_incompat(Incompat(0x10000)).as_deref(),
            Some("encrypt")
        );
        assert_eq!(
            unsupported_incompat(Incompat(1 << 30)).as_deref(),
            Some("FEATURE_I30")
        );
    }
}
