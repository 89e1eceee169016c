//! Dictionary (categorical) columns: one dictionary wherever arrays are joined,
//! and the categories of each data file kept exactly as written.
//!
//! Two problems meet here. Row groups written at different times hold different
//! category sets, and Arrow's concat only merges dictionaries when it must, so
//! joined arrays could hold a dictionary with repeated values, which pandas
//! refuses. And the Parquet writer re-encodes a dictionary from the values it
//! meets, losing unused categories and the category order (which is the
//! meaning of an ordered categorical). So each data file records its
//! dictionaries in its footer, reads put them back, and every join first gives
//! its inputs one dictionary: the union of theirs, in order of first
//! appearance, as pyarrow does for `pd.read_parquet`.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{make_array, Array, ArrayRef, Int32Array, RecordBatch};
use arrow_buffer::ScalarBuffer;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::file::metadata::KeyValue;

use crate::error::{OupsError, Result};

/// Footer key of column `i`'s dictionary: an Arrow IPC stream, hex-encoded
/// (Parquet key-value metadata is text).
fn footer_key(i: usize) -> String {
    format!("oups:dictionary:{i}")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = text.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Footer key listing the columns that are ordered categoricals.
const ORDERED_KEY: &str = "oups:ordered";

/// Whether some column of `schema` is dictionary-encoded (a categorical).
pub fn has_dictionary(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Dictionary(_, _)))
}

/// `schema` without the ordered flags of its dictionaries, for the file's own
/// Arrow schema: other readers would apply the order to the categories the
/// Parquet writer re-encoded in order of appearance, which is not the order
/// the flag speaks of. The flags live in the footer instead ([`record`]).
pub fn unordered(schema: &SchemaRef) -> Option<SchemaRef> {
    if !schema
        .fields()
        .iter()
        .any(|f| f.dict_is_ordered() == Some(true))
    {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_dict_is_ordered(false))
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The Arrow schema of a data file as the dataset sees it: with the ordered
/// flags its footer recorded, and without the footer's own entries, which the
/// Parquet reader copies into the schema's metadata.
pub fn file_schema(schema: SchemaRef, kv: Option<&Vec<KeyValue>>) -> SchemaRef {
    let ours = |k: &String| k.starts_with("oups:");
    let metadata: HashMap<String, String> = schema
        .metadata()
        .iter()
        .filter(|(k, _)| !ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let list = kv
        .and_then(|kv| kv.iter().find(|e| e.key == ORDERED_KEY))
        .and_then(|e| e.value.as_deref());
    if list.is_none() && metadata.len() == schema.metadata().len() {
        return schema;
    }
    let ordered: Vec<usize> = list
        .unwrap_or("")
        .split(',')
        .filter_map(|x| x.parse().ok())
        .collect();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let is_dict = matches!(f.data_type(), DataType::Dictionary(_, _));
            f.as_ref()
                .clone()
                .with_dict_is_ordered(is_dict && ordered.contains(&i))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// The footer entries recording the dictionaries of `batch`'s columns (and
/// which of them are ordered).
pub fn record(batch: &RecordBatch) -> Result<Vec<KeyValue>> {
    let mut out = Vec::new();
    let ordered: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.dict_is_ordered() == Some(true))
        .map(|(i, _)| i.to_string())
        .collect();
    if !ordered.is_empty() {
        out.push(KeyValue::new(ORDERED_KEY.to_string(), ordered.join(",")));
    }
    for (i, col) in batch.columns().iter().enumerate() {
        let Some(dict) = col.as_any_dictionary_opt() else {
            continue;
        };
        let values = dict.values();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "values",
            values.data_type().clone(),
            true,
        )]));
        let one = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::clone(values)])?;
        let mut bytes = Vec::new();
        let mut w = StreamWriter::try_new(&mut bytes, &schema)?;
        w.write(&one)?;
        w.finish()?;
        drop(w);
        out.push(KeyValue::new(footer_key(i), hex(&bytes)));
    }
    Ok(out)
}

fn recorded_values(kv: &[KeyValue], i: usize, value_type: &DataType) -> Option<ArrayRef> {
    let key = footer_key(i);
    let text = kv.iter().find(|e| e.key == key)?.value.as_deref()?;
    let bytes = unhex(text)?;
    // A footer we did not write (or a damaged one) is ignored: the decoded
    // dictionary is still a valid one, only its order and unused values are lost.
    let reader = StreamReader::try_new(Cursor::new(bytes), None).ok()?;
    let batch = reader.into_iter().next()?.ok()?;
    let values = batch.columns().first()?.clone();
    (values.data_type() == value_type).then_some(values)
}

/// Puts back the dictionaries a data file recorded (see [`record`]).
pub fn restore(batch: RecordBatch, kv: Option<&Vec<KeyValue>>) -> Result<RecordBatch> {
    let Some(kv) = kv else { return Ok(batch) };
    let mut columns = batch.columns().to_vec();
    let mut changed = false;
    for (i, col) in columns.iter_mut().enumerate() {
        let DataType::Dictionary(key_type, value_type) = col.data_type() else {
            continue;
        };
        let Some(values) = recorded_values(kv, i, value_type) else {
            continue;
        };
        let seed = make_array(
            arrow_data::ArrayData::new_empty(&DataType::Dictionary(
                key_type.clone(),
                value_type.clone(),
            ))
            .into_builder()
            .child_data(vec![values.to_data()])
            .build()?,
        );
        let unified = unify_arrays(&[seed, Arc::clone(col)])?;
        *col = cast_keys(&unified[1], key_type)?;
        changed = true;
    }
    if !changed {
        return Ok(batch);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn cast_keys(array: &ArrayRef, key_type: &DataType) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Dictionary(k, v) if k.as_ref() != key_type => Ok(arrow_cast::cast(
            array,
            &DataType::Dictionary(Box::new(key_type.clone()), v.clone()),
        )?),
        _ => Ok(Arc::clone(array)),
    }
}

/// Gives dictionary arrays of one value type a single dictionary: the union of
/// theirs in order of first appearance (the first array's values come first,
/// unchanged). Arrays whose dictionaries are equal come back sharing the
/// first one's, which lets concat keep it once. The result has Int32 keys
/// unless every input already shared one dictionary.
pub fn unify_arrays(arrays: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
    let dicts: Vec<_> = arrays.iter().map(|a| a.as_any_dictionary()).collect();
    let Some(first) = dicts.first() else {
        return Ok(Vec::new());
    };
    let first_values = first.values();
    if dicts.iter().all(|d| Arc::ptr_eq(d.values(), first_values)) {
        return Ok(arrays.to_vec());
    }
    if dicts
        .iter()
        .all(|d| d.values().to_data() == first_values.to_data())
    {
        return Ok(dicts
            .iter()
            .map(|d| d.with_values(Arc::clone(first_values)))
            .collect());
    }
    let value_type = first_values.data_type().clone();
    let converter = RowConverter::new(vec![SortField::new(value_type.clone())])?;
    let mut position: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut picks: Vec<(usize, usize)> = Vec::new();
    let mut mappings: Vec<Vec<i32>> = Vec::with_capacity(dicts.len());
    for (a, d) in dicts.iter().enumerate() {
        let rows = converter.convert_columns(&[Arc::clone(d.values())])?;
        let mut mapping = Vec::with_capacity(rows.num_rows());
        for j in 0..rows.num_rows() {
            let row = rows.row(j).as_ref().to_vec();
            let next = position.len();
            let idx = *position.entry(row).or_insert_with(|| {
                picks.push((a, j));
                next as i32
            });
            mapping.push(idx);
        }
        mappings.push(mapping);
    }
    if picks.len() > i32::MAX as usize {
        return Err(OupsError::InvalidArgument(
            "a categorical column has more than 2^31 categories".into(),
        ));
    }
    let sources: Vec<&dyn Array> = dicts.iter().map(|d| d.values().as_ref()).collect();
    let union = arrow_select::interleave::interleave(&sources, &picks)?;
    let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(value_type));
    let mut out = Vec::with_capacity(arrays.len());
    for (d, mapping) in dicts.iter().zip(&mappings) {
        let keys: Vec<i32> = d
            .normalized_keys()
            .iter()
            .map(|&k| mapping.get(k).copied().unwrap_or(0))
            .collect();
        let keys = Int32Array::new(ScalarBuffer::from(keys), d.keys().logical_nulls());
        let data = keys
            .into_data()
            .into_builder()
            .data_type(dict_type.clone())
            .child_data(vec![union.to_data()])
            .build()?;
        out.push(make_array(data));
    }
    Ok(out)
}

/// [`unify_arrays`] on every dictionary column of batches sharing a schema;
/// the returned schema has Int32 keys where unifying changed them.
pub fn unify_batches(batches: &[RecordBatch]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let Some(first) = batches.first() else {
        return Err(OupsError::Internal("no batch to unify".into()));
    };
    let schema = first.schema();
    let dict_cols: Vec<usize> = (0..schema.fields().len())
        .filter(|&c| matches!(schema.field(c).data_type(), DataType::Dictionary(_, _)))
        .collect();
    if batches.len() < 2 || dict_cols.is_empty() {
        return Ok((schema, batches.to_vec()));
    }
    let mut columns: Vec<Vec<ArrayRef>> = batches.iter().map(|b| b.columns().to_vec()).collect();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for &c in &dict_cols {
        let arrays: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(c))).collect();
        let unified = unify_arrays(&arrays)?;
        fields[c] = fields[c]
            .clone()
            .with_data_type(unified[0].data_type().clone());
        for (cols, u) in columns.iter_mut().zip(unified) {
            cols[c] = u;
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = columns
        .into_iter()
        .map(|cols| RecordBatch::try_new(Arc::clone(&schema), cols))
        .collect::<std::result::Result<_, _>>()?;
    Ok((schema, batches))
}

/// Concatenates batches sharing a schema, dictionaries unified first. The
/// result's dictionary keys are Int32 where unifying had to change them.
pub fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    match batches {
        [] => Ok(RecordBatch::new_empty(Arc::clone(schema))),
        [one] => Ok(one.clone()),
        _ => {
            let (unified_schema, unified) = unify_batches(batches)?;
            Ok(arrow_select::concat::concat_batches(
                &unified_schema,
                &unified,
            )?)
        }
    }
}

/// Arrow's `interleave`, except that dictionary arrays come out with one
/// dictionary without repeated values: Arrow's kernel concatenates the
/// dictionaries of its inputs, even when they are one and the same.
pub fn interleave(arrays: &[&dyn Array], indices: &[(usize, usize)]) -> Result<ArrayRef> {
    if !matches!(
        arrays.first().map(|a| a.data_type()),
        Some(DataType::Dictionary(_, _))
    ) {
        return Ok(arrow_select::interleave::interleave(arrays, indices)?);
    }
    let owned: Vec<ArrayRef> = arrays.iter().map(|a| make_array(a.to_data())).collect();
    let unified = unify_arrays(&owned)?;
    let keys: Vec<ArrayRef> = unified
        .iter()
        .map(|a| {
            let d = a.as_any_dictionary();
            make_array(d.keys().to_data())
        })
        .collect();
    let key_refs: Vec<&dyn Array> = keys.iter().map(|k| k.as_ref()).collect();
    let picked = arrow_select::interleave::interleave(&key_refs, indices)?;
    let dict = unified[0].as_any_dictionary();
    let data = picked
        .into_data()
        .into_builder()
        .data_type(unified[0].data_type().clone())
        .child_data(vec![dict.values().to_data()])
        .build()?;
    Ok(make_array(data))
}

/// Concatenates arrays of one type, dictionaries unified first.
pub fn concat_arrays(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let unified;
    let arrays = if matches!(
        arrays.first().map(|a| a.data_type()),
        Some(DataType::Dictionary(_, _))
    ) {
        unified = unify_arrays(arrays)?;
        &unified
    } else {
        arrays
    };
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    Ok(arrow_select::concat::concat(&refs)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, StringArray};

    fn cat(values: &[&str], keys: &[Option<i32>]) -> ArrayRef {
        let keys = Int32Array::from(keys.to_vec());
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                keys,
                Arc::new(StringArray::from(values.to_vec())),
            )
            .unwrap(),
        )
    }

    fn strings(a: &ArrayRef) -> Vec<Option<String>> {
        let casted = arrow_cast::cast(a, &DataType::Utf8).unwrap();
        casted
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

    #[test]
    fn union_keeps_first_order_and_values() {
        let a = cat(&["a", "b", "z"], &[Some(0), Some(1)]);
        let b = cat(&["c", "a"], &[Some(0), None, Some(1)]);
        let u = unify_arrays(&[a.clone(), b.clone()]).unwrap();
        let vals = |x: &ArrayRef| strings(x.as_any_dictionary().values());
        assert_eq!(vals(&u[0]), vals(&u[1]));
        assert_eq!(
            vals(&u[0]),
            ["a", "b", "z", "c"].map(|s| Some(s.to_string()))
        );
        assert_eq!(strings(&u[0]), strings(&a));
        assert_eq!(strings(&u[1]), strings(&b));
        let joined = concat(
            &Arc::new(Schema::new(vec![Field::new(
                "c",
                a.data_type().clone(),
                true,
            )])),
            &[
                RecordBatch::try_from_iter_with_nullable([("c", a, true)]).unwrap(),
                RecordBatch::try_from_iter_with_nullable([("c", b, true)]).unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(joined.column(0).as_any_dictionary().values().len(), 4);
    }

    #[test]
    fn record_and_restore_round_trip() {
        let a = cat(&["low", "mid", "high"], &[Some(2), Some(0)]);
        let batch = RecordBatch::try_from_iter([("c", a)]).unwrap();
        let kv = record(&batch).unwrap();
        // What the Parquet reader gives back: first-appearance order, used only.
        let decoded =
            RecordBatch::try_from_iter([("c", cat(&["high", "low"], &[Some(0), Some(1)]))])
                .unwrap();
        let restored = restore(decoded, Some(&kv)).unwrap();
        let col = restored.column(0);
        assert_eq!(
            strings(col.as_any_dictionary().values()),
            ["low", "mid", "high"].map(|s| Some(s.to_string()))
        );
        assert_eq!(strings(col), strings(batch.column(0)));
        assert_eq!(unhex(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        assert!(unhex("zz").is_none());
    }
}
