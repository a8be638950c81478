//! Streaming reader over pcap and pcapng files, built on pcap-parser's refill/parse/consume loop.
//! Memory use is bounded by the largest record, never by the file size.
//!
//! The reader is pull-based: [`CaptureReader::next_frame`] lends out one frame at a time from
//! the parse buffer, and consumes it on the next call. That lets several files be merged by
//! time without copying packets.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError};

use super::info::{FileInfo, InterfaceInfo};
use super::{CaptureError, FileFormat, Frame, LinkType};

/// Initial buffer: comfortably holds any record a 64 KiB-snaplen capture can contain.
const INITIAL_BUFFER: usize = 1 << 18;
/// libpcap's MAXIMUM_SNAPLEN: no pcap record's captured length is larger.
const MAX_SNAPLEN: u32 = 262_144;
/// No capture tool writes records this large; a length field beyond it means corruption.
const MAX_BUFFER: usize = 1 << 26;
/// pcapng Section Header Block type, the same in either byte order.
const PCAPNG_SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// The shortest Section Header Block: 28 bytes.
const PCAPNG_SHB_MIN_LEN: usize = 28;
/// pcapng Obsolete Packet Block (pcapng draft 1.0), still written by old tools.
const OBSOLETE_PACKET_BLOCK: u32 = 0x0000_0002;

/// One pcapng interface, as declared by its Interface Description Block.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second (`if_tsresol`).
    units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_sec: i64,
}

/// How a legacy pcap file lays out its records, as its header says.
#[derive(Debug, Clone, Copy)]
struct LegacyLayout {
    link: LinkType,
    big_endian: bool,
    nanosecond: bool,
    /// Standard records (16-byte headers, not the modified format's): read straight from
    /// the buffer.
    plain: bool,
}

/// The 16-byte record header of standard legacy pcap (the modified format's is longer).
const PCAP_RECORD_HEADER_LEN: usize = 16;

/// Where the current frame lies in the parse buffer, and what is known about it.
#[derive(Debug, Clone, Copy)]
struct Lent {
    ts_ns: i64,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
    offset: u64,
}

impl Lent {
    /// The frame, in `data` (the parse buffer it was lent from).
    fn frame(self, data: &[u8]) -> Frame<'_> {
        Frame {
            ts_ns: self.ts_ns,
            link: self.link,
            data: &data[self.start..self.start + self.len],
            orig_len: self.orig_len,
            offset: self.offset,
        }
    }
}

pub struct CaptureReader {
    path: PathBuf,
    inner: Box<dyn PcapReaderIterator + Send>,
    /// Bytes of the last block, consumed at the next call (its frame was lent out).
    pending_consume: usize,
    /// Set once a legacy pcap header is read.
    legacy: Option<LegacyLayout>,
    section_big_endian: bool,
    interfaces: Vec<Interface>,
    capacity: usize,
    done: bool,
    /// The frame lent out by the last `next_frame`.
    current: Option<Lent>,
    /// The source's last I/O error (the parser only says that one happened).
    last_read_error: Arc<Mutex<Option<String>>>,
    info: FileInfo,
}

impl CaptureReader {
    /// Opens a capture file (or `-` for standard input), decompressing gzip or zstd when
    /// its first bytes say so, and checks that it starts like pcap or pcapng.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let (source, compression) = super::source::open(path)?;
        let mut reader = Self::from_reader(path, source)?;
        reader.info.compression = compression;
        Ok(reader)
    }

    /// Wraps any byte stream; `path` only names it in messages.
    pub fn from_reader(
        path: &Path,
        reader: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        let (mut filling, last_read_error) = super::source::Filling::new(reader);
        // The first bytes, kept to explain a header the parser refuses.
        let mut head = [0u8; PCAPNG_SHB_MIN_LEN];
        let head_len = filling.read(&mut head).unwrap_or(0);
        let head = &head[..head_len];
        // Filled again: the parser reads its first buffer with a single read() call.
        let (source, _) =
            super::source::Filling::new(std::io::Cursor::new(head.to_vec()).chain(filling));
        let inner = pcap_parser::create_reader(INITIAL_BUFFER, source).map_err(|e| {
            let message = match e {
                PcapError::Eof => "empty file: expected a pcap or pcapng header".to_string(),
                PcapError::Incomplete(_) => {
                    "file ends inside the file header (truncated capture?)".to_string()
                }
                PcapError::ReadError => "read error".to_string(),
                // pcap-parser only tries pcapng when the whole section header parses.
                _ if head.starts_with(&PCAPNG_SHB_MAGIC) && head_len < PCAPNG_SHB_MIN_LEN => {
                    "file ends inside the file header (truncated capture?)".to_string()
                }
                _ if head.starts_with(&PCAPNG_SHB_MAGIC) => {
                    "corrupt pcapng section header (byte-order magic or lengths)".to_string()
                }
                _ => "not a pcap or pcapng capture: unknown magic number".to_string(),
            };
            CaptureError::new(path, Some(0), message)
        })?;
        Ok(CaptureReader {
            path: path.to_path_buf(),
            inner,
            pending_consume: 0,
            legacy: None,
            section_big_endian: false,
            interfaces: Vec::new(),
            capacity: INITIAL_BUFFER,
            done: false,
            current: None,
            last_read_error,
            info: FileInfo::new(path),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file has shown so far: complete once `next_frame` has returned `None`.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    pub fn into_info(self) -> FileInfo {
        self.info
    }

    /// Reads the whole file, calling `on_frame` for every packet record in file order.
    pub fn read_frames(
        &mut self,
        mut on_frame: impl FnMut(&Frame<'_>),
    ) -> Result<&FileInfo, CaptureError> {
        while let Some(frame) = self.next_frame()? {
            on_frame(&frame);
        }
        Ok(&self.info)
    }

    /// The next packet record, or `None` at the end of the file.
    ///
    /// A file cut off inside a record is not an error: the frames before the cut are
    /// delivered and [`FileInfo::truncated_at`] says where it happened.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        self.current = None;
        loop {
            if self.pending_consume > 0 {
                // Without moving what is left to the buffer's front: a refill does that, and
                // by then little is left (moving at every half buffer copied the file again).
                self.inner.consume_noshift(self.pending_consume);
                self.pending_consume = 0;
            }
            if self.done {
                return Ok(None);
            }
            let offset = self.inner.consumed() as u64;
            // Nearly every record of a pcap file lies whole in the buffer: read it here, and
            // leave the parser (the general block it builds, its errors, refills and
            // truncation) to the rest. Both give the same frame.
            if let Some(layout) = self.legacy
                && layout.plain
                && let Some((size, lent)) = plain_record(self.inner.data(), layout, offset)
            {
                self.pending_consume = size;
                count(&mut self.info, &lent);
                self.current = Some(lent);
                return Ok(Some(lent.frame(self.inner.data())));
            }
            let CaptureReader {
                inner,
                legacy,
                section_big_endian,
                interfaces,
                info,
                ..
            } = self;
            let parsed = match inner.next() {
                Ok((size, block)) => {
                    let mut state = BlockState {
                        legacy,
                        section_big_endian,
                        interfaces,
                        info,
                    };
                    Ok((size, lend_block(&mut state, &block, offset)))
                }
                Err(e) => Err(owned(e)),
            };
            match parsed {
                Ok((size, lent)) => {
                    self.pending_consume = size;
                    let lent = lent
                        .map_err(|message| CaptureError::new(&self.path, Some(offset), message))?;
                    if let Some(lent) = lent {
                        return Ok(Some(self.lend(lent)));
                    }
                }
                Err(e) => self.on_error(e, offset)?,
            }
        }
    }

    /// Lends out the frame at `lent` (its start an address in the parse buffer, whose block
    /// is consumed at the next call).
    fn lend(&mut self, mut lent: Lent) -> Frame<'_> {
        let data = self.inner.data();
        lent.start -= data.as_ptr() as usize;
        count(&mut self.info, &lent);
        self.current = Some(lent);
        lent.frame(data)
    }

    /// The frame the last `next_frame` returned, again (valid until the next call).
    pub fn current(&self) -> Option<Frame<'_>> {
        let lent = self.current?;
        self.inner.data().get(lent.start..lent.start + lent.len)?;
        Some(lent.frame(self.inner.data()))
    }

    /// Turns a parse error into the end of the file (a clean end or a truncation), a retry
    /// after more data is read, or an error.
    fn on_error(&mut self, e: PcapError<&'static [u8]>, offset: u64) -> Result<(), CaptureError> {
        match e {
            PcapError::Eof => self.done = true,
            PcapError::Incomplete(_) if !self.inner.reader_exhausted() => self.refill(offset)?,
            PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
                self.check_plausible_length(offset)?;
                self.info.truncated_at = Some(offset);
                self.done = true;
            }
            PcapError::BufferTooSmall => {
                self.check_plausible_length(offset)?;
                if self.capacity >= MAX_BUFFER {
                    return Err(CaptureError::new(
                        &self.path,
                        Some(offset),
                        format!("record longer than {MAX_BUFFER} bytes: corrupt length field"),
                    ));
                }
                self.capacity *= 4;
                self.inner.grow(self.capacity);
                self.refill(offset)?;
            }
            PcapError::ReadError => {
                return Err(CaptureError::new(&self.path, Some(offset), "read error"));
            }
            other => {
                self.check_plausible_length(offset)?;
                let what = match self.info.format {
                    Some(FileFormat::PcapNg) => "corrupt pcapng block",
                    _ => "corrupt pcap record",
                };
                return Err(CaptureError::new(
                    &self.path,
                    Some(offset),
                    format!("{what}: its fields do not parse ({})", short_error(&other)),
                ));
            }
        }
        Ok(())
    }

    fn refill(&mut self, offset: u64) -> Result<(), CaptureError> {
        self.inner.refill().map_err(|_| {
            let detail = self.last_read_error.lock().ok().and_then(|e| e.clone());
            let message = detail.map_or("read error".to_string(), |e| format!("read error: {e}"));
            CaptureError::new(&self.path, Some(offset), message)
        })
    }

    /// A record that does not fit in the rest of the file is either cut off (the capture
    /// stopped mid-write) or has a corrupt length field. Lengths no writer produces mean
    /// the latter: that is an error, not a truncation.
    fn check_plausible_length(&self, offset: u64) -> Result<(), CaptureError> {
        let data = self.inner.data();
        let read_u32 = |at: usize, big_endian: bool| -> Option<u32> {
            let bytes: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            })
        };
        let problem = match self.info.format {
            Some(FileFormat::Pcap { big_endian, .. }) => read_u32(8, big_endian)
                .filter(|&caplen| caplen > MAX_SNAPLEN)
                .map(|caplen| {
                    format!(
                        "record length {caplen} exceeds the {MAX_SNAPLEN}-byte maximum snaplen: corrupt record header"
                    )
                }),
            Some(FileFormat::PcapNg) => read_u32(4, self.section_big_endian)
                .filter(|&len| len as usize > MAX_BUFFER || len < 12 || len % 4 != 0)
                .map(|len| format!("block length {len} is impossible: corrupt block header")),
            None => None,
        };
        match problem {
            Some(message) => Err(CaptureError::new(&self.path, Some(offset), message)),
            None => Ok(()),
        }
    }
}

/// The reader's state a block updates, borrowed apart from the parse buffer the block
/// itself borrows.
struct BlockState<'s> {
    legacy: &'s mut Option<LegacyLayout>,
    section_big_endian: &'s mut bool,
    interfaces: &'s mut Vec<Interface>,
    info: &'s mut FileInfo,
}

/// Updates the reader's state from one block; returns where its packet lies (as an address,
/// made relative to the buffer by the caller), if it has one.
fn lend_block(
    state: &mut BlockState<'_>,
    block: &PcapBlockOwned<'_>,
    offset: u64,
) -> Result<Option<Lent>, String> {
    let lent = |ts_ns: i64, link: LinkType, data: &[u8], orig_len: u32| Lent {
        ts_ns,
        link,
        start: data.as_ptr() as usize,
        len: data.len(),
        orig_len,
        offset,
    };
    match block {
        PcapBlockOwned::LegacyHeader(header) => {
            // libpcap reads only version 2 files; 1.x predates today's record layout.
            if header.version_major != 2 {
                return Err(format!(
                    "unsupported pcap version {}.{}: expected 2.x",
                    header.version_major, header.version_minor
                ));
            }
            let link = LinkType(header.network.0 as u32);
            *state.legacy = Some(LegacyLayout {
                link,
                big_endian: header.is_bigendian(),
                nanosecond: header.is_nanosecond_precision(),
                plain: !header.is_modified_format(),
            });
            state.info.format = Some(FileFormat::Pcap {
                big_endian: header.is_bigendian(),
                nanosecond: header.is_nanosecond_precision(),
            });
            state.info.version = Some((header.version_major, header.version_minor));
            state.info.interfaces.push(InterfaceInfo {
                link,
                snaplen: header.snaplen,
                units_per_sec: if header.is_nanosecond_precision() {
                    1_000_000_000
                } else {
                    1_000_000
                },
                offset_sec: 0,
            });
            Ok(None)
        }
        PcapBlockOwned::Legacy(record) => {
            let layout = state.legacy.ok_or("packet before file header")?;
            let ts_ns = record_time(record.ts_sec, record.ts_usec, layout.nanosecond);
            Ok(Some(lent(ts_ns, layout.link, record.data, record.origlen)))
        }
        PcapBlockOwned::NG(block) => {
            state.info.format.get_or_insert(FileFormat::PcapNg);
            ng_block(state, block, lent)
        }
    }
}

/// Counts a frame lent out into what the file has shown.
// Once per frame: inlined, it costs no call.
#[inline]
fn count(info: &mut FileInfo, lent: &Lent) {
    info.packets += 1;
    match info
        .packets_by_link
        .iter_mut()
        .find(|(link, _)| *link == lent.link)
    {
        Some((_, packets)) => *packets += 1,
        None => info.packets_by_link.push((lent.link, 1)),
    }
    if info.last_ts_ns.is_some_and(|t| lent.ts_ns < t) {
        info.out_of_order += 1;
    }
    info.first_ts_ns = Some(info.first_ts_ns.map_or(lent.ts_ns, |t| t.min(lent.ts_ns)));
    info.last_ts_ns = Some(lent.ts_ns);
    info.max_ts_ns = Some(info.max_ts_ns.map_or(lent.ts_ns, |t| t.max(lent.ts_ns)));
    if (lent.len as u64) < u64::from(lent.orig_len) {
        info.snaplen_cut += 1;
    }
}

/// A legacy record's time: seconds and a fraction in micro- or nanoseconds.
fn record_time(seconds: u32, fraction: u32, nanosecond: bool) -> i64 {
    let fraction_ns = if nanosecond {
        i64::from(fraction)
    } else {
        i64::from(fraction) * 1_000
    };
    i64::from(seconds) * 1_000_000_000 + fraction_ns
}

/// The record at the start of `data` and its size, when it lies there whole (the frame's
/// start relative to `data`); `None` leaves it to the parser (which then refills, or reports
/// the truncation or the error).
fn plain_record(data: &[u8], layout: LegacyLayout, offset: u64) -> Option<(usize, Lent)> {
    let header: &[u8; PCAP_RECORD_HEADER_LEN] =
        data.get(..PCAP_RECORD_HEADER_LEN)?.try_into().ok()?;
    let field = |at: usize| {
        let bytes = [header[at], header[at + 1], header[at + 2], header[at + 3]];
        if layout.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    let captured = field(8) as usize;
    let size = PCAP_RECORD_HEADER_LEN.checked_add(captured)?;
    if size > data.len() {
        return None;
    }
    let lent = Lent {
        ts_ns: record_time(field(0), field(4), layout.nanosecond),
        link: layout.link,
        start: PCAP_RECORD_HEADER_LEN,
        len: captured,
        orig_len: field(12),
        offset,
    };
    Some((size, lent))
}

fn ng_block(
    state: &mut BlockState<'_>,
    block: &Block<'_>,
    lent: impl Fn(i64, LinkType, &[u8], u32) -> Lent,
) -> Result<Option<Lent>, String> {
    match block {
        Block::SectionHeader(shb) => {
            // Interface ids restart in every section; so may the byte order.
            state.interfaces.clear();
            *state.section_big_endian = shb.big_endian();
            state.info.sections += 1;
            state.info.section_byte_orders.push(shb.big_endian());
            Ok(None)
        }
        Block::InterfaceDescription(idb) => {
            let units_per_sec = ts_resolution(idb.if_tsresol)
                .ok_or_else(|| format!("invalid if_tsresol {}", idb.if_tsresol))?;
            let interface = Interface {
                link: LinkType(idb.linktype.0 as u32),
                units_per_sec,
                offset_sec: idb.if_tsoffset,
            };
            state.interfaces.push(interface);
            state.info.interfaces.push(InterfaceInfo {
                link: interface.link,
                snaplen: idb.snaplen,
                units_per_sec,
                offset_sec: idb.if_tsoffset,
            });
            Ok(None)
        }
        Block::EnhancedPacket(epb) => {
            let iface = interface(state, epb.if_id)?;
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let ts_ns = iface_time(&iface, units)?;
            Ok(Some(lent(
                ts_ns,
                iface.link,
                epb.packet_data(),
                epb.origlen,
            )))
        }
        Block::SimplePacket(spb) => {
            let iface = interface(state, 0)?;
            // Simple packet blocks carry no time: the previous packet's time is the best
            // estimate and keeps the stream ordered.
            let ts_ns = state.info.last_ts_ns.unwrap_or(0);
            Ok(Some(lent(
                ts_ns,
                iface.link,
                spb.packet_data(),
                spb.origlen,
            )))
        }
        // pcap-parser reads an unknown block's type little-endian whatever the section's order.
        Block::Unknown(unknown)
            if OBSOLETE_PACKET_BLOCK
                == if *state.section_big_endian {
                    unknown.block_type.swap_bytes()
                } else {
                    unknown.block_type
                } =>
        {
            let be = *state.section_big_endian;
            let body = unknown.data;
            let u16_at = |at: usize| {
                body.get(at..at + 2).map(|b| {
                    let b = [b[0], b[1]];
                    if be {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                })
            };
            let u32_at = |at: usize| {
                body.get(at..at + 4).map(|b| {
                    let b = [b[0], b[1], b[2], b[3]];
                    if be {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                })
            };
            let (Some(if_id), Some(ts_high), Some(ts_low), Some(caplen), Some(orig_len)) =
                (u16_at(0), u32_at(4), u32_at(8), u32_at(12), u32_at(16))
            else {
                return Err("obsolete packet block too short".to_string());
            };
            let data = body
                .get(20..20 + caplen as usize)
                .ok_or("obsolete packet block: captured length beyond the block")?;
            let iface = interface(state, u32::from(if_id))?;
            let units = (u64::from(ts_high) << 32) | u64::from(ts_low);
            state.info.obsolete_packet_blocks += 1;
            Ok(Some(lent(
                iface_time(&iface, units)?,
                iface.link,
                data,
                orig_len,
            )))
        }
        other => {
            *state
                .info
                .other_blocks
                .entry(block_name(other).to_string())
                .or_insert(0) += 1;
            Ok(None)
        }
    }
}

fn interface(state: &BlockState<'_>, id: u32) -> Result<Interface, String> {
    state
        .interfaces
        .get(id as usize)
        .copied()
        .ok_or_else(|| format!("packet names undeclared interface {id}"))
}

/// Packet times further than this from 1970 (about 146 years) are refused: nothing captures
/// then, and keeping every later time difference and deadline inside an i64 needs the margin.
const MAX_ABS_TIME_NS: i64 = 1 << 62;

fn iface_time(iface: &Interface, units: u64) -> Result<i64, String> {
    iface
        .offset_sec
        .checked_mul(1_000_000_000)
        .and_then(|offset_ns| units_to_ns(units, iface.units_per_sec).checked_add(offset_ns))
        .filter(|ns| ns.unsigned_abs() <= MAX_ABS_TIME_NS.unsigned_abs())
        .ok_or_else(|| {
            format!(
                "packet time out of range ({units} units at {} per second, if_tsoffset {} s)",
                iface.units_per_sec, iface.offset_sec
            )
        })
}

fn block_name(block: &Block<'_>) -> &'static str {
    match block {
        Block::NameResolution(_) => "name_resolution",
        Block::InterfaceStatistics(_) => "interface_statistics",
        Block::SystemdJournalExport(_) => "systemd_journal_export",
        Block::DecryptionSecrets(_) => "decryption_secrets",
        Block::ProcessInformation(_) => "process_information",
        Block::Custom(_) => "custom",
        _ => "unknown",
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

/// Parse errors borrow the buffer; keep only what the messages need.
fn owned(e: PcapError<&[u8]>) -> PcapError<&'static [u8]> {
    match e {
        PcapError::NomError(_, kind) => PcapError::OwnedNomError(Vec::new(), kind),
        other => other.to_owned_vec(),
    }
}

fn short_error(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("{kind:?}").to_lowercase()
        }
        other => format!("{other:?}").to_lowercase(),
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
