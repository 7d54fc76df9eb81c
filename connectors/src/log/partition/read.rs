//! Reading a partition: the segments that cover a range, fetched and decoded whole, and
//! where an epoch's rows start.

use super::super::index::SegmentRef;
use super::super::names::segment_path;
use super::super::segment;
use super::super::topic::ReadResult;
use super::*;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use runnel_runtime::{Epoch, Error, Result};

impl Partition {
    fn plan(&self, from: u64, max_rows: u64) -> Result<Option<Vec<(SegmentRef, u64)>>> {
        let index = lock(&self.index);
        if from < index.start() {
            return Err(Error::Data(format!(
                "offset {from} of {} is before its first offset {}",
                self.label,
                index.start()
            )));
        }
        Ok((from < index.end()).then(|| index.covering(from, max_rows)))
    }

    /// Rows `[from, from + max_rows)`, or fewer if the partition ends sooner.
    pub async fn read(&self, from: u64, max_rows: usize) -> Result<ReadResult> {
        let empty = ReadResult {
            batches: Vec::new(),
            epochs: Vec::new(),
            next_offset: from,
        };
        if max_rows == 0 {
            return Ok(empty);
        }
        let max_rows = max_rows as u64;
        let plan = match self.plan(from, max_rows)? {
            Some(plan) => plan,
            None => {
                let end = self.refresh().await?;
                if from > end {
                    return Err(Error::Data(format!(
                        "offset {from} of {} is past its end {end}",
                        self.label
                    )));
                }
                match self.plan(from, max_rows)? {
                    Some(plan) => plan,
                    None => return Ok(empty),
                }
            }
        };
        let limit = from.saturating_add(max_rows);
        let fetches: Vec<_> = plan
            .iter()
            .map(|(seg, rows)| self.fetch(*seg, *rows))
            .collect();
        let mut segments = futures::stream::iter(fetches).buffered(FETCH_CONCURRENCY);
        let mut batches = Vec::new();
        let mut epochs = Vec::new();
        let mut next_offset = from;
        for (seg, _) in &plan {
            let Some(decoded) = segments.try_next().await? else {
                break;
            };
            let mut start = seg.base;
            for batch in decoded.batches {
                let end = start + batch.num_rows() as u64;
                let (lo, hi) = (start.max(from), end.min(limit));
                if lo < hi {
                    batches.push(batch.slice((lo - start) as usize, (hi - lo) as usize));
                    epochs.push(decoded.epoch);
                    next_offset = hi;
                }
                start = end;
            }
        }
        Ok(ReadResult {
            batches,
            epochs,
            next_offset,
        })
    }

    /// One GET of a whole segment, decoded; checks it holds the rows the index expects.
    async fn fetch(&self, seg: SegmentRef, rows: u64) -> Result<segment::Decoded> {
        let path = segment_path(&self.dir, seg.base);
        let bytes = async { self.store.get(&path).await?.bytes().await }
            .await
            .map_err(|e| self.external("read", e))?;
        let decoded = segment::decode(&self.schema, bytes)
            .map_err(|e| Error::external(format!("log segment {path}"), e))?;
        let count: usize = decoded.batches.iter().map(|b| b.num_rows()).sum();
        if count as u64 != rows {
            return Err(self.corrupt(format!(
                "segment {} holds {count} rows, expected {rows}",
                seg.base
            )));
        }
        Ok(decoded)
    }

    /// The base offset of the first segment committed by `epoch` or a later one, or the
    /// end of the partition if there is none yet, after a fresh listing.
    ///
    /// A binary search over segment footers (one ranged GET per probe): it relies on the
    /// epochs of a partition never going down in offset order, which holds for the
    /// exactly-once sink because the runtime commits epochs one after the other, and
    /// recommits an interrupted one before any later epoch. A segment without an epoch
    /// counts as epoch 0, before every committed one.
    pub async fn first_offset_from_epoch(&self, epoch: Epoch) -> Result<u64> {
        self.refresh().await?;
        let (segments, end) = {
            let index = lock(&self.index);
            (index.segments_from(index.start()), index.end())
        };
        let (mut lo, mut hi) = (0, segments.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let meta = self.read_meta(segments[mid].0).await?;
            if meta.epoch.unwrap_or(0) < epoch {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(segments.get(lo).map_or(end, |(seg, _)| seg.base))
    }
}
