//! The clients' side of every connect, driven by events in time order: arrivals, SYNs and
//! their retransmission timers, the answer to a challenge ACK, and the scripted exchange of a
//! connection the server accepted. Each packet is written when its event comes due, so the
//! capture is in time order and memory follows the connections in flight.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::net::SocketAddr;

use super::hosts::{Host, Nat};
use super::params::{Arrivals, ClockOffsets, CloseSide, Params};
use super::pcap::{ACK, FIN, Options, PSH, PcapWriter, RST, SYN, TcpPacket, WriteError};
use super::rng::Rng;
use super::server::{Server, SynReply};

/// The capture starts at 2026-01-01T00:00:00Z.
pub const START_US: i64 = 1_767_225_600 * 1_000_000;
/// How long the server's kernel takes to answer a segment, µs.
const SERVER_DELAY_US: i64 = 15;
/// From the end of the handshake to the client's request, µs.
const REQUEST_DELAY_US: i64 = 40;
/// From the request to the server's response, µs.
const THINK_US: i64 = 400;
/// From the response to the server application's close, µs.
const SERVER_CLOSE_DELAY_US: i64 = 10;
/// From the server's FIN reaching the client to the client's FIN, µs.
const CLIENT_CLOSE_DELAY_US: i64 = 50;
/// From the client's FIN to the server's FIN when the client closes first, µs.
const SERVER_FIN_DELAY_US: i64 = 25;
/// A client that answered a challenge ACK with a RST sends its SYN again this much later.
pub const QUICK_RETRANSMIT_US: i64 = 10_000;
/// When an unanswered SYN is sent again, from the first SYN; the last entry is when the
/// connect gives up.
pub const SYN_TIMERS_US: [i64; 4] = [1_000_000, 3_000_000, 7_000_000, 15_000_000];

pub const REQUEST: &[u8; 70] =
    b"GET /index1 HTTP/1.1\r\nHost: example\r\nUser-Agent: pawscope-simulate\r\n\r\n";
pub const RESPONSE: &[u8; 100] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\nsimulated reply\n";

const CLIENT_SYN_WINDOW: u16 = 64_240;
const SERVER_SYN_WINDOW: u16 = 65_160;
const CLIENT_WINDOW: u16 = 502;
const SERVER_WINDOW: u16 = 509;
const WINDOW_SCALE: u8 = 7;
/// A hop through the NAT.
const CLIENT_TTL: u8 = 63;
const SERVER_TTL: u8 = 64;

/// What happened, counted as it happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub connects_attempted: u64,
    pub connects_established: u64,
    pub connects_failed: u64,
    /// Failed connects none of whose SYNs got past the NAT.
    pub connects_failed_at_nat: u64,
    pub syns_sent: u64,
    pub syn_retransmissions: u64,
    pub syns_dropped_by_nat: u64,
    pub syns_answered_syn_ack: u64,
    pub syns_answered_challenge_ack: u64,
    pub syns_unanswered: u64,
    pub client_rsts: u64,
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
}

/// A connect in flight.
#[derive(Debug, Clone, Copy)]
struct Conn {
    host: usize,
    isn: u32,
    first_syn_us: i64,
    /// The NAT's public port, once a mapping exists.
    port: Option<u16>,
    /// SYNs sent again (by the timer or after a challenge ACK).
    retransmits: u32,
    /// SYNs that got through the NAT.
    syns_on_wire: u32,
    /// The server accepted a SYN: the rest is the scripted exchange.
    accepted: bool,
    server_isn: u32,
    /// Timestamps negotiated.
    ts: bool,
    /// Added to the host's clock for this connection (per-connection offsets), else 0.
    ts_offset: u32,
    /// The latest TSval each side sent (the other's TSecr).
    client_tsval: u32,
    server_tsval: u32,
    client_ip_id: u16,
    server_ip_id: u16,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Arrival,
    /// A SYN sent again after a challenge ACK.
    QuickRetransmit {
        conn: u64,
    },
    /// The SYN retransmission timer: retransmit number `k` (0-based), or give up at the last.
    SynTimer {
        conn: u64,
        k: usize,
    },
    ChallengeAck {
        conn: u64,
        seq: u32,
        ack: u32,
        ts_echo: Option<u32>,
    },
    ClientRst {
        conn: u64,
        seq: u32,
    },
    /// Packet `step` of an accepted connection's exchange.
    Step {
        conn: u64,
        step: u8,
    },
}

struct Scheduled {
    at_us: i64,
    order: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.order) == (other.at_us, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Earliest first out of a max-heap; ties in the order they were scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_us, other.order).cmp(&(self.at_us, self.order))
    }
}

/// What the ground truth is made of, when every connect has ended.
pub struct Outcome {
    pub hosts: Vec<Host>,
    pub nats: Vec<Nat>,
    pub server: Server,
    pub tally: Tally,
}

/// Everything the simulation holds while it runs.
pub struct Engine<'a, W: Write> {
    params: &'a Params,
    hosts: Vec<Host>,
    nats: Vec<Nat>,
    server: Server,
    server_addr: SocketAddr,
    writer: PcapWriter<W>,
    queue: BinaryHeap<Scheduled>,
    order: u64,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    /// Arrivals: how many have started, and when the next one is due (µs, unrounded).
    arrivals: u64,
    next_arrival_us: f64,
    arrival_rng: Rng,
    conn_rng: Rng,
    tally: Tally,
}

impl<'a, W: Write> Engine<'a, W> {
    pub fn new(
        params: &'a Params,
        hosts: Vec<Host>,
        nats: Vec<Nat>,
        writer: PcapWriter<W>,
    ) -> Self {
        let mut arrival_rng = Rng::new(params.seed, 0xa771_7a15);
        let next_arrival_us = match params.arrivals {
            Arrivals::Poisson => arrival_rng.exponential(params.rate) * 1e6,
            Arrivals::Fixed => 0.0,
        };
        Engine {
            params,
            hosts,
            nats,
            server: Server::new(params.server, params.seed),
            server_addr: params.server_addr,
            writer,
            queue: BinaryHeap::new(),
            order: 0,
            conns: HashMap::new(),
            next_conn: 0,
            arrivals: 0,
            next_arrival_us,
            arrival_rng,
            conn_rng: Rng::new(params.seed, 0xc044_ec75),
            tally: Tally::default(),
        }
    }

    fn schedule(&mut self, at_us: i64, event: Event) {
        self.order += 1;
        self.queue.push(Scheduled {
            at_us,
            order: self.order,
            event,
        });
    }

    /// Runs every connect to its end.
    pub fn run(mut self) -> Result<(PcapWriter<W>, Outcome), WriteError> {
        let first = self.next_arrival_us.round() as i64;
        if !self.hosts.is_empty() && first < self.params.duration_us() {
            self.schedule(first, Event::Arrival);
        }
        while let Some(Scheduled { at_us, event, .. }) = self.queue.pop() {
            match event {
                Event::Arrival => self.on_arrival(at_us)?,
                Event::QuickRetransmit { conn } => {
                    if self.conns.get(&conn).is_some_and(|c| !c.accepted) {
                        self.send_syn(conn, at_us)?;
                    }
                }
                Event::SynTimer { conn, k } => self.on_syn_timer(conn, k, at_us)?,
                Event::ChallengeAck {
                    conn,
                    seq,
                    ack,
                    ts_echo,
                } => self.on_challenge_ack(conn, seq, ack, ts_echo, at_us)?,
                Event::ClientRst { conn, seq } => self.on_client_rst(conn, seq, at_us)?,
                Event::Step { conn, step } => self.on_step(conn, step, at_us)?,
            }
        }
        let Engine {
            writer,
            hosts,
            nats,
            server,
            tally,
            ..
        } = self;
        Ok((
            writer,
            Outcome {
                hosts,
                nats,
                server,
                tally,
            },
        ))
    }

    fn on_arrival(&mut self, now: i64) -> Result<(), WriteError> {
        let host = match self.params.arrivals {
            Arrivals::Poisson => self.arrival_rng.below(self.hosts.len() as u64) as usize,
            Arrivals::Fixed => self
                .arrivals
                .checked_rem(self.hosts.len() as u64)
                .unwrap_or(0) as usize,
        };
        self.arrivals += 1;
        self.next_arrival_us = match self.params.arrivals {
            Arrivals::Poisson => {
                self.next_arrival_us + self.arrival_rng.exponential(self.params.rate) * 1e6
            }
            Arrivals::Fixed => self.arrivals as f64 * self.params.fixed_gap_us(),
        };
        let next = self.next_arrival_us.round() as i64;
        if next < self.params.duration_us() {
            self.schedule(next, Event::Arrival);
        }

        let id = self.next_conn;
        self.next_conn += 1;
        let rng = &mut self.conn_rng;
        let conn = Conn {
            host,
            isn: rng.next_u32(),
            first_syn_us: now,
            port: None,
            retransmits: 0,
            syns_on_wire: 0,
            accepted: false,
            server_isn: 0,
            ts: false,
            client_tsval: 0,
            server_tsval: 0,
            client_ip_id: rng.next_u32() as u16,
            server_ip_id: rng.next_u32() as u16,
            // Drawn last, and only when wanted: per-host captures keep their bytes.
            ts_offset: match self.params.clock_offsets {
                ClockOffsets::PerHost => 0,
                ClockOffsets::PerConnection => rng.next_u32(),
            },
        };
        self.conns.insert(id, conn);
        if let Some(h) = self.hosts.get_mut(host) {
            h.connects += 1;
        }
        self.tally.connects_attempted += 1;
        self.schedule(now + SYN_TIMERS_US[0], Event::SynTimer { conn: id, k: 0 });
        self.send_syn(id, now)
    }

    fn on_syn_timer(&mut self, id: u64, k: usize, now: i64) -> Result<(), WriteError> {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        if conn.accepted {
            return Ok(());
        }
        if k + 1 < SYN_TIMERS_US.len() {
            conn.retransmits += 1;
            let next = conn.first_syn_us + SYN_TIMERS_US[k + 1];
            self.schedule(next, Event::SynTimer { conn: id, k: k + 1 });
            return self.send_syn(id, now);
        }
        // No answer to the last retransmission: the connect fails.
        self.tally.connects_failed += 1;
        if conn.syns_on_wire == 0 {
            self.tally.connects_failed_at_nat += 1;
        }
        self.finish(id);
        Ok(())
    }

    /// The connect is over: the NAT's mapping ends and its port is free again.
    fn finish(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id)
            && let Some(port) = conn.port
            && let Some(host) = self.hosts.get(conn.host)
            && let Some(nat) = self.nats.get_mut(host.nat)
        {
            nat.release(port);
        }
    }

    /// The connection's two endpoints as the server sees them, and its host.
    fn endpoints(&self, conn: &Conn) -> Option<(SocketAddr, &Host)> {
        let host = self.hosts.get(conn.host)?;
        let nat = self.nats.get(host.nat)?;
        Some((SocketAddr::new(nat.addr, conn.port?), host))
    }

    fn mss(&self) -> u16 {
        if self.server_addr.is_ipv6() {
            1440
        } else {
            1460
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        now: i64,
        from_client: bool,
        client: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: Options,
        payload: &[u8],
        ip_id: u16,
    ) -> Result<(), WriteError> {
        let (src, dst, ttl) = if from_client {
            (client, self.server_addr, CLIENT_TTL)
        } else {
            (self.server_addr, client, SERVER_TTL)
        };
        self.writer.write(&TcpPacket {
            ts_us: START_US + now,
            src,
            dst,
            seq,
            ack,
            flags,
            window,
            options,
            payload,
            ttl,
            ip_id,
        })?;
        self.tally.first_us.get_or_insert(now);
        self.tally.last_us = Some(now);
        Ok(())
    }

    /// The host sends (or sends again) its SYN; the NAT maps it, the server judges it.
    fn send_syn(&mut self, id: u64, now: i64) -> Result<(), WriteError> {
        let Some(mut conn) = self.conns.get(&id).copied() else {
            return Ok(());
        };
        let Some(host_nat) = self.hosts.get(conn.host).map(|h| h.nat) else {
            return Ok(());
        };
        if conn.port.is_none() {
            let Some(nat) = self.nats.get_mut(host_nat) else {
                return Ok(());
            };
            match nat.allocate() {
                Some(port) => conn.port = Some(port),
                None => {
                    nat.syns_dropped += 1;
                    self.tally.syns_dropped_by_nat += 1;
                    return Ok(());
                }
            }
        }
        let Some((client, host)) = self.endpoints(&conn) else {
            return Ok(());
        };
        let tsval = host
            .timestamps
            .then(|| host.tsval(now).wrapping_add(conn.ts_offset));
        conn.client_ip_id = conn.client_ip_id.wrapping_add(1);
        let options = Options::syn(self.mss(), WINDOW_SCALE, tsval.map(|v| (v, 0)));
        self.emit(
            now,
            true,
            client,
            conn.isn,
            0,
            SYN,
            CLIENT_SYN_WINDOW,
            options,
            &[],
            conn.client_ip_id,
        )?;
        self.tally.syns_sent += 1;
        if conn.syns_on_wire > 0 {
            self.tally.syn_retransmissions += 1;
        }
        conn.syns_on_wire += 1;
        match self.server.on_syn(now, client, conn.isn, tsval) {
            SynReply::SynAck { isn, timestamps } => {
                self.tally.syns_answered_syn_ack += 1;
                conn.accepted = true;
                conn.server_isn = isn;
                conn.ts = timestamps;
                conn.client_tsval = tsval.unwrap_or(0);
                self.schedule(now + SERVER_DELAY_US, Event::Step { conn: id, step: 0 });
            }
            SynReply::ChallengeAck { seq, ack, ts_echo } => {
                self.tally.syns_answered_challenge_ack += 1;
                self.schedule(
                    now + SERVER_DELAY_US,
                    Event::ChallengeAck {
                        conn: id,
                        seq,
                        ack,
                        ts_echo,
                    },
                );
            }
            SynReply::RateLimited | SynReply::Dropped => self.tally.syns_unanswered += 1,
        }
        self.conns.insert(id, conn);
        Ok(())
    }

    fn on_challenge_ack(
        &mut self,
        id: u64,
        seq: u32,
        ack: u32,
        ts_echo: Option<u32>,
        now: i64,
    ) -> Result<(), WriteError> {
        let Some(conn) = self.conns.get(&id).copied() else {
            return Ok(());
        };
        let Some((client, host)) = self.endpoints(&conn) else {
            return Ok(());
        };
        let rtt = host.rtt_us;
        let options =
            Options::timestamp(ts_echo.map(|ecr| (self.server.tsval(client.ip(), now), ecr)));
        self.emit(
            now,
            false,
            client,
            seq,
            ack,
            ACK,
            SERVER_WINDOW,
            options,
            &[],
            0,
        )?;
        self.schedule(now + rtt, Event::ClientRst { conn: id, seq: ack });
        Ok(())
    }

    /// A challenge ACK that does not acknowledge its SYN: the client answers RST (seq = the
    /// ACK's ack, no timestamp) and, if it has not retransmitted yet, sends the SYN again soon.
    fn on_client_rst(&mut self, id: u64, seq: u32, now: i64) -> Result<(), WriteError> {
        let Some(mut conn) = self.conns.get(&id).copied() else {
            return Ok(());
        };
        let Some((client, _)) = self.endpoints(&conn) else {
            return Ok(());
        };
        conn.client_ip_id = conn.client_ip_id.wrapping_add(1);
        self.emit(
            now,
            true,
            client,
            seq,
            0,
            RST,
            0,
            Options::none(),
            &[],
            conn.client_ip_id,
        )?;
        self.tally.client_rsts += 1;
        self.server.on_rst(now, client, seq);
        if conn.retransmits == 0 {
            conn.retransmits += 1;
            self.schedule(
                now + QUICK_RETRANSMIT_US,
                Event::QuickRetransmit { conn: id },
            );
        }
        self.conns.insert(id, conn);
        Ok(())
    }

    /// One packet of an accepted connection: handshake, request, response, close.
    fn on_step(&mut self, id: u64, step: u8, now: i64) -> Result<(), WriteError> {
        let Some(mut c) = self.conns.get(&id).copied() else {
            return Ok(());
        };
        let Some((client, host)) = self.endpoints(&c) else {
            return Ok(());
        };
        let rtt = host.rtt_us;
        let client_tsval = host.tsval(now).wrapping_add(c.ts_offset);
        let server_close = self.params.close == CloseSide::Server;
        let (cisn, sisn) = (c.isn, c.server_isn);
        let req = REQUEST.len() as u32;
        let resp = RESPONSE.len() as u32;

        // Which side sends, and the segment; then when the next step is due.
        let (from_client, seq, ack, flags, payload, next): (
            bool,
            u32,
            u32,
            u8,
            &[u8],
            Option<i64>,
        ) = match (step, server_close) {
            (0, _) => (false, sisn, cisn.wrapping_add(1), SYN | ACK, &[], Some(rtt)),
            (1, _) => (
                true,
                cisn.wrapping_add(1),
                sisn.wrapping_add(1),
                ACK,
                &[],
                Some(REQUEST_DELAY_US),
            ),
            (2, _) => (
                true,
                cisn.wrapping_add(1),
                sisn.wrapping_add(1),
                PSH | ACK,
                REQUEST,
                Some(SERVER_DELAY_US),
            ),
            (3, _) => (
                false,
                sisn.wrapping_add(1),
                cisn.wrapping_add(1 + req),
                ACK,
                &[],
                Some(THINK_US),
            ),
            (4, true) => (
                false,
                sisn.wrapping_add(1),
                cisn.wrapping_add(1 + req),
                PSH | ACK,
                RESPONSE,
                Some(SERVER_CLOSE_DELAY_US),
            ),
            (4, false) => (
                false,
                sisn.wrapping_add(1),
                cisn.wrapping_add(1 + req),
                PSH | ACK,
                RESPONSE,
                Some(rtt),
            ),
            // Server closes first: its FIN, the client's ACK of the response, the
            // client's FIN (acknowledging the server's), the server's last ACK.
            (5, true) => (
                false,
                sisn.wrapping_add(1 + resp),
                cisn.wrapping_add(1 + req),
                FIN | ACK,
                &[],
                Some(rtt - SERVER_CLOSE_DELAY_US),
            ),
            (6, true) => (
                true,
                cisn.wrapping_add(1 + req),
                sisn.wrapping_add(1 + resp),
                ACK,
                &[],
                Some(SERVER_CLOSE_DELAY_US + CLIENT_CLOSE_DELAY_US),
            ),
            (7, true) => (
                true,
                cisn.wrapping_add(1 + req),
                sisn.wrapping_add(2 + resp),
                FIN | ACK,
                &[],
                Some(SERVER_DELAY_US),
            ),
            (8, true) => (
                false,
                sisn.wrapping_add(2 + resp),
                cisn.wrapping_add(2 + req),
                ACK,
                &[],
                None,
            ),
            // Client closes first: its FIN (acknowledging the response), the server's
            // FIN, the client's last ACK.
            (5, false) => (
                true,
                cisn.wrapping_add(1 + req),
                sisn.wrapping_add(1 + resp),
                FIN | ACK,
                &[],
                Some(SERVER_FIN_DELAY_US),
            ),
            (6, false) => (
                false,
                sisn.wrapping_add(1 + resp),
                cisn.wrapping_add(2 + req),
                FIN | ACK,
                &[],
                Some(rtt),
            ),
            (7, false) => (
                true,
                cisn.wrapping_add(2 + req),
                sisn.wrapping_add(2 + resp),
                ACK,
                &[],
                None,
            ),
            _ => return Ok(()),
        };

        let timestamp = if !c.ts {
            None
        } else if from_client {
            c.client_tsval = client_tsval;
            Some((client_tsval, c.server_tsval))
        } else {
            c.server_tsval = self.server.tsval(client.ip(), now);
            Some((c.server_tsval, c.client_tsval))
        };
        let (window, ip_id) = if from_client {
            c.client_ip_id = c.client_ip_id.wrapping_add(1);
            (CLIENT_WINDOW, c.client_ip_id)
        } else {
            c.server_ip_id = c.server_ip_id.wrapping_add(1);
            (SERVER_WINDOW, c.server_ip_id)
        };
        let (window, options) = if step == 0 {
            (
                SERVER_SYN_WINDOW,
                Options::syn(self.mss(), WINDOW_SCALE, timestamp),
            )
        } else {
            (window, Options::timestamp(timestamp))
        };
        self.emit(
            now,
            from_client,
            client,
            seq,
            ack,
            flags,
            window,
            options,
            payload,
            ip_id,
        )?;

        match (step, server_close) {
            (1, _) => {
                self.server.on_established();
                self.tally.connects_established += 1;
            }
            (7, true) => {
                // The client's FIN acknowledged the server's: the server is in TIME_WAIT,
                // remembering this segment's TSval.
                let ts_recent = c.ts.then_some(c.client_tsval);
                self.server.on_time_wait(
                    now,
                    client,
                    cisn.wrapping_add(2 + req),
                    sisn.wrapping_add(2 + resp),
                    ts_recent,
                );
            }
            _ => {}
        }
        match next {
            Some(delay) => {
                self.conns.insert(id, c);
                self.schedule(
                    now + delay.max(1),
                    Event::Step {
                        conn: id,
                        step: step + 1,
                    },
                );
            }
            None => self.finish(id),
        }
        Ok(())
    }
}
