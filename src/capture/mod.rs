//! Capture files: pcap and pcapng blocks in, timestamped link-layer frames out.
//!
//! Nothing past this module knows about file formats; nothing in it knows about IP or TCP.

mod error;
mod info;
mod merge;
mod reader;
mod source;

pub use error::CaptureError;
pub use info::{FileFormat, FileInfo, InterfaceInfo};
pub use merge::MergedCaptures;
pub use reader::CaptureReader;
pub use source::{Compression, STDIN_PATH};

/// A link-layer type from the tcpdump registry (`LINKTYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// OpenBSD's DLT_RAW value as written by some BSDs.
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured frame, borrowed from the reader's buffer until the next one is read.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub link: LinkType,
    /// The captured bytes (possibly fewer than `orig_len` when the snaplen cut the packet).
    pub data: &'a [u8],
    pub orig_len: u32,
    /// Byte offset of the record in the (decompressed) file, for messages about this frame.
    pub offset: u64,
}
