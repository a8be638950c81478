//! The parsing floor for `benches/run.sh`: the least work any analyzer built on pcap-parser and
//! etherparse must do. It walks every packet of a pcap or pcapng file, slices it down to the
//! TCP header and reads the timestamp option, and keeps a checksum of what it read so the
//! compiler cannot skip the work. No flows, no state: whatever pawscope does beyond this is
//! its analysis cost.
//!
//! Usage: floor FILE.pcap[ng]   (prints: packets tcp_segments syns ts_options checksum)

use std::fs::File;
use std::process::ExitCode;

use etherparse::{LaxSlicedPacket, TcpOptionElement, TransportSlice};
use pcap_parser::{Linktype, PcapBlockOwned, PcapError, create_reader};

/// Link types the floor slices; others are counted as packets only.
fn slice(link: Linktype, data: &[u8]) -> Option<LaxSlicedPacket<'_>> {
    match link {
        Linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok(),
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => LaxSlicedPacket::from_ip(data).ok(),
        // Linux cooked v2: a 20-byte header, then the network layer.
        Linktype::LINUX_SLL2 => data
            .get(20..)
            .and_then(|ip| LaxSlicedPacket::from_ip(ip).ok()),
        // Linux cooked v1: 16 bytes.
        Linktype::LINUX_SLL => data
            .get(16..)
            .and_then(|ip| LaxSlicedPacket::from_ip(ip).ok()),
        _ => None,
    }
}

#[derive(Default)]
struct Counts {
    packets: u64,
    tcp: u64,
    syns: u64,
    ts_options: u64,
    checksum: u64,
}

impl Counts {
    fn packet(&mut self, link: Linktype, data: &[u8]) {
        self.packets += 1;
        let Some(packet) = slice(link, data) else {
            return;
        };
        let Some(TransportSlice::Tcp(tcp)) = packet.transport else {
            return;
        };
        self.tcp += 1;
        self.syns += u64::from(tcp.syn());
        self.checksum = self
            .checksum
            .wrapping_add(u64::from(tcp.source_port()) << 16 | u64::from(tcp.destination_port()))
            .wrapping_add(u64::from(tcp.sequence_number()));
        for option in tcp.options_iterator().flatten() {
            if let TcpOptionElement::Timestamp(val, ecr) = option {
                self.ts_options += 1;
                self.checksum = self
                    .checksum
                    .wrapping_add(u64::from(val))
                    .wrapping_add(u64::from(ecr));
            }
        }
    }
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: floor FILE.pcap[ng]");
        return ExitCode::from(2);
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("floor: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut reader = match create_reader(1 << 20, file) {
        Ok(reader) => reader,
        Err(e) => {
            eprintln!("floor: {path}: {e:?}");
            return ExitCode::from(2);
        }
    };
    let mut counts = Counts::default();
    let mut legacy_link = Linktype::ETHERNET;
    let mut interfaces: Vec<Linktype> = Vec::new();
    loop {
        match reader.next() {
            Ok((consumed, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(header) => legacy_link = header.network,
                    PcapBlockOwned::Legacy(packet) => counts.packet(legacy_link, packet.data),
                    PcapBlockOwned::NG(pcap_parser::Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(pcap_parser::Block::InterfaceDescription(idb)) => {
                        interfaces.push(idb.linktype)
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(epb)) => {
                        let link = interfaces
                            .get(epb.if_id as usize)
                            .copied()
                            .unwrap_or(Linktype::NULL);
                        let len = (epb.caplen as usize).min(epb.data.len());
                        counts.packet(link, &epb.data[..len]);
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(consumed);
                continue;
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                // The error borrows the reader's buffer; it is asked again after the match.
            }
            Err(e) => {
                eprintln!("floor: {path}: {e:?}");
                return ExitCode::from(2);
            }
        }
        if reader.reader_exhausted() {
            eprintln!("floor: {path}: file ends inside a record");
            break;
        }
        if reader.refill().is_err() {
            eprintln!("floor: {path}: read error");
            return ExitCode::from(2);
        }
    }
    println!(
        "{} {} {} {} {}",
        counts.packets, counts.tcp, counts.syns, counts.ts_options, counts.checksum
    );
    ExitCode::SUCCESS
}
