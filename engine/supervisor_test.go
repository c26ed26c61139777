package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
)

const reloadBase = `
engine: {checkpoint_interval: 5ms}
inputs:
  - {name: gen, class: MockInput, payload: 24, rate: 100000}
  - {name: other, class: MockInput, payload: 24, rate: 20000}
filters:
  - {name: f, class: MockFilter, mode: modify, suffix: "%s", match: gen}
outputs:
  - {name: out, class: Rec, match: f}
  - {name: out2, class: Rec2, match: other}
`

func TestEngineReloadAppliesDiffAndLosesNothing(t *testing.T) {
	rec, rec2 := mock.NewRecorder(), mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec, "Rec2": rec2})
	store := engine.NewMemoryStore()
	parse := func(y string) *engine.Config {
		cfg, err := engine.Parse("r.yaml", []byte(y), reg)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	sup, err := engine.NewSupervisor(parse(fmt.Sprintf(reloadBase, "a")), engine.Options{Registry: reg, Store: store, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	// Each generation delivers before the next reload: wait until the
	// newest payload carries its suffix.
	delivered := func(suffix string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() bool {
			ps := rec.Payloads()
			return len(ps) > 0 && strings.HasSuffix(string(ps[len(ps)-1]), suffix)
		}, "no packet with suffix %q delivered", suffix)
	}
	delivered("a")

	otherEngine := func() *engine.Engine {
		for _, e := range sup.Engines() {
			for _, p := range e.Config().Plugins {
				if p.Name == "other" {
					return e
				}
			}
		}
		t.Fatal("no engine runs other")
		return nil
	}
	untouched := otherEngine()
	for i, suffix := range []string{"b", "c", "d"} {
		gen, err := sup.Reload(parse(fmt.Sprintf(reloadBase, suffix)))
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if gen != int64(i+2) {
			t.Fatalf("generation %d, want %d", gen, i+2)
		}
		delivered(suffix)
	}
	if otherEngine() != untouched {
		t.Fatalf("the unchanged component was restarted")
	}
	// A reload that does not build changes nothing.
	bad := parse(strings.Replace(fmt.Sprintf(reloadBase, "e"), "mode: modify", "mode: emit, emit: 0", 1))
	if _, err := sup.Reload(bad); err == nil || !strings.Contains(err.Error(), "pipeline unchanged") {
		t.Fatalf("bad reload: %v", err)
	}
	if sup.Generation() != 4 {
		t.Fatalf("generation moved on a failed reload: %d", sup.Generation())
	}
	n := rec.Len()
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.Len() > n }, "the pipeline stopped after a failed reload")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cp, _, _ := store.Load("gen")
	checkSeqs(t, rec.Payloads(), "0", cp.Offset, false)
	if int64(rec.Len()) != cp.Offset {
		t.Fatalf("delivered %d, checkpoint %d: reloads lost or duplicated packets", rec.Len(), cp.Offset)
	}
	// Each generation's suffix appears, in order.
	var suffixes []byte
	for _, p := range rec.Payloads() {
		s := p[len(p)-1]
		if len(suffixes) == 0 || suffixes[len(suffixes)-1] != s {
			suffixes = append(suffixes, s)
		}
	}
	if string(suffixes) != "abcd" {
		t.Fatalf("suffix sequence %q, want abcd", suffixes)
	}
	cp2, _, _ := store.Load("other")
	if int64(rec2.Len()) != cp2.Offset {
		t.Fatalf("other: delivered %d, checkpoint %d", rec2.Len(), cp2.Offset)
	}
}

func TestEngineReloadConcurrentIsRejected(t *testing.T) {
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": mock.NewRecorder(), "Rec2": mock.NewRecorder()})
	cfg, err := engine.Parse("r.yaml", []byte(fmt.Sprintf(reloadBase, "a")), reg)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			c, _ := engine.Parse("r.yaml", []byte(fmt.Sprintf(reloadBase, fmt.Sprint(i))), reg)
			_, err := sup.Reload(c)
			errs <- err
		}(i)
	}
	applied, rejected := 0, 0
	for i := 0; i < 8; i++ {
		err := <-errs
		switch {
		case err == nil:
			applied++
		case errors.Is(err, engine.ErrReloadInProgress):
			rejected++
		default:
			t.Fatalf("reload: %v", err)
		}
	}
	if applied == 0 || int64(applied+1) != sup.Generation() {
		t.Fatalf("applied %d, rejected %d, generation %d", applied, rejected, sup.Generation())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEngineTapSamplesWithoutSlowingPipeline(t *testing.T) {
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": mock.NewRecorder(), "Rec2": mock.NewRecorder()})
	cfg, err := engine.Parse("r.yaml", []byte(fmt.Sprintf(reloadBase, "z")), reg)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	if _, err := sup.Tap(ctx, "nope", engine.TapOptions{Max: 1}); err == nil {
		t.Fatalf("tap of an unknown node accepted")
	}
	if _, err := sup.Tap(ctx, "f", engine.TapOptions{Max: engine.MaxTapPackets + 1}); err == nil {
		t.Fatalf("oversized tap accepted")
	}
	ch, err := sup.Tap(ctx, "f", engine.TapOptions{Max: 5, Every: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sup.Tap(ctx, "f", engine.TapOptions{Max: 1}); err == nil {
		t.Fatalf("second tap on the same node accepted")
	}
	var got []engine.TapRecord
	for r := range ch {
		got = append(got, r)
	}
	if len(got) != 5 {
		t.Fatalf("tap delivered %d records, want 5", len(got))
	}
	for _, r := range got {
		if r.Node != "f" || !strings.HasSuffix(r.Payload, "z") {
			t.Fatalf("tap record %+v", r)
		}
	}
	// The tap released the node: a new one is accepted.
	ch2, err := sup.Tap(ctx, "out", engine.TapOptions{Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	<-ch2
	cancel()
	<-done
}

// TestEngineReloadLogsSayReload: a component that a reload replaces says
// so in its log; only a real shutdown logs "shutdown".
func TestEngineReloadLogsSayReload(t *testing.T) {
	rec, rec2 := mock.NewRecorder(), mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec, "Rec2": rec2})
	parse := func(y string) *engine.Config {
		cfg, err := engine.Parse("r.yaml", []byte(y), reg)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var mu sync.Mutex
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	sup, err := engine.NewSupervisor(parse(fmt.Sprintf(reloadBase, "a")), engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.Len() > 0 }, "nothing delivered")
	if _, err := sup.Reload(parse(fmt.Sprintf(reloadBase, "b"))); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	afterReload := logs.String()
	mu.Unlock()
	if !strings.Contains(afterReload, "reload: draining the replaced component") || !strings.Contains(afterReload, "reload: replaced component stopped") {
		t.Fatalf("the replaced component's log does not say reload:\n%s", afterReload)
	}
	if strings.Contains(afterReload, "shutdown") {
		t.Fatalf("a reload logged like a daemon shutdown:\n%s", afterReload)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "shutdown complete") {
		t.Fatalf("the real shutdown is not logged as one:\n%s", logs.String())
	}
}
