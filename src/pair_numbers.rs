//! Numbers (client address, server endpoint) pairs in the order they are first seen: the
//! connect attempts and the port counts key their maps by a pair's number. Every SYN and every
//! connection looks its pair up, so an IPv4 pair goes by one packed integer (a single hash
//! step) where the address enums take one per field.

use std::net::{IpAddr, SocketAddr};

use crate::fastmap::FastMap;

#[derive(Debug, Clone, Default)]
pub struct PairNumbers {
    v4: FastMap<u128, u32>,
    other: FastMap<(IpAddr, SocketAddr), u32>,
}

impl PairNumbers {
    /// The pair's number, and whether it was first seen now.
    pub fn number(&mut self, client: IpAddr, server: SocketAddr) -> (u32, bool) {
        let next = self.len();
        let number = match (client, server) {
            (IpAddr::V4(client), SocketAddr::V4(server)) => {
                let packed = u128::from(client.to_bits()) << 48
                    | u128::from(server.ip().to_bits()) << 16
                    | u128::from(server.port());
                // Looked up before any insert: nearly every pair is there already.
                match self.v4.get(&packed) {
                    Some(&number) => number,
                    None => *self.v4.entry(packed).or_insert(next),
                }
            }
            _ => *self.other.entry((client, server)).or_insert(next),
        };
        (number, number == next)
    }

    pub fn len(&self) -> u32 {
        (self.v4.len() + self.other.len()) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_numbered_in_order_of_first_sight() {
        let mut numbers = PairNumbers::default();
        let server: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let other_port = SocketAddr::new(server.ip(), 8080);
        assert_eq!(numbers.number(client, server), (0, true));
        assert_eq!(numbers.number(client, v6), (1, true));
        assert_eq!(numbers.number(client, other_port), (2, true));
        assert_eq!(numbers.number(client, server), (0, false));
        assert_eq!(numbers.number(server.ip(), server), (3, true));
        assert_eq!(numbers.number(client, v6), (1, false));
        assert_eq!(numbers.len(), 4);
    }
}
