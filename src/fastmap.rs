//! Hash maps for lookups made once or more per packet. std's SipHash costs more than the rest
//! of the tracker's work on a segment; foldhash is several times faster and still seeded per
//! process, so a crafted capture cannot aim collisions at a known hash function.

pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
