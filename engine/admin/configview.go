package admin

import (
	"net/http"

	"github.com/dbus-project/dbus/engine"
)

// ConfigView is the body of GET /api/v1/config: the running pipeline
// config as written, with the value of every secret field (Field.Secret,
// Field.SecretKeys, admin.token, cluster.auth.password) replaced by
// <redacted>; references (${env:}, ${file:}, ${cred:}) are shown.
type ConfigView struct {
	File       string `json:"file,omitempty"`
	Generation int64  `json:"generation"`
	YAML       string `json:"yaml"`
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	cfg := s.b.Config()
	if cfg == nil {
		writeError(w, http.StatusServiceUnavailable, "no config loaded")
		return
	}
	out, err := engine.RedactConfig(cfg.Raw, s.reg)
	if err != nil {
		// Never fall back to the raw text: it may hold secrets.
		writeError(w, http.StatusInternalServerError, "cannot show the config: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, ConfigView{File: cfg.File, Generation: s.b.Generation(), YAML: string(out)})
}
