package engine

import (
	"github.com/dbus-project/dbus/pack"
)

// Stream is one ordered sub-source of an input (a Kafka partition, a file,
// a binlog): it has its own in-flight window and checkpoint. Streams are
// opened with InputContext.Stream and belong to that input's goroutine.
type Stream struct {
	id     string
	key    string
	win    *pack.Window
	stored Checkpoint
	has    bool
	dirty  bool // sequences assigned since the last Publish

	// Guarded by the engine's commit mutex.
	savedGen uint64
	closed   bool
	tok      []byte
}

// ID returns the stream's id.
func (s *Stream) ID() string { return s.id }

// Key returns the checkpoint key "input/stream".
func (s *Stream) Key() string { return s.key }

// Resume returns the position to resume reading from: the newest acked
// checkpoint of this run if there is one, else the stored checkpoint, and
// false when the stream has no checkpoint at all (start as configured).
func (s *Stream) Resume() (Checkpoint, bool) {
	if off, tok, _, ok := s.win.Checkpoint(nil); ok {
		return Checkpoint{Offset: off, Token: string(tok)}, true
	}
	return s.stored, s.has
}

// InFlight returns the number of packets emitted on s and not yet done.
func (s *Stream) InFlight() int {
	s.win.Advance()
	return s.win.InFlight()
}

// Window exposes the stream's in-flight window (read-only use: metrics).
func (s *Stream) Window() *pack.Window { return s.win }
