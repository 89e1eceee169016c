//! Checks that a decoded data file holds what the metadata says of it: the
//! dataset's columns with their types, the row count, and ordered values
//! running from the recorded min to the recorded max.
//!
//! A file replaced or damaged behind oups' back must never be read as if it
//! were the dataset (wrong rows, wrong order), nor be merged into a write.

use std::path::Path;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{Fields, Schema};

use crate::dataset::ordered_key::encode_column;
use crate::dataset::state::RowGroup;
use crate::error::{OupsError, Result};

/// Same column names and types, in the same order (field metadata and
/// nullability aside).
pub fn same_columns(a: &Fields, b: &Fields) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn describe(fields: &Fields) -> String {
    let cols: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    cols.join(", ")
}

/// The key of row `i` of an ordered column.
fn key_at(column: &dyn Array, i: usize, name: &str) -> Result<u64> {
    Ok(encode_column(column.slice(i, 1).as_ref(), name)?[0])
}

/// Checks that the file at `path` holds `n` rows, as `rg` says.
pub fn check_rows(path: &Path, n: usize, rg: &RowGroup) -> Result<()> {
    if n as u64 != rg.n_rows {
        return Err(OupsError::corrupt(
            path,
            format!("it holds {n} rows but the metadata says {}", rg.n_rows),
        ));
    }
    Ok(())
}

/// Checks `batch`, read from `path`, against its metadata entry `rg`. With
/// `columns`, the batch holds these columns of the dataset schema (all by
/// default); `ordered` is the ordered column's index in the batch, if read.
pub fn check_file(
    path: &Path,
    batch: &RecordBatch,
    schema: &Schema,
    rg: &RowGroup,
    ordered: Option<usize>,
) -> Result<()> {
    check_rows(path, batch.num_rows(), rg)?;
    if !same_columns(batch.schema().fields(), schema.fields()) {
        return Err(OupsError::corrupt(
            path,
            format!(
                "its columns ({}) differ from the dataset's ({})",
                describe(batch.schema().fields()),
                describe(schema.fields())
            ),
        ));
    }
    if let (Some(c), n) = (ordered, batch.num_rows()) {
        if n == 0 {
            return Ok(());
        }
        let column = batch.column(c).as_ref();
        let name = schema.field(c).name();
        let bad = |e: OupsError| OupsError::corrupt(path, format!("its ordered column: {e}"));
        let (first, last) = (
            key_at(column, 0, name).map_err(bad)?,
            key_at(column, n - 1, name).map_err(bad)?,
        );
        if first != rg.min || last != rg.max {
            return Err(OupsError::corrupt(
                path,
                "its first and last ordered values differ from the metadata's min and max",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{DataType, Field};

    use super::*;
    use crate::dataset::ordered_key::encode_i64;

    fn batch(t: Vec<i64>) -> RecordBatch {
        let n = t.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(t)),
                Arc::new(Float64Array::from(vec![0.0; n])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_columns_and_bounds_are_checked() {
        let good = batch(vec![1, 2, 3]);
        let schema = good.schema();
        let rg = RowGroup {
            file_id: 0,
            n_rows: 3,
            min: encode_i64(1),
            max: encode_i64(3),
        };
        let path = Path::new("file_0000000000.parquet");
        check_file(path, &good, &schema, &rg, Some(0)).unwrap();
        let err = |b: &RecordBatch| {
            check_file(path, b, &schema, &rg, Some(0))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&batch(vec![1, 2])).contains("holds 2 rows"));
        assert!(err(&batch(vec![3, 2, 1])).contains("min and max"));
        let other = Schema::new(vec![Field::new("t", DataType::Int64, false)]);
        let e = check_file(path, &good, &other, &rg, Some(0)).unwrap_err();
        assert!(e.to_string().contains("differ from the dataset"), "{e}");
    }
}
