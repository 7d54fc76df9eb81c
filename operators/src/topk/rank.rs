//! The ranking kernel: the top k rows of every partition of a batch.
//!
//! Rows are encoded once with Arrow's row format (`arrow::row::RowConverter`), which turns
//! a multi-column sort key into bytes whose `memcmp` order is the key's order: one
//! vectorized conversion, then a sort of row indices by byte slices (the same approach
//! DataFusion takes for multi-column sorts). Two encodings are made: the partition
//! columns, and the ranking key.
//!
//! The ranking key is the `ORDER BY` keys followed by every other column ascending with
//! nulls first. That makes the order total up to rows that are identical anyway, which is
//! what lets top-K run in two phases: whichever subtask a row went to, it is kept by the
//! partial top-K if and only if it is in the global top k, and the global merge ranks the
//! survivors exactly as a single top-K over all rows would.
//!
//! A batch holding one partition (the usual case: partitioning by window bounds within
//! one window end) is ranked with a selection (`select_nth_unstable`, linear) followed by
//! sorting only the k survivors; several partitions take one full sort.

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::SortOptions;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use runnel_runtime::{Error, Result};

/// Which rows of a batch are kept, in output order (partition, then rank).
#[derive(Debug)]
pub(crate) struct Selection {
    /// Row indices into the ranked batch.
    pub indices: UInt32Array,
    /// Rank of each kept row within its partition, from 1.
    pub ranks: Vec<u64>,
}

/// Ranks rows within partitions and keeps the first k of each.
pub(crate) struct Ranker {
    k: usize,
    partition: Option<Encoder>,
    key: Option<Encoder>,
}

/// Encodes some columns of a batch in the row format.
struct Encoder {
    columns: Vec<usize>,
    converter: RowConverter,
}

impl Encoder {
    fn new(schema: &Schema, columns: &[(usize, SortOptions)]) -> Result<Option<Self>> {
        if columns.is_empty() {
            return Ok(None);
        }
        let fields = columns
            .iter()
            .map(|&(index, options)| {
                SortField::new_with_options(schema.field(index).data_type().clone(), options)
            })
            .collect();
        let converter = RowConverter::new(fields).map_err(|e| {
            let names: Vec<&str> = columns
                .iter()
                .map(|&(i, _)| schema.field(i).name().as_str())
                .collect();
            Error::Plan(format!(
                "top-K cannot order rows by columns [{}]: {e}",
                names.join(", ")
            ))
        })?;
        Ok(Some(Encoder {
            columns: columns.iter().map(|&(index, _)| index).collect(),
            converter,
        }))
    }

    fn encode(&self, batch: &RecordBatch) -> Result<Rows> {
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        Ok(self.converter.convert_columns(&columns)?)
    }
}

impl Ranker {
    /// A ranker keeping `k` rows per partition of the `partition` columns (ordered
    /// ascending, nulls first), ranked by the `key` columns, most significant first.
    pub fn new(
        schema: &Schema,
        k: usize,
        partition: &[usize],
        key: &[(usize, SortOptions)],
    ) -> Result<Self> {
        let ascending: Vec<(usize, SortOptions)> = partition
            .iter()
            .map(|&i| (i, SortOptions::new(false, true)))
            .collect();
        Ok(Ranker {
            k,
            partition: Encoder::new(schema, &ascending)?,
            key: Encoder::new(schema, key)?,
        })
    }

    /// The top k rows of every partition of `batch`, ordered by partition (ascending,
    /// nulls first) and then rank.
    pub fn select(&self, batch: &RecordBatch) -> Result<Selection> {
        let n = batch.num_rows();
        let rows = u32::try_from(n)
            .map_err(|_| Error::Internal(format!("top-K over {n} rows at once")))?;
        let keys = self.key.as_ref().map(|e| e.encode(batch)).transpose()?;
        let by_key = |a: &u32, b: &u32| match &keys {
            Some(keys) => keys.row(*a as usize).cmp(&keys.row(*b as usize)),
            None => std::cmp::Ordering::Equal,
        };
        let mut order: Vec<u32> = (0..rows).collect();
        let partitions = self
            .partition
            .as_ref()
            .map(|e| e.encode(batch))
            .transpose()?;
        let partitions = partitions.filter(|p| (1..n).any(|i| p.row(i) != p.row(0)));
        let Some(partitions) = partitions else {
            if n > self.k {
                order.select_nth_unstable_by(self.k - 1, by_key);
                order.truncate(self.k);
            }
            order.sort_unstable_by(by_key);
            let ranks = (1..=order.len() as u64).collect();
            return Ok(Selection {
                indices: UInt32Array::from(order),
                ranks,
            });
        };
        let partition_of = |i: u32| partitions.row(i as usize);
        order.sort_unstable_by(|a, b| {
            partition_of(*a)
                .cmp(&partition_of(*b))
                .then_with(|| by_key(a, b))
        });
        let mut kept = Vec::with_capacity(order.len().min(self.k));
        let mut ranks = Vec::with_capacity(kept.capacity());
        let mut rank = 0u64;
        for (position, &row) in order.iter().enumerate() {
            if position == 0 || partition_of(row) != partition_of(order[position - 1]) {
                rank = 0;
            }
            rank += 1;
            if rank <= self.k as u64 {
                kept.push(row);
                ranks.push(rank);
            }
        }
        Ok(Selection {
            indices: UInt32Array::from(kept),
            ranks,
        })
    }
}
