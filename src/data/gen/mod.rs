//! Seeded, multi-threaded generators that write the official release formats.

pub mod listops;
pub mod pathfinder;
pub mod raster;
