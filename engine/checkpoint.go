package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/dbus-project/dbus/engine/internal/statefile"
)

// ErrFenced is returned by a CheckpointStore when this process no longer
// owns the position it tried to write (cluster mode: another member holds
// a newer epoch). The engine stops the affected input.
var ErrFenced = errors.New("checkpoint write fenced: ownership lost")

// CheckpointStore persists stream positions. Keys are "input/stream".
// Implementations must be safe for concurrent use.
type CheckpointStore interface {
	// Load returns the saved checkpoint of key.
	Load(key string) (Checkpoint, bool, error)
	// Save durably stores every entry of cps (all or none where the store
	// can do that).
	Save(cps map[string]Checkpoint) error
	Close() error
}

// MemoryStore keeps checkpoints in memory (dry runs, tests).
type MemoryStore struct {
	mu  sync.Mutex
	cps map[string]Checkpoint
	// Saves counts Save calls.
	saves int
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{cps: map[string]Checkpoint{}} }

// Load implements CheckpointStore.
func (m *MemoryStore) Load(key string) (Checkpoint, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.cps[key]
	return cp, ok, nil
}

// Save implements CheckpointStore.
func (m *MemoryStore) Save(cps map[string]Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range cps {
		m.cps[k] = v
	}
	m.saves++
	return nil
}

// Close implements CheckpointStore.
func (m *MemoryStore) Close() error { return nil }

// All returns a copy of every checkpoint.
func (m *MemoryStore) All() map[string]Checkpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Checkpoint, len(m.cps))
	for k, v := range m.cps {
		out[k] = v
	}
	return out
}

// FileStore keeps every checkpoint in one JSON file, rewritten atomically
// on each Save: write a temporary file, fsync it, rename it over the old
// one, fsync the directory. A crash leaves either the old or the new file.
// The file format and the atomic write are engine/internal/statefile.
type FileStore struct {
	mu   sync.Mutex
	path string
	cps  map[string]Checkpoint
}

// OpenFileStore opens (creating dir if needed) the store file
// dir/checkpoints.json.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint dir %s: %w", dir, err)
	}
	if err := CheckWritableDir(dir); err != nil {
		return nil, fmt.Errorf("checkpoint dir: %w", err)
	}
	fs := &FileStore{path: filepath.Join(dir, "checkpoints.json")}
	cps, err := statefile.Load[Checkpoint](fs.path)
	if err != nil {
		return nil, err
	}
	fs.cps = cps
	return fs, nil
}

// Path returns the file's path.
func (f *FileStore) Path() string { return f.path }

// CheckWritablePaths checks, without creating anything, that the user
// running this process can write where cfg says it will: the checkpoint
// directory and every path field marked Field.Writes (the directory of a
// file, or the directory itself). Errors name file:line, plugin and key.
func CheckWritablePaths(cfg *Config) []error {
	var errs []error
	if dir := cfg.Engine.CheckpointDir; dir != "" {
		if err := CheckWritableDir(dir); err != nil {
			errs = append(errs, &ConfigError{File: cfg.File, Msg: "engine.checkpoint_dir: " + err.Error()})
		}
	}
	for _, pc := range cfg.Plugins {
		if pc.Spec == nil || pc.Conf == nil {
			continue
		}
		for i := range pc.Spec.Fields {
			f := &pc.Spec.Fields[i]
			if f.Writes == WritesNothing || f.Type != TypeString {
				continue
			}
			p := pc.Conf.String(f.Name)
			if p == "" || p == "-" {
				continue
			}
			dir := p
			if f.Writes == WritesFile {
				dir = filepath.Dir(p)
			}
			if err := CheckWritableDir(dir); err != nil {
				errs = append(errs, pc.Conf.Errorf(f.Name, "%s: %v", p, err))
			}
		}
	}
	return errs
}

// CheckWritableDir reports whether files can be created in dir, or, when
// dir does not exist yet, in the nearest existing ancestor (where
// OpenFileStore would create it). It creates and removes a probe file and
// changes nothing else: dbusd -t uses it for checkpoint_dir, so that a
// path the service user cannot write fails the check, not the run.
func CheckWritableDir(dir string) error {
	d := filepath.Clean(dir)
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s: %s is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", dir, err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("%s: no existing ancestor", dir)
		}
		d = parent
	}
	f, err := os.CreateTemp(d, ".dbus-write-probe-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable by this user (uid %d): %w", d, os.Getuid(), err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Load implements CheckpointStore.
func (f *FileStore) Load(key string) (Checkpoint, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp, ok := f.cps[key]
	return cp, ok, nil
}

// Save implements CheckpointStore.
func (f *FileStore) Save(cps map[string]Checkpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := make(map[string]Checkpoint, len(f.cps)+len(cps))
	for k, v := range f.cps {
		next[k] = v
	}
	for k, v := range cps {
		next[k] = v
	}
	if err := statefile.Save(f.path, next); err != nil {
		return err
	}
	f.cps = next
	return nil
}

// Close implements CheckpointStore.
func (f *FileStore) Close() error { return nil }

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsync and rename, then fsyncs the directory: after a crash the
// file holds either the old or the new content, never a mix. Every state
// file of the engine and its plugins (checkpoints, schema history, filter
// state) is written with it.
func WriteFileAtomic(path string, data []byte) error { return statefile.WriteAtomic(path, data) }
