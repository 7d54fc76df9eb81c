//! Which partitions a source subtask starts reading when its topic grows.

use std::collections::BTreeMap;

use runnel_runtime::Assignment;

/// The partitions of a topic of `count` partitions that `owner` reads and does not read
/// yet (`known`). `None` as owner: a reader opened on a fixed list gains nothing.
pub(crate) fn gained<V>(
    owner: Option<&Assignment>,
    known: &BTreeMap<u32, V>,
    count: u32,
) -> Vec<u32> {
    let Some(owner) = owner else {
        return Vec::new();
    };
    (0..count)
        .filter(|p| owner.owns(*p) && !known.contains_key(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(partitions: &[u32]) -> BTreeMap<u32, i64> {
        partitions.iter().map(|p| (*p, 0)).collect()
    }

    /// (subtask, parallelism, partitions at start, known, count now, expected)
    type Case = (usize, usize, usize, &'static [u32], u32, &'static [u32]);

    #[test]
    fn decisions() {
        let cases: &[Case] = &[
            (0, 2, 4, &[0, 2], 4, &[]),  // nothing new
            (0, 2, 4, &[0, 2], 6, &[4]), // 4 and 5 added: 4 is ours
            (1, 2, 4, &[1, 3], 6, &[5]), // 5 is ours
            (1, 2, 4, &[1, 3], 5, &[]),  // only 4 added: not ours
            (0, 1, 1, &[0], 3, &[1, 2]), // parallelism 1 takes all
            (2, 3, 2, &[], 3, &[2]),     // a subtask idle at start gains one
            (0, 2, 4, &[0, 2], 3, &[]),  // metadata went backwards: no change
            (0, 2, 4, &[0], 4, &[2]),    // a known list missing one of ours
        ];
        for (subtask, parallelism, start, k, count, expected) in cases {
            let owner = Assignment::of(*subtask, *parallelism, *start);
            assert_eq!(
                gained(Some(&owner), &known(k), *count),
                expected.to_vec(),
                "subtask {subtask}/{parallelism}, known {k:?}, count {count}"
            );
        }
        assert!(gained(None, &known(&[0]), 8).is_empty());
    }
}
