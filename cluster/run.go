package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/dbus-project/dbus/engine"
)

// RunMember runs dbusd in cluster mode: cfg.Sections["cluster"] holds the
// cluster section. It joins the cluster (clear errors for an unreachable
// ZooKeeper or a duplicate member name), runs the non-distributed inputs
// of cfg in one local engine as a single dbusd would, and runs every
// resource granted to this member in its own engine. It returns when ctx
// ends and everything was drained, or when the local pipeline fails.
func RunMember(ctx context.Context, cfg *engine.Config, reg *engine.Registry, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	cc, err := ParseConfig(cfg.File, cfg.Sections["cluster"])
	if err != nil {
		return err
	}
	if cc.LocalDir == "" {
		cc.LocalDir = cfg.Engine.CheckpointDir
		if cc.LocalDir == "" {
			cc.LocalDir = localDirDefault()
		}
	}
	creds, err := LoadCredentials(cc.CredentialsFile)
	if err != nil {
		return err
	}
	runner := NewEngineRunner(cfg, reg, creds, log)
	if len(runner.DistributedInputs()) == 0 {
		return fmt.Errorf("%s: cluster mode needs at least one distributed input (an input whose plugin accepts resources)", cfg.File)
	}
	local, err := runner.LocalConfig()
	if err != nil {
		return err
	}
	var localEngine *engine.Engine
	if local != nil {
		if localEngine, err = engine.New(local, engine.Options{Registry: reg, Logger: log}); err != nil {
			return err
		}
	}
	m, err := Join(ctx, cc, Options{Runner: runner, Logger: log, Credentials: creds})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var localErr error
	if localEngine != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			localErr = localEngine.Run(ctx)
			if localErr != nil {
				cancel()
			}
		}()
	}
	merr := m.Run(ctx)
	cancel()
	wg.Wait()
	return errors.Join(merr, localErr)
}
