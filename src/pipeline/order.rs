//! The order in which a domain's row groups are read in each epoch.
//!
//! Every epoch shuffles the shard order, then the row-group order inside each shard, with a
//! generator seeded from the configuration's seed, the domain's name and the epoch. The order is
//! a pure function of those three, so a reader resumed at any epoch reads what an uninterrupted
//! reader would have. Row groups with no rows are left out. The shuffle is a Fisher–Yates shuffle
//! over this crate's own bounded draw, so it cannot change with a `rand` release.
//!
//! An [`EpochPlan`] adds the rank's share of that order (see [`Partition`]).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::state::Partition;
use crate::sampler::derive_seed;
use crate::source::Shard;

/// One row group of one shard: the unit a reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Index of the shard among the domain's shards.
    pub shard: usize,
    /// Index of the row group within the shard.
    pub row_group: usize,
}

/// The units of `domain` in the order epoch `epoch` reads them.
pub fn epoch_units(seed: u64, domain: &str, epoch: u64, shards: &[Shard]) -> Vec<Unit> {
    let mut rng = ChaCha8Rng::from_seed(derive_seed(seed, "shuffle", &[domain.as_bytes(), &epoch.to_le_bytes()]));
    let mut shard_order: Vec<usize> = (0..shards.len()).collect();
    shuffle(&mut shard_order, &mut rng);

    let mut units = Vec::new();
    for shard in shard_order {
        let mut row_groups: Vec<usize> = (0..shards[shard].num_row_groups()).filter(|&group| shards[shard].row_group_rows(group) > 0).collect();
        shuffle(&mut row_groups, &mut rng);
        units.extend(row_groups.into_iter().map(|row_group| Unit { shard, row_group }));
    }
    units
}

/// One epoch of a domain as one rank reads it.
#[derive(Debug, Clone)]
pub struct EpochPlan {
    /// Every unit of the epoch, in the global order all ranks share.
    pub units: Vec<Unit>,
    partition: Partition,
    /// Whether ranks split the epoch by whole units (there are at least as many units as ranks)
    /// or by rows.
    by_unit: bool,
    /// The global row index of each unit's first row, for splitting by rows.
    first_rows: Vec<u64>,
}

impl EpochPlan {
    /// Plans epoch `epoch` of `domain` for `partition`.
    pub fn new(seed: u64, domain: &str, epoch: u64, shards: &[Shard], partition: Partition) -> EpochPlan {
        let units = epoch_units(seed, domain, epoch, shards);
        let by_unit = units.len() >= partition.world_size;
        let mut first_rows = Vec::with_capacity(units.len());
        let mut rows = 0u64;
        for unit in &units {
            first_rows.push(rows);
            rows += shards[unit.shard].row_group_rows(unit.row_group) as u64;
        }
        EpochPlan { units, partition, by_unit, first_rows }
    }

    /// Whether this rank reads anything of unit `index`.
    pub fn reads_unit(&self, index: usize) -> bool {
        !self.by_unit || index % self.partition.world_size == self.partition.rank
    }

    /// Whether this rank reads row `row` of unit `index` (given that it reads the unit).
    pub fn reads_row(&self, index: usize, row: u64) -> bool {
        self.by_unit || (self.first_rows[index] + row) % self.partition.world_size as u64 == self.partition.rank as u64
    }
}

/// Shuffles `items` uniformly (Fisher–Yates).
fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for last in (1..items.len()).rev() {
        let pick = bounded(rng, last as u64 + 1) as usize;
        items.swap(last, pick);
    }
}

/// A uniform draw from `0..bound` by rejection, without modulo bias.
fn bounded(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let zone = u64::MAX - u64::MAX % bound;
    loop {
        let value = rng.next_u64();
        if value < zone {
            return value % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut items: Vec<u32> = (0..100).collect();
        shuffle(&mut items, &mut rng);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(items, sorted);
    }

    #[test]
    fn bounded_stays_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        assert!((0..10_000).all(|_| bounded(&mut rng, 7) < 7));
    }
}
