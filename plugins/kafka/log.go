package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clientLogger bridges franz-go's logger to slog at a configured level.
type clientLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
}

var clientLogLevels = map[string]kgo.LogLevel{
	"none": kgo.LogLevelNone, "error": kgo.LogLevelError, "warn": kgo.LogLevelWarn,
	"info": kgo.LogLevelInfo, "debug": kgo.LogLevelDebug,
}

func (c *clientLogger) Level() kgo.LogLevel { return c.level }

func (c *clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelInfo && msg == "flushing" {
		// KafkaOutput flushes to stop lingering whenever the engine's
		// in-flight slots are all taken: routine, not worth an info line.
		if c.level < kgo.LogLevelDebug {
			return
		}
		level = kgo.LogLevelDebug
	}
	sl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	}
	c.l.Log(context.Background(), sl, msg, keyvals...)
}
