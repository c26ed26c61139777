package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Input reads lines.
type Input struct {
	source  string // stdin, file, command
	path    string
	command string
	maxLine int
	stdin   io.Reader
}

func newInput(c *engine.Conf) (engine.Input, error) {
	in := &Input{source: c.String("source"), path: c.String("path"), command: c.String("command"), maxLine: int(c.Size("max_line")), stdin: os.Stdin}
	switch in.source {
	case "file":
		if in.path == "" {
			return nil, c.Errorf("path", "source file needs a path")
		}
	case "command":
		if in.command == "" {
			return nil, c.Errorf("command", "source command needs a command")
		}
	}
	return in, nil
}

// Run implements engine.Input.
func (in *Input) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	var r io.Reader
	var offset int64
	var wait func() error
	switch in.source {
	case "stdin":
		r = in.stdin
	case "file":
		f, err := os.Open(in.path)
		if err != nil {
			return fmt.Errorf("stream input: %w", err)
		}
		defer f.Close()
		if cp, ok := s.Resume(); ok && cp.Offset > 0 {
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if cp.Offset > st.Size() {
				return fmt.Errorf("stream input %s: checkpoint offset %d is past the end of the file (%d bytes): was it truncated or replaced?", in.path, cp.Offset, st.Size())
			}
			if _, err := f.Seek(cp.Offset, io.SeekStart); err != nil {
				return err
			}
			offset = cp.Offset
		}
		r = f
	case "command":
		cmd := exec.CommandContext(ctx, "sh", "-c", in.command)
		// Stop the whole process group (the shell and what it started) and
		// close the pipe soon after, so a stop never waits on a child that
		// keeps stdout open.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = 2 * time.Second
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("stream input: start %q: %w", in.command, err)
		}
		r = out
		wait = cmd.Wait
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			if len(long) > in.maxLine {
				return fmt.Errorf("stream input: line at offset %d is longer than max_line %d", offset, in.maxLine)
			}
			continue
		}
		if len(long) > 0 {
			long = append(long, line...)
			line = long
		}
		if len(line) > 0 {
			offset += int64(len(line))
			p, perr := ic.NewPacket(ctx)
			if perr != nil {
				return nil
			}
			body := line
			if body[len(body)-1] == '\n' {
				body = body[:len(body)-1]
				if len(body) > 0 && body[len(body)-1] == '\r' {
					body = body[:len(body)-1]
				}
			}
			p.Payload = append(p.Payload[:0], body...)
			p.Pos.Offset = offset
			p.Flags |= pack.FlagBoundary
			if eerr := ic.Emit(ctx, s, p); eerr != nil {
				return nil
			}
			long = long[:0]
		}
		if err == io.EOF {
			if ferr := ic.Flush(ctx); ferr != nil {
				return ferr
			}
			if wait != nil {
				if werr := wait(); werr != nil && ctx.Err() == nil {
					return fmt.Errorf("stream input: command %q: %w", in.command, werr)
				}
			}
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("stream input: read at offset %d: %w", offset, err)
		}
		if br.Buffered() == 0 {
			// About to block on the source: hand on what we hold.
			if ferr := ic.Flush(ctx); ferr != nil {
				return ferr
			}
		}
	}
}
