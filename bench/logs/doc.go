// Package logs holds the log-pipeline benchmarks (issue 7 targets):
//
//   - BenchmarkLogsReplayGzipJSON: historical replay of a 1 M-line gzip
//     file through FileInput -> ParseFilter(json) -> DecorateFilter ->
//     MockOutput; target 300 000 lines/s on 2 cores.
//   - BenchmarkLogsReplayPlain: plain lines, no parsing, FileInput ->
//     MockOutput; target 1 M lines/s.
//   - BenchmarkLogsReplayGzipPlain: the same from the gzip file (the cost
//     of decompression alone).
//
// Each reports lines/s and allocs/line (process-wide mallocs during the
// run divided by lines). Run: go test -run XXX -bench . -benchtime 1x
// ./bench/logs/ (the 1 M-line files are generated once into the temp
// dir).
package logs
