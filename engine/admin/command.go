package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/dbus-project/dbus/engine"
)

// maxCommandArgs bounds the arguments of one plugin command.
const maxCommandArgs = 256

// commander is the optional backend ability behind handleCommand
// (*engine.Supervisor has it).
type commander interface {
	Command(ctx context.Context, name, cmd string, args []string) (any, error)
}

// handleCommand serves POST /api/v1/plugins/{name}/command/{cmd}?arg=..:
// an operator command to a running plugin that implements
// engine.Commander (MysqlbinlogInput: snapshot db.table ...), answered
// with the plugin's JSON. 404 unknown plugin, 400 no such command or bad
// arguments (the plugin's message), 409 during a reload or shutdown.
func (s *Server) handleCommand(w http.ResponseWriter, r *http.Request) {
	name, cmd := r.PathValue("name"), r.PathValue("cmd")
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "command %s %s: bad query string: %v", name, cmd, err)
		return
	}
	for k := range q {
		if k != "arg" {
			writeError(w, http.StatusBadRequest, "command %s %s: unknown query parameter %q (arguments: arg=..., repeated)", name, cmd, k)
			return
		}
	}
	args := q["arg"]
	if len(args) > maxCommandArgs {
		writeError(w, http.StatusBadRequest, "command %s %s: %d arguments, at most %d", name, cmd, len(args), maxCommandArgs)
		return
	}
	if s.isReloading() {
		writeError(w, http.StatusConflict, "cannot send %q to %q: a reload is in progress; retry when it completes", cmd, name)
		return
	}
	if s.ctx.Err() != nil {
		writeError(w, http.StatusConflict, "cannot send %q to %q: dbusd is shutting down", cmd, name)
		return
	}
	if s.nodeKind(name) == "" {
		writeError(w, http.StatusNotFound, "cannot send %q to %q: no running plugin has that name", cmd, name)
		return
	}
	c, ok := s.b.(commander)
	if !ok {
		writeError(w, http.StatusNotImplemented, "plugin commands are not available here")
		return
	}
	res, err := c.Command(r.Context(), name, cmd, args)
	switch {
	case errors.Is(err, engine.ErrNoCommands):
		writeError(w, http.StatusBadRequest, "%q takes no commands (commands: MysqlbinlogInput snapshot)", name)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "command %s %s: %v", name, cmd, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
