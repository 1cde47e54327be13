//! The byte parsers of Cadenza, compiled from the main crate's own files with
//! the same module paths, so the fuzz targets test exactly that code.
#![allow(dead_code)]

#[path = "../../src/atomic.rs"]
pub mod atomic;
#[path = "../../src/image.rs"]
pub mod image;
#[path = "../../src/limits.rs"]
pub mod limits;
#[path = "../../src/midi.rs"]
pub mod midi;
#[path = "../../src/roll.rs"]
pub mod roll;
