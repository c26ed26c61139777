// Package winstat holds the mergeable summary statistics shared by the
// window and aggregate filters: count, sum, min, max, mean, stddev, and
// percentiles from a log-bucketed histogram with 1 % relative accuracy
// (DDSketch-style: bucket i holds values in (gamma^(i-1), gamma^i]).
//
// A Stats is not safe for concurrent use; its owner serialises access.
// Merge and Add are deterministic: the same values in any order give the
// same result.
package winstat
