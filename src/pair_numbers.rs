//! Numbers address pairs in the order they are first seen: the connect attempts and the port
//! counts key their maps by the number of a (client address, server endpoint) pair, the NAT
//! clocks find a (source, destination) pair's clocks by it, the timeline chart counts SYNs
//! per 4-tuple by its number. Every segment or connection looks
//! its pair up, so an all-IPv4 pair goes by one packed integer (a single hash step) where the
//! address enums take one per field.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

use crate::fastmap::FastMap;
use crate::flow::TupleKey;

/// A pair of addresses that packs into one integer when both are IPv4.
pub trait AddressPair: Copy + Eq + Hash {
    /// The narrowest integer that holds the packed pair: hashing a wider one costs more.
    type Packed: Copy + Eq + Hash;
    fn packed_v4(&self) -> Option<Self::Packed>;
}

/// A client address and a server endpoint.
impl AddressPair for (IpAddr, SocketAddr) {
    type Packed = u128;
    fn packed_v4(&self) -> Option<u128> {
        let (IpAddr::V4(client), SocketAddr::V4(server)) = self else {
            return None;
        };
        Some(
            u128::from(client.to_bits()) << 48
                | u128::from(server.ip().to_bits()) << 16
                | u128::from(server.port()),
        )
    }
}

/// A source and a destination address.
impl AddressPair for (IpAddr, IpAddr) {
    type Packed = u64;
    fn packed_v4(&self) -> Option<u64> {
        let (IpAddr::V4(source), IpAddr::V4(destination)) = self else {
            return None;
        };
        Some(u64::from(source.to_bits()) << 32 | u64::from(destination.to_bits()))
    }
}

/// A client endpoint and a server endpoint: a 4-tuple.
impl AddressPair for TupleKey {
    type Packed = u128;
    fn packed_v4(&self) -> Option<u128> {
        self.v4_order()
    }
}

#[derive(Debug, Clone)]
pub struct PairNumbers<K: AddressPair> {
    v4: FastMap<K::Packed, u32>,
    other: FastMap<K, u32>,
}

impl<K: AddressPair> Default for PairNumbers<K> {
    fn default() -> Self {
        PairNumbers {
            v4: FastMap::default(),
            other: FastMap::default(),
        }
    }
}

impl<K: AddressPair> PairNumbers<K> {
    /// Room for `pairs` IPv4 pairs (the usual kind) before the map grows.
    pub fn with_capacity(pairs: usize) -> Self {
        PairNumbers {
            v4: FastMap::with_capacity_and_hasher(pairs, Default::default()),
            other: FastMap::default(),
        }
    }

    /// The pair's number, and whether it was first seen now.
    // Once per segment or connection: inlined, the packing folds into the caller's.
    #[inline]
    pub fn number(&mut self, pair: K) -> (u32, bool) {
        let next = self.len();
        let number = match pair.packed_v4() {
            // Looked up before any insert: nearly every pair is there already.
            Some(packed) => match self.v4.get(&packed) {
                Some(&number) => number,
                None => *self.v4.entry(packed).or_insert(next),
            },
            None => *self.other.entry(pair).or_insert(next),
        };
        (number, number == next)
    }

    /// The pair's number, if it has one.
    #[inline]
    pub fn get(&self, pair: K) -> Option<u32> {
        match pair.packed_v4() {
            Some(packed) => self.v4.get(&packed).copied(),
            None => self.other.get(&pair).copied(),
        }
    }

    fn len(&self) -> u32 {
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
        assert_eq!(numbers.number((client, server)), (0, true));
        assert_eq!(numbers.number((client, v6)), (1, true));
        assert_eq!(numbers.number((client, other_port)), (2, true));
        assert_eq!(numbers.number((client, server)), (0, false));
        assert_eq!(numbers.number((server.ip(), server)), (3, true));
        assert_eq!(numbers.number((client, v6)), (1, false));
        assert_eq!(numbers.len(), 4);
    }

    #[test]
    fn address_pairs_are_numbered_each_way_round() {
        let mut numbers = PairNumbers::default();
        let (a, b): (IpAddr, IpAddr) =
            ("203.0.113.7".parse().unwrap(), "192.0.2.1".parse().unwrap());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(numbers.number((a, b)), (0, true));
        assert_eq!(numbers.number((b, a)), (1, true));
        assert_eq!(numbers.number((v6, b)), (2, true));
        assert_eq!(numbers.number((a, b)), (0, false));
        assert_eq!(numbers.number((v6, b)), (2, false));
    }
}
