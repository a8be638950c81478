//! Streaming reader over pcap and pcapng files, built on pcap-parser's refill/parse/consume loop.
//! Memory use is bounded by the largest record, never by the file size.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError};

use super::{CaptureError, Frame, LinkType};

/// Initial buffer: comfortably holds any record a 64 KiB-snaplen capture can contain.
const INITIAL_BUFFER: usize = 1 << 18;
/// No capture tool writes records this large; a length field beyond it means corruption.
const MAX_BUFFER: usize = 1 << 26;

/// Which container the file uses, as found in its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap { big_endian: bool, nanosecond: bool },
    PcapNg,
}

/// What a full pass over the file saw besides the frames themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub format: Option<FileFormat>,
    /// Packet records (pcap records, pcapng enhanced/simple packet blocks).
    pub packets: u64,
    /// Offset where the file ends inside a record: everything before it was read.
    pub truncated_at: Option<u64>,
    /// Packets whose time is earlier than the packet before them.
    pub out_of_order: u64,
    /// pcapng blocks that carry no packets and are not needed (statistics, names, custom ...).
    pub other_blocks: u64,
}

/// One pcapng interface, as declared by its Interface Description Block.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second (`if_tsresol`).
    units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_sec: i64,
}

pub struct CaptureReader {
    path: PathBuf,
    inner: Box<dyn PcapReaderIterator + Send>,
}

impl CaptureReader {
    /// Opens a capture file and checks that it starts like pcap or pcapng.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        if path.is_dir() {
            return Err(CaptureError::new(
                path,
                None,
                "is a directory, not a capture file",
            ));
        }
        let file = File::open(path).map_err(|e| CaptureError::new(path, None, open_message(&e)))?;
        Self::from_reader(path, file)
    }

    /// Wraps any byte stream; `path` only names it in messages.
    pub fn from_reader(
        path: &Path,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let inner = pcap_parser::create_reader(INITIAL_BUFFER, reader).map_err(|e| {
            let message = match e {
                PcapError::Eof => "empty file: expected a pcap or pcapng header".to_string(),
                PcapError::Incomplete(_) => {
                    "file ends inside the file header (truncated capture?)".to_string()
                }
                PcapError::ReadError => "read error".to_string(),
                _ => "not a pcap or pcapng capture: unknown magic number".to_string(),
            };
            CaptureError::new(path, Some(0), message)
        })?;
        Ok(CaptureReader {
            path: path.to_path_buf(),
            inner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file, calling `on_frame` for every packet record in file order.
    ///
    /// A file cut off inside a record is not an error: the frames before the cut are
    /// delivered and `truncated_at` says where it happened.
    pub fn read_frames(
        &mut self,
        mut on_frame: impl FnMut(&Frame<'_>),
    ) -> Result<ReadSummary, CaptureError> {
        let mut summary = ReadSummary::default();
        let mut legacy_link = None;
        let mut legacy_nanos = false;
        let mut interfaces: Vec<Interface> = Vec::new();
        let mut last_ts: Option<i64> = None;
        let mut capacity = INITIAL_BUFFER;

        loop {
            let offset = self.inner.consumed() as u64;
            match self.inner.next() {
                Ok((size, block)) => {
                    let frame = match &block {
                        PcapBlockOwned::LegacyHeader(header) => {
                            legacy_link = Some(LinkType(header.network.0 as u32));
                            legacy_nanos = header.is_nanosecond_precision();
                            summary.format = Some(FileFormat::Pcap {
                                big_endian: header.is_bigendian(),
                                nanosecond: legacy_nanos,
                            });
                            None
                        }
                        PcapBlockOwned::Legacy(record) => {
                            let link = legacy_link.ok_or_else(|| {
                                CaptureError::new(
                                    &self.path,
                                    Some(offset),
                                    "packet before file header",
                                )
                            })?;
                            let frac_ns = if legacy_nanos {
                                i64::from(record.ts_usec)
                            } else {
                                i64::from(record.ts_usec) * 1_000
                            };
                            Some(Frame {
                                ts_ns: i64::from(record.ts_sec) * 1_000_000_000 + frac_ns,
                                link,
                                data: record.data,
                                orig_len: record.origlen,
                                offset,
                            })
                        }
                        PcapBlockOwned::NG(block) => {
                            summary.format.get_or_insert(FileFormat::PcapNg);
                            match block {
                                Block::SectionHeader(_) => {
                                    // Interface ids restart in every section.
                                    interfaces.clear();
                                    None
                                }
                                Block::InterfaceDescription(idb) => {
                                    let units_per_sec = idb.ts_resolution().ok_or_else(|| {
                                        CaptureError::new(
                                            &self.path,
                                            Some(offset),
                                            format!("invalid if_tsresol {}", idb.if_tsresol),
                                        )
                                    })?;
                                    interfaces.push(Interface {
                                        link: LinkType(idb.linktype.0 as u32),
                                        units_per_sec,
                                        offset_sec: idb.ts_offset(),
                                    });
                                    None
                                }
                                Block::EnhancedPacket(epb) => {
                                    let iface =
                                        interfaces.get(epb.if_id as usize).ok_or_else(|| {
                                            CaptureError::new(
                                                &self.path,
                                                Some(offset),
                                                format!(
                                                    "packet names undeclared interface {}",
                                                    epb.if_id
                                                ),
                                            )
                                        })?;
                                    let units =
                                        (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                    Some(Frame {
                                        ts_ns: units_to_ns(units, iface.units_per_sec)
                                            .saturating_add(
                                                iface.offset_sec.saturating_mul(1_000_000_000),
                                            ),
                                        link: iface.link,
                                        data: epb.packet_data(),
                                        orig_len: epb.origlen,
                                        offset,
                                    })
                                }
                                Block::SimplePacket(spb) => {
                                    let iface = interfaces.first().ok_or_else(|| {
                                        CaptureError::new(
                                            &self.path,
                                            Some(offset),
                                            "simple packet block before any interface",
                                        )
                                    })?;
                                    // Simple packet blocks carry no time: the previous packet's time
                                    // is the best estimate and keeps the stream ordered.
                                    Some(Frame {
                                        ts_ns: last_ts.unwrap_or(0),
                                        link: iface.link,
                                        data: spb.packet_data(),
                                        orig_len: spb.origlen,
                                        offset,
                                    })
                                }
                                _ => {
                                    summary.other_blocks += 1;
                                    None
                                }
                            }
                        }
                    };
                    if let Some(frame) = frame {
                        summary.packets += 1;
                        if last_ts.is_some_and(|t| frame.ts_ns < t) {
                            summary.out_of_order += 1;
                        }
                        last_ts = Some(frame.ts_ns);
                        on_frame(&frame);
                    }
                    self.inner.consume(size);
                }
                Err(PcapError::Eof) => break,
                Err(PcapError::Incomplete(_)) => {
                    if self.inner.reader_exhausted() {
                        summary.truncated_at = Some(offset);
                        break;
                    }
                    self.inner
                        .refill()
                        .map_err(|_| CaptureError::new(&self.path, Some(offset), "read error"))?;
                }
                Err(PcapError::UnexpectedEof) => {
                    summary.truncated_at = Some(offset);
                    break;
                }
                Err(PcapError::BufferTooSmall) => {
                    if capacity >= MAX_BUFFER {
                        return Err(CaptureError::new(
                            &self.path,
                            Some(offset),
                            format!("record longer than {MAX_BUFFER} bytes: corrupt length field"),
                        ));
                    }
                    capacity *= 4;
                    self.inner.grow(capacity);
                    self.inner
                        .refill()
                        .map_err(|_| CaptureError::new(&self.path, Some(offset), "read error"))?;
                }
                Err(PcapError::ReadError) => {
                    return Err(CaptureError::new(&self.path, Some(offset), "read error"));
                }
                Err(e) => {
                    let what = match summary.format {
                        Some(FileFormat::PcapNg) => "corrupt pcapng block",
                        _ => "corrupt pcap record",
                    };
                    return Err(CaptureError::new(
                        &self.path,
                        Some(offset),
                        format!("{what} ({})", short_error(&e)),
                    ));
                }
            }
        }
        Ok(summary)
    }
}

fn units_to_ns(units: u64, units_per_sec: u64) -> i64 {
    let ns = u128::from(units) * 1_000_000_000 / u128::from(units_per_sec.max(1));
    i64::try_from(ns).unwrap_or(i64::MAX)
}

fn short_error(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("{kind:?}").to_lowercase()
        }
        other => format!("{other:?}").to_lowercase(),
    }
}

fn open_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => format!("cannot open: {e}"),
    }
}
