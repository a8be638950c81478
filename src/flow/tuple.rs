//! 4-tuples, oriented by which side is the server.

use std::fmt;
use std::net::SocketAddr;

/// A TCP 4-tuple with its server side known: the side that receives SYNs and answers SYN-ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TupleKey {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl fmt::Display for TupleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.client, self.server)
    }
}

/// Which way a segment travels on its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToServer,
    ToClient,
}

/// The two endpoints of a segment in a fixed order, for tuples whose server side is not yet
/// known (the capture started in the middle of their conversation).
pub fn unordered_pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}
