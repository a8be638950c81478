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
/// libpcap's MAXIMUM_SNAPLEN: no pcap record's captured length is larger.
const MAX_SNAPLEN: u32 = 262_144;
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

    /// A record that does not fit in the rest of the file is either cut off (the capture
    /// stopped mid-write) or has a corrupt length field. Lengths no writer produces mean
    /// the latter: that is an error, not a truncation.
    fn check_plausible_length(
        &self,
        format: Option<FileFormat>,
        offset: u64,
    ) -> Result<(), CaptureError> {
        let data = self.inner.data();
        let read_u32 = |at: usize, big_endian: bool| -> Option<u32> {
            let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            })
        };
        let problem = match format {
            Some(FileFormat::Pcap { big_endian, .. }) => read_u32(8, big_endian)
                .filter(|&caplen| caplen > MAX_SNAPLEN)
                .map(|caplen| format!("record length {caplen} exceeds the {MAX_SNAPLEN}-byte maximum snaplen: corrupt record header")),
            Some(FileFormat::PcapNg) => {
                // The section's byte order is unknown here; a sane length reads sanely one way.
                let le = read_u32(4, false);
                let be = read_u32(4, true);
                match (le, be) {
                    (Some(le), Some(be)) if le.min(be) as usize > MAX_BUFFER || le.min(be) < 12 => {
                        Some(format!("block length {le} is impossible: corrupt block header"))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        match problem {
            Some(message) => Err(CaptureError::new(&self.path, Some(offset), message)),
            None => Ok(()),
        }
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
                                    let units_per_sec =
                                        ts_resolution(idb.if_tsresol).ok_or_else(|| {
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
                        self.check_plausible_length(summary.format, offset)?;
                        summary.truncated_at = Some(offset);
                        break;
                    }
                    self.inner
                        .refill()
                        .map_err(|_| CaptureError::new(&self.path, Some(offset), "read error"))?;
                }
                Err(PcapError::UnexpectedEof) => {
                    self.check_plausible_length(summary.format, offset)?;
                    summary.truncated_at = Some(offset);
                    break;
                }
                Err(PcapError::BufferTooSmall) => {
                    self.check_plausible_length(summary.format, offset)?;
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

/// `if_tsresol`: the high bit selects a power of two, otherwise a power of ten.
/// (pcap-parser 0.17 rejects every power-of-two value above 63 before masking the bit off.)
fn ts_resolution(if_tsresol: u8) -> Option<u64> {
    let exponent = u32::from(if_tsresol & 0x7f);
    if if_tsresol & 0x80 != 0 {
        1u64.checked_shl(exponent).filter(|_| exponent < 64)
    } else {
        10u64.checked_pow(exponent)
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

#[cfg(test)]
mod tests {
    use super::ts_resolution;

    #[test]
    fn ts_resolution_reads_both_bases() {
        assert_eq!(ts_resolution(6), Some(1_000_000));
        assert_eq!(ts_resolution(9), Some(1_000_000_000));
        assert_eq!(ts_resolution(0x80 | 8), Some(256));
        assert_eq!(ts_resolution(0x80 | 64), None);
        assert_eq!(ts_resolution(20), None);
    }
}
