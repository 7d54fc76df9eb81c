//! The in-memory index of one partition's segments.
//!
//! Offsets are dense, so the index only needs each segment's base offset (from its object
//! name) and the partition's end offset: segment `i` holds rows
//! `[base[i], base[i + 1])`, the last one `[base[last], end)`. Only the last segment's
//! row count has to be read from storage (its footer); every other count follows from the
//! next base. Segments are immutable and the log only grows, so the index is extended,
//! never rewritten, and a stale copy is merely behind.

/// A segment object: where its rows start and how large the object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentRef {
    /// Offset of the segment's first row, also its object name.
    pub base: u64,
    /// Object size in bytes (to fetch the footer from the tail).
    pub size: u64,
}

/// The known segments of a partition, in offset order.
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    segments: Vec<SegmentRef>,
    end: u64,
}

impl SegmentIndex {
    /// Offset of the first row still stored.
    pub fn start(&self) -> u64 {
        self.segments.first().map_or(self.end, |s| s.base)
    }

    /// Offset the next append gets: one past the last known row.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The segment with the highest base offset.
    pub fn last(&self) -> Option<SegmentRef> {
        self.segments.last().copied()
    }

    fn rows_of(&self, i: usize) -> u64 {
        let next = self.segments.get(i + 1).map_or(self.end, |s| s.base);
        next - self.segments[i].base
    }

    /// Adds the segments found by a listing (sorted by base; entries already known are
    /// skipped). `last_rows` is the row count of the last one, read from its footer; it
    /// is only consulted when that segment is new. Returns whether the index grew, or
    /// the offset gap that makes the listing inconsistent with the index.
    pub fn extend(
        &mut self,
        listed: &[SegmentRef],
        last_rows: Option<u64>,
    ) -> Result<bool, String> {
        let fresh_from = listed.partition_point(|s| s.base < self.end);
        let fresh = &listed[fresh_from..];
        let Some(last) = fresh.last() else {
            return Ok(false);
        };
        let Some(rows) = last_rows.filter(|r| *r > 0) else {
            return Err(format!("no row count for segment {}", last.base));
        };
        if !self.segments.is_empty() && fresh[0].base != self.end {
            return Err(format!(
                "segments end at offset {} but the next one starts at {}",
                self.end, fresh[0].base
            ));
        }
        self.segments.extend_from_slice(fresh);
        self.end = last.base + rows;
        Ok(true)
    }

    /// Records a segment this process appended at the current end. A no-op when a
    /// concurrent refresh already listed it.
    pub fn push(&mut self, segment: SegmentRef, rows: u64) {
        if segment.base == self.end {
            self.segments.push(segment);
            self.end = segment.base + rows;
        }
    }

    /// The segments holding rows `[from, from + max_rows)`, with their row counts.
    /// `from` must lie in `[start, end)`.
    pub fn covering(&self, from: u64, max_rows: u64) -> Vec<(SegmentRef, u64)> {
        let limit = from.saturating_add(max_rows);
        let first = self
            .segments
            .partition_point(|s| s.base <= from)
            .saturating_sub(1);
        (first..self.segments.len())
            .take_while(|&i| self.segments[i].base < limit)
            .map(|i| (self.segments[i], self.rows_of(i)))
            .collect()
    }

    /// Every segment whose base is at or after `offset`, with its row count.
    pub fn segments_from(&self, offset: u64) -> Vec<(SegmentRef, u64)> {
        let first = self.segments.partition_point(|s| s.base < offset);
        (first..self.segments.len())
            .map(|i| (self.segments[i], self.rows_of(i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: u64) -> SegmentRef {
        SegmentRef { base, size: 100 }
    }

    #[test]
    fn row_counts_follow_from_the_next_base() {
        let mut index = SegmentIndex::default();
        assert_eq!((index.start(), index.end()), (0, 0));
        assert!(index.extend(&[seg(0), seg(5), seg(12)], Some(3)).unwrap());
        assert_eq!((index.start(), index.end()), (0, 15));
        let rows: Vec<u64> = index.segments_from(0).iter().map(|(_, r)| *r).collect();
        assert_eq!(rows, vec![5, 7, 3]);
        assert_eq!(index.segments_from(5).len(), 2);
        assert_eq!(index.segments_from(6).len(), 1);
    }

    #[test]
    fn covering_selects_overlapping_segments() {
        let mut index = SegmentIndex::default();
        index.extend(&[seg(0), seg(5), seg(12)], Some(3)).unwrap();
        let bases = |from, max| -> Vec<u64> {
            index
                .covering(from, max)
                .iter()
                .map(|(s, _)| s.base)
                .collect()
        };
        assert_eq!(bases(0, 1), vec![0]);
        assert_eq!(bases(4, 1), vec![0]);
        assert_eq!(bases(4, 2), vec![0, 5]);
        assert_eq!(bases(5, 100), vec![5, 12]);
        assert_eq!(bases(14, u64::MAX), vec![12]);
    }

    #[test]
    fn extend_skips_known_segments_and_refuses_gaps() {
        let mut index = SegmentIndex::default();
        index.extend(&[seg(0)], Some(4)).unwrap();
        // A listing that only repeats what is known changes nothing.
        assert!(!index.extend(&[seg(0)], None).unwrap());
        index.push(seg(4), 6);
        assert_eq!(index.end(), 10);
        // A refresh that raced with the push lists it again: skipped.
        assert!(index.extend(&[seg(0), seg(4), seg(10)], Some(1)).unwrap());
        assert_eq!(index.end(), 11);
        // Pushing a segment a refresh already added is a no-op.
        index.push(seg(10), 1);
        assert_eq!(index.segments_from(0).len(), 3);
        assert!(index.extend(&[seg(12)], Some(1)).is_err());
        assert!(index.extend(&[seg(11)], None).is_err());
    }

    #[test]
    fn the_first_listing_may_start_anywhere() {
        let mut index = SegmentIndex::default();
        index.extend(&[seg(100), seg(110)], Some(5)).unwrap();
        assert_eq!((index.start(), index.end()), (100, 115));
    }
}
