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
