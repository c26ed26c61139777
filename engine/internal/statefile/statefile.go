// Package statefile holds the engine's on-disk state: a file rewritten
// atomically (WriteAtomic: temporary file, fsync, rename, fsync of the
// directory) and the keyed JSON document the file checkpoint store keeps
// in it (Doc). It sits under engine/internal so that plugins cannot depend
// on it; plugins write their state with engine.WriteFileAtomic, which is
// WriteAtomic.
//
// WriteAtomic is safe from any goroutine for different paths; callers
// serialise writes to one path (the engine's FileStore holds its mutex).
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteAtomic writes data to path through a temporary file in the same
// directory, fsync and rename, then fsyncs the directory: after a crash the
// file holds either the old or the new content, never a mix.
func WriteAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return werr
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Version is the format version Save writes.
const Version = 1

// doc is the file's JSON form.
type doc[V any] struct {
	Version     int          `json:"version"`
	Checkpoints map[string]V `json:"checkpoints"`
}

// Load reads the entries of the document at path: none when the file does
// not exist; an error naming the file when it cannot be read or parsed.
func Load[V any](path string) (map[string]V, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return map[string]V{}, nil
	case err != nil:
		return nil, fmt.Errorf("checkpoint file %s: %w", path, err)
	}
	var d doc[V]
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("checkpoint file %s is corrupt (move it away to start over, losing positions): %w", path, err)
	}
	if d.Checkpoints == nil {
		d.Checkpoints = map[string]V{}
	}
	return d.Checkpoints, nil
}

// Save writes entries as the document at path, atomically.
func Save[V any](path string, entries map[string]V) error {
	data, err := json.MarshalIndent(doc[V]{Version: Version, Checkpoints: entries}, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteAtomic(path, data); err != nil {
		return fmt.Errorf("save checkpoints to %s: %w", path, err)
	}
	return nil
}
