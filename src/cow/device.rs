//! The COW block device: a [`BlockDevice`] made of a COW file over a
//! backing device.
//!
//! ```text
//!   read sector i:  bit i set?  -> COW file at data_offset + i * sector_size
//!                   otherwise   -> backing device at i * sector_size
//!   write:          data into the COW data area first (a partial sector is
//!                   completed from the current view), then the bitmap bits
//! ```
//!
//! The backing device is only ever read.

use super::bitmap::Bitmap;
use super::header::Header;
use crate::block::{check_range, BlockDevice, FileDevice};
use crate::block::{u64_from, usize_from};
use std::io;
use std::ops::Range;
use std::sync::{Mutex, RwLock};

/// A COW file over a backing device.
#[derive(Debug)]
pub struct CowDevice<B> {
    cow: FileDevice,
    backing: B,
    header: Header,
    bitmap: RwLock<Bitmap>,
    /// Serialises writers: a partial-sector write is read-modify-write.
    write_lock: Mutex<()>,
}

fn poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    e.into_inner()
}

impl<B: BlockDevice> CowDevice<B> {
    /// Assembles a device from an opened COW file, its parsed header, its
    /// bitmap and the backing device (see [`super::open`] for the checks).
    pub fn new(cow: FileDevice, header: Header, bitmap: Bitmap, backing: B) -> Self {
        CowDevice {
            cow,
            backing,
            header,
            bitmap: RwLock::new(bitmap),
            write_lock: Mutex::new(()),
        }
    }

    /// The COW file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The COW file.
    pub fn cow_file(&self) -> &FileDevice {
        &self.cow
    }

    /// The backing device.
    pub fn backing(&self) -> &B {
        &self.backing
    }

    /// A copy of the bitmap.
    pub fn bitmap(&self) -> Bitmap {
        self.bitmap.read().unwrap_or_else(poisoned).clone()
    }

    /// Number of sectors held in the COW file.
    pub fn dirty_sectors(&self) -> u64 {
        self.bitmap.read().unwrap_or_else(poisoned).count_set()
    }

    /// Calls `f` with the sectors of `range` grouped into runs from the same
    /// source.
    pub fn with_runs<T>(
        &self,
        range: Range<u64>,
        f: impl FnOnce(&mut dyn Iterator<Item = (Range<u64>, bool)>) -> T,
    ) -> T {
        let bitmap = self.bitmap.read().unwrap_or_else(poisoned);
        f(&mut bitmap.runs(range))
    }

    fn sector_size(&self) -> u64 {
        u64::from(self.header.sector_size)
    }

    fn data_at(&self, offset: u64) -> u64 {
        self.header.data_offset + offset
    }

    /// Reads `buf` at `offset` of the device, each sector from its source.
    fn read_view(&self, bitmap: &Bitmap, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let ss = self.sector_size();
        let end = offset + u64_from(buf.len());
        for (sectors, in_cow) in bitmap.runs(offset / ss..end.div_ceil(ss)) {
            let from = (sectors.start * ss).max(offset);
            let to = (sectors.end * ss).min(end);
            let part = &mut buf[usize_from(from - offset)..usize_from(to - offset)];
            if in_cow {
                self.cow.read_exact_at(self.data_at(from), part)?;
            } else {
                self.backing.read_exact_at(from, part)?;
            }
        }
        Ok(())
    }

    /// Writes the bitmap bytes `bytes` back to the file.
    fn store_bitmap(&self, bitmap: &Bitmap, bytes: Range<usize>) -> io::Result<()> {
        let needed = usize::try_from(self.header.bitmap_len).unwrap_or(usize::MAX);
        let past_recorded = bytes.end > needed;
        let at = self.header.bitmap_offset + u64_from(bytes.start);
        if past_recorded
            && self.header.bitmap_offset + u64_from(bytes.end) > self.header.data_offset
        {
            // v1/v2 rounding bug: the bit has no room before the data area.
            return Err(io::Error::other(
                "this v1/v2 COW file has no bitmap room for its last sectors (historic rounding bug)",
            ));
        }
        self.cow.write_all_at(at, &bitmap.as_bytes()[bytes])
    }
}

impl<B: BlockDevice> BlockDevice for CowDevice<B> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len())?;
        let bitmap = self.bitmap.read().unwrap_or_else(poisoned);
        self.read_view(&bitmap, offset, buf)
    }

    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let _writer = self.write_lock.lock().unwrap_or_else(poisoned);
        let ss = self.sector_size();
        let end = offset + u64_from(buf.len());
        let first = offset / ss;
        let last = end.div_ceil(ss); // exclusive
        let len = self.len();

        // Complete partial head and tail sectors from the current view, so
        // the COW always holds whole sectors.
        let whole_start = first * ss;
        let whole_end = (last * ss).min(len);
        if whole_start == offset && whole_end == end {
            self.cow.write_all_at(self.data_at(offset), buf)?;
        } else {
            let mut span = vec![0u8; usize_from(whole_end - whole_start)];
            {
                let bitmap = self.bitmap.read().unwrap_or_else(poisoned);
                let head_end = ((first + 1) * ss).min(len);
                self.read_view(
                    &bitmap,
                    whole_start,
                    &mut span[..usize_from(head_end - whole_start)],
                )?;
                if last - 1 > first {
                    let tail_start = (last - 1) * ss;
                    let tail = &mut span[usize_from(tail_start - whole_start)..];
                    self.read_view(&bitmap, tail_start, tail)?;
                }
            }
            span[usize_from(offset - whole_start)..usize_from(end - whole_start)]
                .copy_from_slice(buf);
            self.cow.write_all_at(self.data_at(whole_start), &span)?;
        }

        let mut bitmap = self.bitmap.write().unwrap_or_else(poisoned);
        if let Some(changed) = bitmap.set_range(first..last) {
            self.store_bitmap(&bitmap, changed)?;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.header.size
    }

    fn flush(&self) -> io::Result<()> {
        self.cow.flush()
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        // A sector in the COW is data; elsewhere ask the backing device.
        let ss = self.sector_size();
        let len = self.len();
        if offset >= len {
            return Ok(None);
        }
        let bitmap = self.bitmap.read().unwrap_or_else(poisoned);
        if bitmap.get(offset / ss) {
            let run = bitmap.runs(offset / ss..bitmap.sectors()).next();
            let end = run.map_or(len, |(r, _)| (r.end * ss).min(len));
            return Ok(Some(offset..end));
        }
        let next_cow = bitmap
            .runs(offset / ss..bitmap.sectors())
            .find(|(_, set)| *set)
            .map_or(len, |(r, _)| (r.start * ss).min(len));
        match self.backing.next_data(offset)? {
            Some(r) if r.start < next_cow => Ok(Some(r.start..r.end.min(next_cow))),
            _ if next_cow < len => {
                let run = bitmap.runs(next_cow / ss..bitmap.sectors()).next();
                let run_end = run.map_or(len, |(r, _)| (r.end * ss).min(len));
                Ok(Some(next_cow..run_end))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDevice;
    use proptest::prelude::*;

    /// A COW device over an in-memory backing of `size` patterned bytes,
    /// with a fresh (all-clear) COW file in a temporary file.
    fn fixture(size: u64) -> (tempfile::NamedTempFile, CowDevice<MemDevice>, Vec<u8>) {
        let base: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let header = Header::new_v3(b"/backing".to_vec(), 1, size).unwrap();
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::FileExt::write_all_at(tmp.as_file(), &header.to_bytes().unwrap(), 0)
            .unwrap();
        tmp.as_file().set_len(header.file_len_needed()).unwrap();
        let cow = FileDevice::open_read_write(tmp.path()).unwrap();
        let bitmap = Bitmap::empty(header.sectors());
        let dev = CowDevice::new(cow, header, bitmap, MemDevice::new(base.clone()));
        (tmp, dev, base)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_writes_read_back_like_a_plain_copy(
            size in 1u64..20_000,
            writes in proptest::collection::vec((0u64..20_000, 0usize..3000, any::<u8>()), 1..25),
        ) {
            let (tmp, dev, mut model) = fixture(size);
            for (off, len, byte) in writes {
                let off = off % size;
                let len = len.min((size - off) as usize);
                let data = vec![byte; len];
                dev.write_all_at(off, &data).unwrap();
                model[off as usize..off as usize + len].copy_from_slice(&data);
            }
            let mut all = vec![0u8; size as usize];
            dev.read_exact_at(0, &mut all).unwrap();
            prop_assert_eq!(&all, &model);
            // The bitmap on disk says the same as the one in memory: reopen.
            let file = std::fs::File::open(tmp.path()).unwrap();
            let header = dev.header().clone();
            let on_disk = crate::cow::open::read_bitmap(&file, tmp.path(), &header).unwrap();
            prop_assert_eq!(on_disk, dev.bitmap());
            let reopened = CowDevice::new(
                FileDevice::open_read_only(tmp.path()).unwrap(),
                header,
                dev.bitmap(),
                MemDevice::new((0..size).map(|i| (i * 7 % 251) as u8).collect()),
            );
            let mut again = vec![0u8; size as usize];
            reopened.read_exact_at(0, &mut again).unwrap();
            prop_assert_eq!(&again, &model);
        }
    }

    #[test]
    fn a_partial_sector_write_copies_the_rest_of_the_sector_from_the_backing() {
        let (_tmp, dev, base) = fixture(4096);
        dev.write_all_at(700, b"xyz").unwrap();
        let mut sector = vec![0u8; 512];
        dev.cow_file()
            .read_exact_at(dev.header().data_offset + 512, &mut sector)
            .unwrap();
        let mut expected = base[512..1024].to_vec();
        expected[188..191].copy_from_slice(b"xyz");
        assert_eq!(sector, expected);
        assert!(dev.bitmap().get(1) && !dev.bitmap().get(0) && !dev.bitmap().get(2));
    }

    #[test]
    fn the_backing_device_is_never_written() {
        let (_tmp, dev, base) = fixture(3000);
        dev.write_all_at(0, &[9u8; 3000]).unwrap();
        assert_eq!(dev.backing().to_vec(), base);
    }

    #[test]
    fn access_past_the_end_is_an_error() {
        let (_tmp, dev, _) = fixture(1000);
        assert!(dev.read_exact_at(999, &mut [0u8; 2]).is_err());
        assert!(dev.write_all_at(1000, &[1]).is_err());
    }
}
