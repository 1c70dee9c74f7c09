"""The file formats a transactions file may come in, by name suffix (`lake load`, `score`)."""

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
PARQUET_SUFFIXES = (".parquet", ".pq")
