//! Is this file a disk image? `uml_moo -d` writes into whatever file a COW
//! header names once its size and mtime match, and both are easy to
//! predict (a user's `~/.bashrc` keeps the mtime of `/etc/skel/.bashrc`),
//! so before writing it looks for the signature of a filesystem, a
//! partition table or another on-disk format at the start of the file.
//! [`disk_signature`] is a pure function of the file's first
//! [`HEAD_LEN`] bytes.
//!
//! | Format                  | Where                  | What                        |
//! |-------------------------|------------------------|-----------------------------|
//! | ext2/ext3/ext4          | 1080 (0x438)           | `s_magic` 0xEF53, LE        |
//! | MBR, FAT, NTFS boot     | 510 (0x1FE)            | 0x55 0xAA                   |
//! | GPT                     | 512 or 4096            | `EFI PART`                  |
//! | XFS                     | 0                      | `XFSB`                      |
//! | btrfs                   | 0x10040                | `_BHRfS_M`                  |
//! | Linux swap              | page size − 10         | `SWAPSPACE2`, `SWAP-SPACE`  |
//! | ISO 9660                | 0x8001                 | `CD001`                     |
//! | squashfs                | 0                      | `hsqs` (LE) or `sqsh` (BE)  |
//! | LUKS                    | 0                      | `LUKS` 0xBA 0xBE            |
//! | LVM2 physical volume    | 512 (label in sector 1)| `LABELONE`                  |
//! | F2FS                    | 1024                   | 0xF2F52010, LE              |
//!
//! Swap is looked for at the end of pages of 4, 8, 16 and 64 KiB.

/// Bytes of the start of a file [`disk_signature`] looks at: enough for
/// btrfs's superblock at 64 KiB.
pub const HEAD_LEN: usize = 0x11000;

/// Page sizes whose last 10 bytes may hold a swap signature.
const SWAP_PAGE_SIZES: [usize; 4] = [4096, 8192, 16384, 65536];

/// The fixed-offset magics: (offset, bytes, name).
const MAGICS: [(usize, &[u8], &str); 11] = [
    (1080, &[0x53, 0xEF], "ext2/ext3/ext4 filesystem"),
    (512, b"EFI PART", "GPT partition table"),
    (4096, b"EFI PART", "GPT partition table"),
    (0, b"XFSB", "XFS filesystem"),
    (0x10040, b"_BHRfS_M", "btrfs filesystem"),
    (0x8001, b"CD001", "ISO 9660 filesystem"),
    (0, b"hsqs", "squashfs filesystem"),
    (0, b"sqsh", "squashfs filesystem"),
    (0, b"LUKS\xba\xbe", "LUKS volume"),
    (512, b"LABELONE", "LVM2 physical volume"),
    (1024, &[0x10, 0x20, 0xF5, 0xF2], "F2FS filesystem"),
];

/// What the start of a file looks like, or `None` when it has none of the
/// signatures in the table above. `head` is the file's first bytes (up to
/// [`HEAD_LEN`]; a shorter file gives fewer).
pub fn disk_signature(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| {
        offset
            .checked_add(magic.len())
            .and_then(|end| head.get(offset..end))
            == Some(magic)
    };
    for (offset, magic, name) in MAGICS {
        if at(offset, magic) {
            return Some(name);
        }
    }
    for page in SWAP_PAGE_SIZES {
        let magic_at = page.saturating_sub(10);
        if at(magic_at, b"SWAPSPACE2") || at(magic_at, b"SWAP-SPACE") {
            return Some("Linux swap area");
        }
    }
    // Last: many formats (FAT, NTFS, an MBR before any of the above) end
    // their first sector with the boot signature.
    if at(510, &[0x55, 0xAA]) {
        return Some("MBR partition table or boot sector");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, magic: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEAD_LEN];
        b[offset..offset + magic.len()].copy_from_slice(magic);
        b
    }

    #[test]
    fn each_signature_in_the_table_is_recognised() {
        assert_eq!(
            disk_signature(&with(1080, &[0x53, 0xEF])),
            Some("ext2/ext3/ext4 filesystem")
        );
        assert_eq!(
            disk_signature(&with(510, &[0x55, 0xAA])),
            Some("MBR partition table or boot sector")
        );
        assert!(disk_signature(&with(512, b"EFI PART")).is_some());
        assert!(disk_signature(&with(0, b"XFSB")).is_some());
        assert!(disk_signature(&with(0x10040, b"_BHRfS_M")).is_some());
        assert!(disk_signature(&with(0x8001, b"CD001")).is_some());
        assert!(disk_signature(&with(0, b"hsqs")).is_some());
        assert!(disk_signature(&with(0, b"LUKS\xba\xbe")).is_some());
        assert!(disk_signature(&with(512, b"LABELONE")).is_some());
        for page in SWAP_PAGE_SIZES {
            assert_eq!(
                disk_signature(&with(page - 10, b"SWAPSPACE2")),
                Some("Linux swap area")
            );
        }
    }

    #[test]
    fn text_zeros_and_short_files_have_no_signature() {
        assert_eq!(disk_signature(b""), None);
        assert_eq!(disk_signature(&vec![0u8; HEAD_LEN]), None);
        let bashrc = b"# ~/.bashrc: executed by bash(1) for non-login shells.\n".repeat(60);
        assert_eq!(disk_signature(&bashrc), None);
        // A magic cut off by the end of the file does not count.
        assert_eq!(disk_signature(&with(1080, &[0x53, 0xEF])[..1081]), None);
    }

    #[test]
    fn a_magic_one_byte_off_is_not_recognised() {
        assert_eq!(disk_signature(&with(1081, &[0x53, 0xEF])), None);
        assert_eq!(disk_signature(&with(509, &[0x55, 0xAA])), None);
    }
}
