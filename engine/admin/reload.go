package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/dbus-project/dbus/engine"
	"gopkg.in/yaml.v3"
)

// MaxReloadBody bounds a POST /api/v1/reload body.
const MaxReloadBody = 8 << 20

// reloadAnswerBudget is the write deadline of a reload's answer: a reload
// drains replaced components for up to engine.shutdown_timeout.
const reloadAnswerBudget = 10 * time.Minute

// errBusy is returned when a reload is already running.
var errBusy = fmt.Errorf("%w: retry when it completes", engine.ErrReloadInProgress)

// reloadError is a config that failed validation or construction.
type reloadError struct{ err error }

func (e *reloadError) Error() string { return e.err.Error() }
func (e *reloadError) Unwrap() error { return e.err }

// ReloadFile re-reads the config file and applies it as a diff (what
// SIGHUP does). source names the trigger in logs and status ("signal",
// "api", "watch").
func (s *Server) ReloadFile(source string) (ReloadResult, error) {
	if s.path == "" {
		return ReloadResult{}, errors.New("no config file to reload: dbusd runs its embedded config")
	}
	if !s.reloading.CompareAndSwap(false, true) {
		s.log.Warn("reload skipped: another reload is in progress", "source", source, "config", s.path)
		return ReloadResult{Generation: s.b.Generation()}, errBusy
	}
	defer s.reloading.Store(false)
	data, err := os.ReadFile(s.path)
	if err != nil {
		s.log.Error("reload rejected: cannot read config, pipeline unchanged", "source", source, "config", s.path, "err", err)
		res := s.record(ReloadResult{Source: source, File: s.path, PreviousGeneration: s.b.Generation(),
			Generation: s.b.Generation(), Error: err.Error()})
		return res, &reloadError{fmt.Errorf("cannot read config: %w", err)}
	}
	res, err := s.apply(source, s.path, data, engine.ParseOptions{}, nil)
	if !errors.Is(err, engine.ErrReloadInProgress) {
		s.fileMu.Lock()
		s.fileHash = hashBytes(data)
		s.fileMu.Unlock()
	}
	return res, err
}

// reloadBytes applies a config given in a request body.
func (s *Server) reloadBytes(source, name string, data []byte) (ReloadResult, error) {
	if !s.reloading.CompareAndSwap(false, true) {
		return ReloadResult{Generation: s.b.Generation()}, errBusy
	}
	defer s.reloading.Store(false)
	return s.apply(source, name, data, engine.ParseOptions{Reference: s.fileReference}, s.checkPosted)
}

// fileReference allows in a posted config only the ${env:} and ${file:}
// references the config file (or, without one, the running config)
// already uses: a reload over the API must not read other files or
// variables of the daemon into a pipeline (and send them elsewhere).
func (s *Server) fileReference(ref string) error {
	var data []byte
	if s.path != "" {
		data, _ = os.ReadFile(s.path)
	} else if cfg := s.b.Config(); cfg != nil {
		data = cfg.Raw
	}
	if engine.References(data)[ref] {
		return nil
	}
	return errors.New("a config posted to the admin API may use only the ${env:} and ${file:} references the config file uses: add it to the file and reload the file (SIGHUP, or POST /api/v1/reload without a body)")
}

// apply parses data, checks it with check (nil: none) and hands it to
// the supervisor. The caller holds s.reloading.
func (s *Server) apply(source, file string, data []byte, opts engine.ParseOptions, check func(*engine.Config) error) (ReloadResult, error) {
	prev := s.b.Generation()
	res := ReloadResult{Source: source, File: file, PreviousGeneration: prev, Generation: prev}
	cfg, err := engine.ParseWith(file, data, s.reg, opts)
	if err == nil && check != nil {
		err = check(cfg)
	}
	if err != nil {
		res.Error = err.Error()
		res = s.record(res)
		s.log.Error("reload rejected: config invalid, pipeline unchanged", "source", source, "config", file, "err", err)
		return res, &reloadError{err}
	}
	if old := s.b.Config(); old != nil && !sameNode(old.Sections["admin"], cfg.Sections["admin"]) {
		res.Warnings = append(res.Warnings, "the admin: section changed; admin settings apply at the next restart")
	}
	var paused []string
	for _, st := range s.b.Stats() {
		if st.Paused {
			paused = append(paused, st.Name)
		}
	}
	gen, err := s.b.Reload(cfg)
	res.Generation = gen
	switch {
	case errors.Is(err, engine.ErrReloadInProgress):
		return res, errBusy
	case gen == prev:
		// Nothing applied: it did not build.
		res.Error = err.Error()
		res = s.record(res)
		s.log.Error("reload rejected, pipeline unchanged", "source", source, "config", file, "generation", gen, "err", err)
		return res, &reloadError{err}
	case err != nil:
		// Applied, but draining a replaced component reported errors.
		res.Warnings = append(res.Warnings, err.Error())
	}
	res.Applied = true
	// A replaced component starts unpaused: pause again what the operator paused.
	for _, name := range paused {
		if s.nodeKind(name) == engine.KindInput.String() {
			if s.b.Pause(name) == nil {
				res.Repaused = append(res.Repaused, name)
			}
		}
	}
	res = s.record(res)
	s.log.Info("reloaded", "source", source, "config", file, "generation", gen, "previous", prev, "warnings", len(res.Warnings))
	return res, nil
}

func (s *Server) record(res ReloadResult) ReloadResult {
	res.At = time.Now().UTC().Round(time.Millisecond)
	s.last.Store(&res)
	s.reloads.add(res)
	return res
}

func sameNode(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	ra, _ := yaml.Marshal(a)
	rb, _ := yaml.Marshal(b)
	return bytes.Equal(ra, rb)
}

// readReloadBody validates a reload request and returns its body ("" means
// re-read the config file). The returned code is the HTTP status on error.
func readReloadBody(r *http.Request, limit int64) ([]byte, int, error) {
	if r.URL.RawQuery != "" {
		return nil, http.StatusBadRequest, fmt.Errorf("unexpected query %q", r.URL.RawQuery)
	}
	// Types a browser sends cross-site without a preflight (text/plain,
	// forms, a body without a type) are refused (guard checks it too).
	if code, err := checkMutationType(r); err != nil {
		return nil, code, err
	}
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("config of %d bytes over the limit of %d", r.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("cannot read request body: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("config over the limit of %d bytes", limit)
	}
	return data, 0, nil
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	data, code, err := readReloadBody(r, MaxReloadBody)
	if err != nil {
		writeError(w, code, "reload: %v", err)
		return
	}
	// The body is in (within read_timeout); a reload may drain components
	// for up to engine.shutdown_timeout before it answers.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(reloadAnswerBudget))
	var res ReloadResult
	if len(bytes.TrimSpace(data)) == 0 {
		if s.path == "" {
			writeError(w, http.StatusBadRequest, "reload: empty body and no config file to re-read: POST the config as YAML")
			return
		}
		res, err = s.ReloadFile("api")
	} else {
		res, err = s.reloadBytes("api", "<reload request>", data)
	}
	var re *reloadError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, engine.ErrReloadInProgress):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "reload: " + err.Error(), "generation": s.b.Generation()})
	case errors.As(err, &re):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "generation": res.Generation})
	default:
		writeError(w, http.StatusBadRequest, "reload: %v", err)
	}
}

// watch polls the config file every interval and reloads when its
// content changes. A rejected config is not retried until the file
// changes again.
func (s *Server) watch(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastMod time.Time
	var lastSize int64 = -1
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(s.path)
		if err != nil {
			continue // being replaced; try again
		}
		if fi.ModTime().Equal(lastMod) && fi.Size() == lastSize {
			continue
		}
		h, err := hashFile(s.path)
		if err != nil {
			continue
		}
		s.fileMu.Lock()
		same := h == s.fileHash
		s.fileMu.Unlock()
		if same {
			lastMod, lastSize = fi.ModTime(), fi.Size()
			continue
		}
		s.log.Info("config file changed: reloading", "config", s.path)
		_, err = s.ReloadFile("watch")
		if errors.Is(err, engine.ErrReloadInProgress) {
			continue // retry at the next tick
		}
		lastMod, lastSize = fi.ModTime(), fi.Size()
	}
}

func hashFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return hashBytes(b), nil
}

func hashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
