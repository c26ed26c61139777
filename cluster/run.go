package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
)

// RunMember runs dbusd in cluster mode: cfg.Sections["cluster"] holds the
// cluster section. It joins the cluster (clear errors for an unreachable
// ZooKeeper or a duplicate member name), runs the non-distributed inputs
// of cfg in one local engine as a single dbusd would, and runs every
// resource granted to this member in its own engine. The newest config
// pushed to the cluster (dbc config push), when there is one, replaces
// cfg's pipeline (its cluster section stays this member's own); a new
// push is applied while running, restarting only the resources (and
// local inputs) whose config changed. It returns when ctx
// ends and everything was drained, or when the local pipeline fails.
func RunMember(ctx context.Context, cfg *engine.Config, reg *engine.Registry, log *slog.Logger) error {
	return RunMemberReload(ctx, cfg, reg, log, nil)
}

// RunMemberReload is RunMember that also re-reads cfg.File and applies
// its pipeline (see Member.ReloadFile) on every receive from reload
// (dbusd: SIGHUP); a config that does not parse or build is logged and
// changes nothing.
func RunMemberReload(ctx context.Context, cfg *engine.Config, reg *engine.Registry, log *slog.Logger, reload <-chan struct{}) error {
	return RunMemberWith(ctx, cfg, reg, log, RunOptions{Reload: reload})
}

// RunOptions configure RunMemberWith.
type RunOptions struct {
	// Reload: see RunMemberReload.
	Reload <-chan struct{}
	// AdminListen is dbusd -admin: the admin API's address, overriding
	// admin.listen.
	AdminListen string
	// Version is reported by the admin API.
	Version string
	// OnAdmin, when set, is called with the admin API's address once it
	// listens (tests).
	OnAdmin func(addr string)
}

// RunMemberWith is RunMemberReload with the member's admin API, turned
// on as on a single dbusd: opts.AdminListen (dbusd -admin), else the
// config's admin: section (admin.listen), with the same security
// (token, TLS, allowed hosts...). It serves the member's state
// (/api/v1/cluster), every resource engine under /api/v1/resources/{id}/,
// the live page and /metrics with the dbus_cluster_* series (engine/admin
// member.go). The member advertises cluster.admin, else the address the
// API listens on; cluster.admin without a listener is warned about (it
// is not listened on implicitly: it may be a NAT or proxy address, and
// off loopback the API needs a token).
func RunMemberWith(ctx context.Context, cfg *engine.Config, reg *engine.Registry, log *slog.Logger, opts RunOptions) error {
	reload := opts.Reload
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
	var localSup *engine.Supervisor
	if local != nil {
		if localSup, err = engine.NewSupervisor(local, engine.Options{Registry: reg, Logger: log}); err != nil {
			return err
		}
	}
	// A pushed cluster config also reloads the local pipeline, as a diff
	// (unchanged local inputs keep running). Its plugins were already
	// built once by WithConfig; the reload itself (which drains what
	// changed) runs beside the member loop so as not to hold it up.
	localCfgs := make(chan *engine.Config, 1)
	onConfig := func(next Runner) error {
		er, ok := next.(*EngineRunner)
		if !ok {
			return nil
		}
		nl, err := er.LocalConfig()
		if err != nil {
			return err
		}
		switch {
		case nl == nil && localSup == nil:
			return nil
		case nl == nil || localSup == nil:
			return errors.New("the config adds or removes every local (non-distributed) input: restart the members to apply it")
		}
		select { // only the newest pending one matters
		case <-localCfgs:
		default:
		}
		localCfgs <- nl
		return nil
	}
	view := NewMemberAdmin(cc, runner)
	srv, err := admin.Start(ctx, admin.Options{Supervisor: localSup, Member: view, Registry: reg, Logger: log,
		Version: opts.Version, Section: cfg.Sections["admin"], ListenOverride: opts.AdminListen})
	if err != nil {
		return fmt.Errorf("cluster %s: member %s: %w", cc.Name, cc.Member, err)
	}
	defer srv.Close()
	if srv != nil {
		if cc.Admin == "" {
			cc.Admin = srv.Addr()
		}
		if opts.OnAdmin != nil {
			opts.OnAdmin(srv.Addr())
		}
	} else if cc.Admin != "" {
		log.Warn("cluster.admin is advertised but no admin API listens: start dbusd with -admin ADDR or add an admin: section", "admin", cc.Admin)
	}
	m, err := Join(ctx, cc, Options{Runner: runner, Logger: log, Credentials: creds, OnConfig: onConfig})
	if err != nil {
		return err
	}
	view.SetMember(m)
	m.warnUnusedInputs(cfg)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var localErr error
	if localSup != nil {
		wg.Add(2)
		go func() {
			defer wg.Done()
			localErr = localSup.Run(ctx)
			if localErr != nil {
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case nl := <-localCfgs:
					if gen, err := localSup.Reload(nl); err != nil {
						log.Error("local pipeline not reloaded with the pushed cluster config", "err", err)
					} else {
						log.Info("local pipeline reloaded with the pushed cluster config", "generation", gen)
					}
				}
			}
		}()
	}
	if reload != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-reload:
					data, err := os.ReadFile(cfg.File)
					if err != nil {
						log.Error("config file not reloaded", "config", cfg.File, "err", err)
						continue
					}
					log.Info("reloading the config file", "config", cfg.File)
					m.ReloadFile(data)
				}
			}
		}()
	}
	merr := m.Run(ctx)
	cancel()
	wg.Wait()
	return errors.Join(merr, localErr)
}
