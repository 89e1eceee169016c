//! The dataset schema and how new data is made to match it.
//!
//! The first write fixes the schema (the Arrow schema of the first data file,
//! with its pandas metadata). Later data must have the same column names and
//! types; only representation differences that lose nothing are cast away
//! (string vs large string, dictionary index width, nullability).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{OupsError, Result};

/// Canonical form for a new dataset: dictionary indices are widened to Int32
/// so later categoricals with more categories fit, every field is nullable.
pub fn canonical(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = match f.data_type() {
                // The Parquet writer cannot encode dictionaries of view types
                // (polars' Categorical): their values are stored as plain strings.
                DataType::Dictionary(_, v) => {
                    let values = match v.as_ref() {
                        DataType::Utf8View => DataType::Utf8,
                        DataType::BinaryView => DataType::Binary,
                        other => other.clone(),
                    };
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(values))
                }
                other => other.clone(),
            };
            Field::new(f.name(), dt, true)
                .with_metadata(f.metadata().clone())
                .with_dict_is_ordered(f.dict_is_ordered().unwrap_or(false))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn string_like(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn binary_like(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

fn compatible(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (a, b) if a == b => true,
        // An all-null column (e.g. an object column of None) fits any type.
        (DataType::Null, _) => true,
        (a, b) if string_like(a) && string_like(b) => true,
        (a, b) if binary_like(a) && binary_like(b) => true,
        (DataType::Dictionary(_, a), DataType::Dictionary(_, b)) => compatible(a, b),
        _ => false,
    }
}

/// A hint for the field name pyarrow gives an unnamed pandas index.
fn index_hint(name: &str, hint: &str) -> String {
    if name.starts_with("__index_level_") {
        format!(" ({hint})")
    } else {
        String::new()
    }
}

/// Timestamps (same zone) or durations in another unit: cast when no value
/// changes (polars writes microseconds, pandas nanoseconds).
fn other_unit(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::Timestamp(_, a), DataType::Timestamp(_, b)) => a == b,
        (DataType::Duration(_), DataType::Duration(_)) => true,
        _ => false,
    }
}

/// `col` cast to `to` when that loses nothing (no truncation, no overflow).
fn lossless_cast(col: &ArrayRef, to: &DataType) -> Option<ArrayRef> {
    let cast = arrow_cast::cast(col, to).ok()?;
    let back = arrow_cast::cast(&cast, col.data_type()).ok()?;
    (back.to_data() == col.to_data()).then_some(cast)
}

/// Reorders and casts `batch` to `target`, or lists every difference.
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let source = batch.schema();
    let mut problems = Vec::new();
    let mut columns = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        match source.index_of(f.name()) {
            Err(_) => problems.push(format!(
                "column '{}' is missing{}",
                f.name(),
                index_hint(f.name(), "the dataset stores the index of its first frame")
            )),
            Ok(i) => {
                let col = batch.column(i);
                if col.data_type() == f.data_type() {
                    columns.push(col.clone());
                } else if compatible(col.data_type(), f.data_type()) {
                    columns.push(arrow_cast::cast(col, f.data_type())?);
                } else if other_unit(col.data_type(), f.data_type()) {
                    match lossless_cast(col, f.data_type()) {
                        Some(c) => columns.push(c),
                        None => problems.push(format!(
                            "column '{}' has type {} but the dataset stores {}, and casting \
                             would change some values (precision or range)",
                            f.name(),
                            col.data_type(),
                            f.data_type()
                        )),
                    }
                } else {
                    problems.push(format!(
                        "column '{}' has type {} but the dataset stores {}",
                        f.name(),
                        col.data_type(),
                        f.data_type()
                    ));
                }
            }
        }
    }
    for f in source.fields() {
        if target.index_of(f.name()).is_err() {
            problems.push(format!(
                "column '{}' is not in the dataset{}",
                f.name(),
                index_hint(
                    f.name(),
                    "it is the frame's index: drop it with df.reset_index(drop=True)"
                )
            ));
        }
    }
    if !problems.is_empty() {
        return Err(OupsError::SchemaMismatch(format!(
            "the new data does not match the dataset's schema: {}; make the columns and dtypes \
             match, or write to a new dataset",
            problems.join("; ")
        )));
    }
    Ok(RecordBatch::try_new(Arc::clone(target), columns)?)
}
