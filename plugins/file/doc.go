// Package file holds FileInput: it tails log files by glob (following
// rotation and truncation, with a per-file checkpoint so a restart resumes
// exactly after the last acked line) or, in historical mode, reads a set of
// archived files (plain, gzip, zstd) once, in order, and then finishes so
// the engine drains, commits and stops.
//
// Contract:
//  1. One engine Stream per file path (id = the path as matched by the
//     glob). Every line is one packet: Payload = the line without its
//     newline (and without a trailing '\r'), attributes "file" (the path)
//     and "offset" (byte offset of the line's first byte), Pos.Offset = the
//     byte offset just after the line, pack.FlagBoundary set.
//  2. Tail mode: Pos.Token is the file's identity "dev:inode". On restart a
//     stream resumes at its checkpoint when the file at the path still has
//     that identity; when it does not (rotated while dbus was down, maybe
//     several times), the rotated file is looked up by identity among the
//     names matching `rotated` (else anywhere in the directory), read from
//     the checkpoint to its end, then every rotated file modified after it
//     (oldest first, compressed ones skipped with a warning), then the new
//     file from 0.
//     A file whose size drops below the read position was truncated: it is
//     read again from 0 (logged, counted by Truncations).
//  3. Rotation while running (the path now names another file, or none):
//     the old file is read to its end (an unterminated last line is
//     emitted), then the new file is read from 0 on the same stream.
//  4. Historical mode: offsets are offsets in the decompressed text. The
//     end of a file is recorded with InputContext.Mark at token "eof", so
//     a restarted replay skips finished files and seeks (or, compressed,
//     decompresses and discards) to the checkpoint of the current one.
//     Run returns nil after the last file.
//  5. Run calls InputContext.Flush before waiting on the file system, so
//     an idle file never holds lines back.
//
// FileInput is used from the engine's input goroutine only; it is not safe
// for concurrent use. Lines longer than max_line are cut at max_line bytes
// (attribute "truncated"=true) and the rest of the line is skipped.
package file
