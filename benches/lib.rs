//! Criterion benchmarks for runnel live in `benches/`; this library is empty.
