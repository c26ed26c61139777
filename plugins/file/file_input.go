package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// eofToken marks, in historical mode, a file read to its end.
const eofToken = "eof"

// Input is FileInput.
type Input struct {
	name       string
	paths      []string
	historical bool
	startEnd   bool
	poll       time.Duration
	rescan     time.Duration
	progress   time.Duration
	maxLine    int
	order      string
	comp       string
	rotated    string // glob of a tailed file's rotated names, {name} = its name

	lines, bytes, rotations, truncations atomic.Uint64
}

// Counters is a snapshot of FileInput's counters.
type Counters struct {
	Lines, Bytes, Rotations, Truncations uint64
}

// Counters returns the input's counters (safe from any goroutine).
func (in *Input) Counters() Counters {
	return Counters{in.lines.Load(), in.bytes.Load(), in.rotations.Load(), in.truncations.Load()}
}

func newInput(c *engine.Conf) (engine.Input, error) {
	in := &Input{
		name:       c.Name,
		paths:      c.Strings("paths"),
		historical: c.String("mode") == "historical",
		startEnd:   c.String("start") == "end",
		poll:       c.Duration("poll"),
		rescan:     c.Duration("rescan"),
		progress:   c.Duration("progress"),
		maxLine:    int(c.Size("max_line")),
		order:      c.String("order"),
		comp:       c.String("compression"),
		rotated:    c.String("rotated"),
	}
	if len(in.paths) == 0 {
		return nil, c.Errorf("paths", "at least one path or glob is required")
	}
	for _, p := range in.paths {
		if _, err := filepath.Match(p, ""); err != nil {
			return nil, c.Errorf("paths", "bad glob %q: %v", p, err)
		}
	}
	if in.rotated != "" {
		// It must start with {name}: the pattern only widens a path the
		// config (or admin.allowed_paths) allows to its rotated names.
		if _, err := filepath.Match(strings.ReplaceAll(in.rotated, "{name}", "x"), ""); err != nil || strings.ContainsRune(in.rotated, '/') || !strings.HasPrefix(in.rotated, "{name}") {
			return nil, c.Errorf("rotated", "bad pattern %q: want a glob of names in the file's directory starting with {name} (the file's name), e.g. {name}.*", in.rotated)
		}
	}
	if in.poll <= 0 {
		return nil, c.Errorf("poll", "must be positive")
	}
	if !in.historical && in.comp != "auto" && in.comp != "none" {
		return nil, c.Errorf("compression", "%s files cannot be tailed; use mode historical", in.comp)
	}
	return in, nil
}

// Run implements engine.Input.
func (in *Input) Run(ctx context.Context, ic engine.InputContext) error {
	if in.historical {
		return in.runHistorical(ctx, ic)
	}
	return in.runTail(ctx, ic)
}

// emit sends one line as a packet.
func (in *Input) emit(ctx context.Context, ic engine.InputContext, s *engine.Stream, path, ident string, line []byte, start, end int64, cut bool, ts int64) error {
	p, err := ic.NewPacket(ctx)
	if err != nil {
		return err
	}
	p.Payload = append(p.Payload[:0], line...)
	p.Ts = ts
	p.Attrs.SetString("file", path)
	p.Attrs.SetInt("offset", start)
	if cut {
		p.Attrs.SetBool("truncated", true)
	}
	p.Pos.Offset = end
	p.Pos.SetTokenString(ident)
	p.Flags |= pack.FlagBoundary
	in.lines.Add(1)
	in.bytes.Add(uint64(end - start))
	return ic.Emit(ctx, s, p)
}

// ---- tail mode ----

// source is one open file being read.
type source struct {
	f     *os.File
	ident string
	lr    *lineReader
}

func (s *source) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// tailFile is one tailed path: its stream, the file being read, and the
// file to read after it (rotation).
type tailFile struct {
	path   string
	stream *engine.Stream
	src    *source // nil while the path names no file
	next   *source
	// queue holds files to read after next: rotated files found at
	// start, oldest first, then the current file.
	queue []*source
}

func (in *Input) runTail(ctx context.Context, ic engine.InputContext) error {
	log := ic.Log()
	files := map[string]*tailFile{}
	var order []*tailFile
	defer func() {
		for _, tf := range order {
			if tf.src != nil {
				tf.src.close()
			}
			if tf.next != nil {
				tf.next.close()
			}
			for _, q := range tf.queue {
				q.close()
			}
		}
	}()
	scan := func(initial bool) error {
		for _, g := range in.paths {
			matches, err := filepath.Glob(g)
			if err != nil {
				return fmt.Errorf("glob %q: %w", g, err)
			}
			for _, path := range matches {
				if tf, ok := files[path]; ok {
					if tf.src == nil {
						// The path names a file again after a rotation.
						src, err := in.openAt(path, 0)
						if err != nil {
							log.Warn("cannot open file", "file", path, "err", err)
							continue
						}
						tf.src = src
					}
					continue
				}
				tf, err := in.openTail(ic, log, path, initial && in.startEnd)
				if err != nil {
					if errors.Is(err, os.ErrNotExist) || isDir(err) {
						continue
					}
					return err
				}
				files[path] = tf
				order = append(order, tf)
			}
		}
		return nil
	}
	if err := scan(true); err != nil {
		return err
	}
	lastScan := time.Now()
	const budget = 4096
	for {
		if ctx.Err() != nil {
			return nil
		}
		progress := false
		for _, tf := range order {
			n, err := in.pump(ctx, ic, tf, budget)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if n > 0 {
				progress = true
			}
		}
		if progress {
			continue
		}
		// Every file is at its end: publish what we hold, then look at the
		// file system.
		if err := ic.Flush(ctx); err != nil {
			return nil
		}
		for _, tf := range order {
			in.checkTail(log, tf)
		}
		if time.Since(lastScan) >= in.rescan {
			if err := scan(false); err != nil {
				return err
			}
			lastScan = time.Now()
		}
		if !engine.Sleep(ctx, in.poll) {
			return nil
		}
	}
}

func isDir(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "is a directory"
}

// openAt opens path and positions it at off.
func (in *Input) openAt(path string, off int64) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("is a directory")}
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("seek %s to %d: %w", path, off, err)
		}
	}
	src := &source{f: f, ident: identity(fi), lr: newLineReader(in.maxLine)}
	src.lr.reset(f, off)
	return src, nil
}

// openTail opens a newly found path, positioned from its checkpoint.
func (in *Input) openTail(ic engine.InputContext, log *slog.Logger, path string, atEnd bool) (*tailFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("is a directory")}
	}
	s, err := ic.Stream(path)
	if err != nil {
		return nil, fmt.Errorf("open stream for %s: %w", path, err)
	}
	tf := &tailFile{path: path, stream: s}
	ident := identity(fi)
	var off int64
	cp, ok := s.Resume()
	switch {
	case ok && cp.Token == ident:
		off = cp.Offset
		if fi.Size() < off {
			log.Warn("file shrank below its checkpoint while stopped (truncated): reading it from the start", "file", path, "checkpoint", off, "size", fi.Size())
			in.truncations.Add(1)
			off = 0
		}
	case ok && cp.Token != "" && ident != "":
		// Rotated while stopped (maybe several times): finish the old file
		// if it is still in the directory under another name, then read
		// every file rotated after it, oldest first, then the current one.
		old, newer := in.rotatedAfter(log, path, cp.Token, ident)
		var chain []*source
		if old != "" {
			prev, err := in.openAt(old, cp.Offset)
			if err == nil && prev.ident == cp.Token {
				log.Info("file was rotated while stopped: finishing the rotated file first", "file", path, "rotated", old, "offset", cp.Offset, "rotated_after_it", len(newer))
				chain = append(chain, prev)
			} else if err == nil {
				prev.close()
			}
		} else {
			log.Warn("file was rotated while stopped and the rotated file is gone: lines after the checkpoint in it are lost", "file", path, "checkpoint", cp.Offset)
		}
		for _, name := range newer {
			src, err := in.openAt(name, 0)
			if err != nil {
				log.Warn("cannot open a file rotated while stopped: its lines are lost", "file", path, "rotated", name, "err", err)
				continue
			}
			log.Info("file was rotated while stopped: reading a later rotated file", "file", path, "rotated", name)
			chain = append(chain, src)
		}
		if len(chain) > 0 {
			tf.src, tf.queue = chain[0], chain[1:]
		}
		in.rotations.Add(1 + uint64(len(newer)))
	case ok:
		off = min(cp.Offset, fi.Size())
	case atEnd:
		off = fi.Size()
	}
	cur, err := in.openAt(path, off)
	if err != nil {
		if tf.src != nil {
			tf.src.close()
		}
		for _, q := range tf.queue {
			q.close()
		}
		return nil, err
	}
	switch {
	case tf.src == nil:
		tf.src = cur
	case len(tf.queue) == 0:
		tf.next = cur
	default:
		tf.next, tf.queue = tf.queue[0], append(tf.queue[1:], cur)
	}
	log.Info("tailing file", "file", path, "offset", off)
	return tf, nil
}

// compressedExt are names of rotated files that are compressed: tail
// mode does not read them (see the rotated field's doc).
var compressedExt = []string{".gz", ".zst", ".bz2", ".xz", ".lz4", ".zip"}

// rotatedAfter finds, for path whose checkpoint is in the file with
// identity ident (no longer at path; cur is the identity of the file at
// path now), that file (old, "" when gone) and the files rotated after it
// (newer, oldest first): the names in path's directory matching the
// rotated pattern whose modification time is after old's. A file is
// written until it is rotated, so modification times give the rotation
// order whatever the naming scheme (app.log.1 newest, or dates).
// Compressed rotated files are skipped with a warning: their identity is
// not the file that was tailed, and tail mode reads plain text only.
func (in *Input) rotatedAfter(log *slog.Logger, path, ident, cur string) (old string, newer []string) {
	dir, base := filepath.Split(path)
	type cand struct {
		name  string
		mtime time.Time
	}
	var cands []cand
	var oldTime time.Time
	if in.rotated != "" {
		matches, _ := filepath.Glob(filepath.Join(dir, strings.ReplaceAll(in.rotated, "{name}", globEscape(base))))
		for _, m := range matches {
			if m == path {
				continue
			}
			fi, err := os.Stat(m)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			switch id := identity(fi); id {
			case ident:
				old, oldTime = m, fi.ModTime()
			case cur:
			default:
				cands = append(cands, cand{m, fi.ModTime()})
			}
		}
	}
	if old == "" {
		// Renamed outside the pattern: look in the whole directory, but
		// then which files came after it is unknown.
		return findByIdentity(filepath.Dir(path), ident), nil
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].mtime.Before(cands[j].mtime) })
	for _, c := range cands {
		if !c.mtime.After(oldTime) {
			continue
		}
		if hasAnySuffix(c.name, compressedExt) {
			log.Warn("a file rotated while stopped is compressed and is not read: lines in it that were not read before the stop are lost (rotate with delaycompress)", "file", path, "rotated", c.name)
			continue
		}
		newer = append(newer, c.name)
	}
	return old, newer
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

// globEscape quotes the glob metacharacters of a file name.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// findByIdentity returns a file of dir with identity ident, or "".
func findByIdentity(dir, ident string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err == nil && identity(fi) == ident {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

// pump emits up to budget lines of tf; it switches to the next file when
// the current one (a rotated file) is exhausted.
func (in *Input) pump(ctx context.Context, ic engine.InputContext, tf *tailFile, budget int) (int, error) {
	n := 0
	ts := time.Now().UnixNano()
	for n < budget && tf.src != nil {
		src := tf.src
		line, start, cut, err := src.lr.next()
		if err != nil {
			if err != io.EOF {
				return n, fmt.Errorf("cannot read %s at offset %d: %w", tf.path, src.lr.readPos(), err)
			}
			if tf.next == nil {
				return n, nil
			}
			// The rotated file is finished: its last line may lack a newline.
			if line, start := src.lr.pending(); line != nil {
				if err := in.emit(ctx, ic, tf.stream, tf.path, src.ident, line, start, src.lr.off, false, ts); err != nil {
					return n, err
				}
				n++
			}
			src.close()
			tf.src, tf.next = tf.next, nil
			if len(tf.queue) > 0 {
				tf.next, tf.queue = tf.queue[0], tf.queue[1:]
			}
			if tf.src.f == nil {
				tf.src = nil // removed with no successor: reopened by a scan
			}
			continue
		}
		if err := in.emit(ctx, ic, tf.stream, tf.path, src.ident, line, start, src.lr.off, cut, ts); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// checkTail looks for rotation and truncation of a file read to its end.
func (in *Input) checkTail(log *slog.Logger, tf *tailFile) {
	if tf.src == nil || tf.next != nil {
		return
	}
	src := tf.src
	fi, err := os.Stat(tf.path)
	if err == nil && (src.ident == "" || identity(fi) == src.ident) {
		if fi.Size() < src.lr.readPos() {
			log.Warn("file truncated: reading it from the start", "file", tf.path, "read", src.lr.readPos(), "size", fi.Size())
			in.truncations.Add(1)
			if _, err := src.f.Seek(0, io.SeekStart); err != nil {
				log.Error("cannot seek truncated file", "file", tf.path, "err", err)
				return
			}
			src.lr.reset(src.f, 0)
		}
		return
	}
	// Rotated or removed: the old file is read to its end (by pump) and
	// then replaced by the new one, if any.
	in.rotations.Add(1)
	if err == nil {
		nsrc, oerr := in.openAt(tf.path, 0)
		if oerr == nil {
			log.Info("file rotated: finishing the old file, then reading the new one", "file", tf.path)
			tf.next = nsrc
			return
		}
		err = oerr
	}
	log.Info("file removed or rotated with no successor yet: finishing the old file", "file", tf.path, "err", err)
	// Finish the old file now; the path is reopened by the next scan.
	tf.next = &source{lr: &lineReader{r: eofReader{}, buf: make([]byte, 1), max: 1}}
}

// eofReader is an empty file: the placeholder successor of a removed file.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// ---- historical mode ----

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// listHistorical expands the globs in order; each glob's matches are
// sorted by name or modification time.
func (in *Input) listHistorical() ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, g := range in.paths {
		matches, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", g, err)
		}
		if in.order == "mtime" {
			mt := map[string]time.Time{}
			for _, m := range matches {
				if fi, err := os.Stat(m); err == nil {
					mt[m] = fi.ModTime()
				}
			}
			sort.SliceStable(matches, func(i, j int) bool { return mt[matches[i]].Before(mt[matches[j]]) })
		}
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() && !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func (in *Input) runHistorical(ctx context.Context, ic engine.InputContext) error {
	log := ic.Log()
	files, err := in.listHistorical()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		log.Warn("historical replay: no file matches", "paths", in.paths)
		return nil
	}
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	log.Info("historical replay: starting", "files", len(files), "bytes", total)
	start := time.Now()
	var doneBytes int64
	lr := newLineReader(in.maxLine)
	for i, path := range files {
		n, size, err := in.replayFile(ctx, ic, log, lr, path, i, len(files), doneBytes, total, start)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		doneBytes += size
		_ = n
	}
	if err := ic.Flush(ctx); err != nil {
		return nil
	}
	el := time.Since(start)
	log.Info("historical replay: every file read; draining", "files", len(files), "lines", in.lines.Load(), "elapsed", el.Round(time.Millisecond),
		"lines_per_sec", int64(float64(in.lines.Load())/max(el.Seconds(), 1e-9)))
	return nil
}

// decompress wraps r by the configured or detected compression.
func (in *Input) decompress(path string, f *os.File, r io.Reader) (io.Reader, func(), error) {
	kind := in.comp
	if kind == "auto" {
		var magic [4]byte
		n, _ := f.ReadAt(magic[:], 0)
		switch {
		case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
			kind = "gzip"
		case n == 4 && magic == [4]byte{0x28, 0xb5, 0x2f, 0xfd}:
			kind = "zstd"
		default:
			kind = "none"
		}
	}
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read gzip file %s: %w", path, err)
		}
		return zr, func() { zr.Close() }, nil
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read zstd file %s: %w", path, err)
		}
		return zr, zr.Close, nil
	}
	return r, func() {}, nil
}

func (in *Input) replayFile(ctx context.Context, ic engine.InputContext, log *slog.Logger, lr *lineReader, path string, idx, nfiles int, doneBytes, total int64, start time.Time) (int64, int64, error) {
	s, err := ic.Stream(path)
	if err != nil {
		return 0, 0, fmt.Errorf("open stream for %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("historical replay: cannot open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	var off int64
	if cp, ok := s.Resume(); ok {
		if cp.Token == eofToken {
			log.Info("historical replay: file already done, skipping", "file", path, "n", idx+1, "of", nfiles)
			return 0, fi.Size(), nil
		}
		off = cp.Offset
	}
	cr := &countingReader{r: f}
	r, closer, err := in.decompress(path, f, cr)
	if err != nil {
		return 0, 0, err
	}
	defer closer()
	if off > 0 {
		if r == io.Reader(cr) {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return 0, 0, fmt.Errorf("seek %s to %d: %w", path, off, err)
			}
		} else if _, err := io.CopyN(io.Discard, r, off); err != nil {
			return 0, 0, fmt.Errorf("cannot skip to checkpoint offset %d in %s: %w", off, path, err)
		}
		log.Info("historical replay: resuming file", "file", path, "offset", off)
	}
	log.Info("historical replay: reading file", "file", path, "n", idx+1, "of", nfiles, "bytes", fi.Size())
	lr.reset(r, off)
	var lines int64
	lastLog := time.Now()
	ts := time.Now().UnixNano()
	for {
		line, lstart, cut, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return lines, 0, fmt.Errorf("cannot read %s at offset %d: %w", path, lr.readPos(), err)
		}
		if err := in.emit(ctx, ic, s, path, "", line, lstart, lr.off, cut, ts); err != nil {
			return lines, 0, err
		}
		lines++
		if lines&4095 == 0 {
			now := time.Now()
			ts = now.UnixNano()
			if in.progress > 0 && now.Sub(lastLog) >= in.progress {
				lastLog = now
				read := doneBytes + cr.n.Load()
				el := now.Sub(start).Seconds()
				log.Info("historical replay: progress", "file", path, "n", idx+1, "of", nfiles,
					"percent", fmt.Sprintf("%.1f", 100*float64(read)/float64(max(total, 1))),
					"lines", in.lines.Load(), "lines_per_sec", int64(float64(in.lines.Load())/max(el, 1e-9)))
			}
		}
	}
	if line, lstart := lr.pending(); line != nil {
		if err := in.emit(ctx, ic, s, path, "", line, lstart, lr.off, false, ts); err != nil {
			return lines, 0, err
		}
		lines++
	}
	if err := ic.Mark(ctx, s, pack.Pos{Offset: lr.off, Token: []byte(eofToken)}); err != nil {
		return lines, 0, err
	}
	log.Info("historical replay: file done", "file", path, "lines", lines, "n", idx+1, "of", nfiles)
	return lines, fi.Size(), nil
}
