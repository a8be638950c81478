//! Frames in, plain typed TCP segment records out. The wire format stops here: every later
//! stage works on [`Segment`] values.

mod decode;
mod defrag;
mod fast;
mod link;
mod segment;

pub use decode::{Decoded, Decoder};
pub use segment::{Segment, SkipReason, TcpFlags, TcpOptions, Timestamp};
