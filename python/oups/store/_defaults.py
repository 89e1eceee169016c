"""Defaults shared by ``write()`` and ``OrderedParquetDataset.write``."""

#: Default number of rows per row group (as in the pure-Python oups).
ROW_GROUP_TARGET_SIZE = 6_345_000
#: Default Parquet compression of data files (see docs/dataset.md for the measurements).
DEFAULT_COMPRESSION = "none"
