package file

import (
	"time"

	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

// Register adds FileInput to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "FileInput", Kind: engine.KindInput, Distributed: true,
		Summary: "Tails files by glob (rotation, truncation, exact resume from per-file checkpoints), or replays archived files (plain, gzip, zstd) once in order (mode historical).",
		Fields: []engine.Field{
			{Name: "paths", Type: engine.TypeStrings, Required: true, Path: true, Doc: "Files or globs. Historical mode reads them in the order given, each glob's matches sorted by `order`."},
			{Name: "mode", Type: engine.TypeString, Default: "tail", Enum: []string{"tail", "historical"}, Doc: "tail: follow the files forever; historical: read them once, then finish."},
			{Name: "start", Type: engine.TypeString, Default: "end", Enum: []string{"beginning", "end"}, Doc: "Where to start in files present at startup that have no checkpoint (tail mode). Files appearing later are read from the beginning."},
			{Name: "poll", Type: engine.TypeDuration, Default: 250 * time.Millisecond, HasRange: true, Min: float64(time.Millisecond), Max: float64(time.Minute), Doc: "How often files at their end are checked for new data, rotation and truncation."},
			{Name: "rescan", Type: engine.TypeDuration, Default: 5 * time.Second, HasRange: true, Min: 0, Max: float64(time.Hour), Doc: "How often the globs are expanded again to find new files (tail mode)."},
			{Name: "max_line", Type: engine.TypeSize, Default: int64(1 << 20), HasRange: true, Min: 16, Max: 64 << 20, Doc: "Longest line kept; longer lines are cut (attribute truncated=true)."},
			{Name: "order", Type: engine.TypeString, Default: "name", Enum: []string{"name", "mtime"}, Doc: "Order of each glob's matches in historical mode."},
			{Name: "compression", Type: engine.TypeString, Default: "auto", Enum: []string{"auto", "none", "gzip", "zstd"}, Doc: "Compression of historical files; auto detects gzip and zstd by their magic bytes."},
			{Name: "rotated", Type: engine.TypeString, Default: "{name}.*", Doc: "Glob of a tailed file's rotated names in its directory, starting with {name} (the file's name). When a file was rotated while dbusd was stopped, the file holding the checkpoint is found by identity (device and inode) among them and finished, then every file matching this pattern with a later modification time is read, oldest first, then the current file. Compressed rotated files (.gz, .zst, .bz2, .xz) are not read (logged): rotate with delaycompress. Empty: look only for the checkpointed file, anywhere in the directory."},
			{Name: "progress", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "Interval of progress log lines in historical mode (0: none)."},
		},
		NewInput: newInput,
	})
}
