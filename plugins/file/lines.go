package file

import (
	"bytes"
	"io"
)

// lineReader splits a reader into lines, tracking the byte offset of every
// line exactly. Returned lines are views into its buffer, valid until the
// next call.
type lineReader struct {
	r        io.Reader
	buf      []byte
	start    int   // first unconsumed byte
	scan     int   // bytes before scan (from start) hold no newline
	end      int   // end of buffered data
	off      int64 // file offset of buf[start]
	max      int   // longest line kept; longer lines are cut
	skipping bool  // discarding the rest of a cut line
}

func newLineReader(max int) *lineReader {
	n := 64 << 10
	if n > max+1 {
		n = max + 1
	}
	return &lineReader{buf: make([]byte, n), max: max}
}

// reset points the reader at r whose next byte is at offset off.
func (lr *lineReader) reset(r io.Reader, off int64) {
	lr.r = r
	lr.start, lr.scan, lr.end = 0, 0, 0
	lr.off = off
	lr.skipping = false
}

// readPos is the offset of the next byte to read from the underlying
// reader.
func (lr *lineReader) readPos() int64 { return lr.off + int64(lr.end-lr.start) }

// next returns the next complete line without its "\n" (and "\r"), the
// offset of its first byte, and whether it was cut at max bytes. err is
// io.EOF when no complete line is buffered and the reader is at its end
// (a partial line stays buffered: see pending).
func (lr *lineReader) next() (line []byte, start int64, cut bool, err error) {
	for {
		if i := bytes.IndexByte(lr.buf[lr.scan:lr.end], '\n'); i >= 0 {
			nl := lr.scan + i
			if lr.skipping {
				lr.off += int64(nl + 1 - lr.start)
				lr.start, lr.scan, lr.skipping = nl+1, nl+1, false
				continue
			}
			line = lr.buf[lr.start:nl]
			start = lr.off
			lr.off += int64(nl + 1 - lr.start)
			lr.start, lr.scan = nl+1, nl+1
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, start, false, nil
		}
		lr.scan = lr.end
		if lr.skipping {
			lr.off += int64(lr.end - lr.start)
			lr.start = lr.end
		} else if lr.end-lr.start >= lr.max {
			line = lr.buf[lr.start : lr.start+lr.max]
			start = lr.off
			lr.off += int64(lr.max)
			lr.start += lr.max
			lr.scan = lr.start
			lr.skipping = true
			return line, start, true, nil
		}
		if lr.start == lr.end {
			lr.start, lr.scan, lr.end = 0, 0, 0
		} else if lr.start > 0 && len(lr.buf)-lr.end < len(lr.buf)/4 {
			n := copy(lr.buf, lr.buf[lr.start:lr.end])
			lr.scan -= lr.start
			lr.start, lr.end = 0, n
		}
		if lr.end == len(lr.buf) {
			nb := make([]byte, min(2*len(lr.buf), lr.max+1))
			copy(nb, lr.buf[:lr.end])
			lr.buf = nb
		}
		n, rerr := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if n == 0 {
			if rerr == nil {
				rerr = io.ErrNoProgress
			}
			return nil, 0, false, rerr
		}
	}
}

// pending returns the buffered unterminated last line (nil when none or
// when the rest of a cut line is being skipped) and consumes it.
func (lr *lineReader) pending() (line []byte, start int64) {
	if lr.skipping || lr.start == lr.end {
		lr.off += int64(lr.end - lr.start)
		lr.start, lr.scan, lr.end = 0, 0, 0
		lr.skipping = false
		return nil, 0
	}
	line, start = lr.buf[lr.start:lr.end], lr.off
	lr.off += int64(lr.end - lr.start)
	lr.start, lr.scan, lr.end = 0, 0, 0
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, start
}
