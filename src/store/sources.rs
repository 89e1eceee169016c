//! Where the rows of `Store.iter_intersections` come from: a version of a
//! dataset on local disk or on object storage.

use std::ops::Range;

use arrow_array::RecordBatch;
use arrow_schema::DataType;

use crate::dataset::contiguous::read_joined_private;
use crate::dataset::object::ObjectSnapshot;
use crate::dataset::range_read::Snapshot;
use crate::dataset::state::RowGroup;
use crate::error::Result;

pub enum Source {
    Local(Snapshot),
    Object(ObjectSnapshot),
}

impl Source {
    pub fn row_groups(&self) -> &[RowGroup] {
        match self {
            Source::Local(s) => &s.row_groups,
            Source::Object(s) => &s.row_groups,
        }
    }

    pub fn ordered_type(&self) -> &DataType {
        match self {
            Source::Local(s) => &s.ordered_type,
            Source::Object(s) => &s.ordered_type,
        }
    }

    pub fn ordered_index(&self) -> usize {
        match self {
            Source::Local(s) => s.ordered_index,
            Source::Object(s) => s.ordered_index,
        }
    }

    /// Row groups `rgs`, joined, and per column whether it is private memory
    /// (see `Part::private`). `whole`: all its rows will be handed out, so a
    /// local file's pages are mapped in at once; otherwise they are mapped as
    /// chunks hand them over, since a range read may take a few rows of a
    /// large file. Object storage has no mapping: files are fetched whole.
    pub fn load(&self, rgs: Range<usize>, whole: bool) -> Result<(RecordBatch, Vec<bool>)> {
        match self {
            Source::Local(snap) => {
                let rgs = &snap.row_groups[rgs];
                snap.checked(read_joined_private(
                    &snap.paths(rgs),
                    rgs,
                    &snap.schema,
                    Some(snap.ordered_index),
                    whole,
                ))
            }
            Source::Object(snap) => {
                let batch = snap.load(rgs)?;
                let private = vec![false; batch.num_columns()];
                Ok((batch, private))
            }
        }
    }
}
