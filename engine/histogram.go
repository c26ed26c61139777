package engine

import "github.com/dbus-project/dbus/engine/internal/histogram"

// HistogramSnapshot is a histogram read at one moment (NodeSnapshot's
// write, batch and ack histograms). The histograms themselves live in
// engine/internal/histogram.
type HistogramSnapshot = histogram.Snapshot
