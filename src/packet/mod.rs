//! Frames in, plain typed TCP segment records out. The wire format stops here: every later
//! stage works on [`Segment`] values.

mod decode;
mod link;
mod segment;

pub use decode::decode;
pub use segment::{Segment, SkipReason, TcpFlags, TcpOptions, Timestamp};
