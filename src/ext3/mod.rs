//! ext2/ext3 filesystem library: reads (and later writes) through the block-device trait.
