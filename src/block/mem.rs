//! An in-memory block device, for tests and for building small images.

use super::{check_range, BlockDevice};
use std::io;
use std::sync::RwLock;

/// A fixed-size device held in memory.
#[derive(Debug, Default)]
pub struct MemDevice {
    bytes: RwLock<Vec<u8>>,
}

impl MemDevice {
    /// A device holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        MemDevice {
            bytes: RwLock::new(bytes),
        }
    }

    /// A zero-filled device of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        Self::new(vec![0; len])
    }

    /// A copy of the device's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl BlockDevice for MemDevice {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.bytes.read().unwrap_or_else(|e| e.into_inner());
        check_range(offset, buf.len(), bytes.len() as u64)?;
        let start =
            usize::try_from(offset).map_err(|_| super::out_of_range(offset, buf.len(), 0))?;
        buf.copy_from_slice(&bytes[start..start + buf.len()]);
        Ok(())
    }

    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut bytes = self.bytes.write().unwrap_or_else(|e| e.into_inner());
        check_range(offset, buf.len(), bytes.len() as u64)?;
        let start =
            usize::try_from(offset).map_err(|_| super::out_of_range(offset, buf.len(), 0))?;
        bytes[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.bytes.read().unwrap_or_else(|e| e.into_inner()).len() as u64
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}
