//! What a capture file is, as opposed to what its packets say: the `info` command's data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::LinkType;
use super::source::Compression;

/// Which container the file uses, as found in its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap { big_endian: bool, nanosecond: bool },
    PcapNg,
}

/// One interface (pcapng IDB) or the single link of a pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub link: LinkType,
    pub snaplen: u32,
    /// Timestamp units per second.
    pub units_per_sec: u64,
    pub offset_sec: i64,
}

/// Everything a pass over the file learns about its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub compression: Compression,
    pub format: Option<FileFormat>,
    /// pcap's version field.
    pub version: Option<(u16, u16)>,
    /// pcapng sections, and whether each was big-endian.
    pub sections: u64,
    pub section_byte_orders: Vec<bool>,
    pub interfaces: Vec<InterfaceInfo>,
    /// Packet records (pcap records, pcapng enhanced, simple and obsolete packet blocks).
    pub packets: u64,
    /// Packets of each link type, in the order the types first came: a file nearly always
    /// has one, which a frame finds first (a map lookup per frame cost more than the rest of
    /// counting it).
    pub packets_by_link: Vec<(LinkType, u64)>,
    pub obsolete_packet_blocks: u64,
    /// pcapng blocks that carry no packets and are not needed, by kind.
    pub other_blocks: BTreeMap<String, u64>,
    pub first_ts_ns: Option<i64>,
    /// Time of the last packet in file order, and the latest time of any packet.
    pub last_ts_ns: Option<i64>,
    pub max_ts_ns: Option<i64>,
    /// Packets whose time is earlier than the packet before them.
    pub out_of_order: u64,
    /// Packets the snaplen cut short (captured fewer bytes than were on the wire).
    pub snaplen_cut: u64,
    /// Offset where the file ends inside a record: everything before it was read.
    pub truncated_at: Option<u64>,
}

impl FileInfo {
    pub fn new(path: &Path) -> Self {
        FileInfo {
            path: path.to_path_buf(),
            compression: Compression::None,
            format: None,
            version: None,
            sections: 0,
            section_byte_orders: Vec::new(),
            interfaces: Vec::new(),
            packets: 0,
            packets_by_link: Vec::new(),
            obsolete_packet_blocks: 0,
            other_blocks: BTreeMap::new(),
            first_ts_ns: None,
            last_ts_ns: None,
            max_ts_ns: None,
            out_of_order: 0,
            snaplen_cut: 0,
            truncated_at: None,
        }
    }
}
