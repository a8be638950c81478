//! 4-tuples, oriented by which side is the server.

use std::fmt;
use std::net::SocketAddr;

/// A TCP 4-tuple with its server side known: the side that receives SYNs and answers SYN-ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TupleKey {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl TupleKey {
    /// An IPv4 tuple as one integer that orders as the tuples do (client address, client
    /// port, server address, server port): sorting many tuples by it compares integers
    /// instead of two pairs of socket addresses field by field.
    pub(crate) fn v4_order(&self) -> Option<u128> {
        let (SocketAddr::V4(client), SocketAddr::V4(server)) = (self.client, self.server) else {
            return None;
        };
        let endpoint =
            |e: std::net::SocketAddrV4| u128::from(e.ip().to_bits()) << 16 | u128::from(e.port());
        Some(endpoint(client) << 48 | endpoint(server))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_tuples_order_as_their_integers() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Few distinct values per field, so that ties on every earlier field occur.
        let mut keys: Vec<TupleKey> = (0..4000)
            .map(|_| {
                let mut endpoint = || {
                    let r = next();
                    SocketAddr::from((
                        [203, 0, 113, (r % 3) as u8 * 100],
                        (r >> 8) as u16 % 3 + 65533,
                    ))
                };
                TupleKey {
                    client: endpoint(),
                    server: endpoint(),
                }
            })
            .collect();
        let mut expected = keys.clone();
        expected.sort();
        keys.sort_by_key(|k| k.v4_order());
        assert_eq!(keys, expected);
        let v6 = TupleKey {
            client: "[2001:db8::1]:1".parse().unwrap(),
            server: "[2001:db8::2]:80".parse().unwrap(),
        };
        assert_eq!(v6.v4_order(), None);
    }
}
