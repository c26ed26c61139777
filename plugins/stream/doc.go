// Package stream holds StreamInput (lines from stdin, a file, or a
// command's stdout) and StreamOutput (one line per packet to stdout or a
// file).
//
// StreamInput reading a file checkpoints the byte offset after each line
// and resumes there after a restart; stdin and commands have no position
// to resume from and start over. It stops (returns, so the engine drains
// and exits) at end of input. For tailing growing files use FileInput.
//
// StreamOutput acks a batch once it is written and flushed to the file
// (and fsynced with sync: true), so an acked packet is in the file.
package stream
