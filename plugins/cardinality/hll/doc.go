// Package hll is a HyperLogLog cardinality sketch with a sparse and a
// dense representation, mergeable and serialisable.
//
//   - Hash: every input is hashed to 64 bits with a stable hash (the same
//     in every process and version, so saved sketches stay valid):
//     AddBytes/AddString for text, AddUint64/AddInt64 for integer ids
//     (mixed, not used raw).
//   - Precision p (4..18) gives m = 2^p registers; the standard error is
//     1.04/sqrt(m): p = 16, the default, gives 0.41 % (errors of about
//     1 % at most, 2.4 standard errors; 64 KiB dense); p = 14 gives 0.81 %
//     in 16 KiB.
//   - Sparse: while few registers are set, the sketch keeps sorted
//     (index, rank) pairs (4 bytes each); it turns dense (m bytes) when
//     it holds more than m/16 pairs (a quarter of the dense size).
//   - Estimate: Ertl's improved estimator ("New cardinality estimation
//     algorithms for HyperLogLog sketches", 2017), accurate from 0 to
//     beyond 10^9 without bias tables or linear-counting switch-over.
//
// A Sketch is not safe for concurrent use.
package hll
