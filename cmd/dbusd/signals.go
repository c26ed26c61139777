package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// signalContext returns a context cancelled by the first SIGINT or
// SIGTERM: the orderly shutdown (stop inputs, drain, flush, commit). A
// second signal during the drain calls force (a hard stop: what is acked
// is committed, the rest is read again after a restart); a third exits at
// once with status 130, committing nothing more (at-least-once still
// holds: the last committed checkpoints are behind everything unacked).
// stop releases the signal handler.
func signalContext(parent context.Context, log *slog.Logger, force func()) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				n++
				switch n {
				case 1:
					log.Info("signal: orderly shutdown (send it again to stop hard)", "signal", sig.String())
					cancel()
				case 2:
					log.Warn("second signal: stopping hard; packets not acked will be read again after restart (a third exits at once)", "signal", sig.String())
					if force != nil {
						force()
					}
				default:
					log.Error("third signal: exiting now", "signal", sig.String())
					os.Exit(130)
				}
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}
