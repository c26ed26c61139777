package admin

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/dbus-project/dbus/engine"
)

// maxQueryParams bounds the parameters of one plugin query.
const maxQueryParams = 32

// handleQuery serves GET /api/v1/plugins/{name}/query?k=v...: the state of
// a running plugin that implements engine.Queryable (a cardinality
// estimate, funnel counts), as the plugin's JSON. 404 unknown plugin, 400
// not queryable or bad parameters (the plugin's message), 409 during a
// reload.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "query %s: bad query string: %v", name, err)
		return
	}
	if len(q) > maxQueryParams {
		writeError(w, http.StatusBadRequest, "query %s: %d parameters, at most %d", name, len(q), maxQueryParams)
		return
	}
	params := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) != 1 {
			writeError(w, http.StatusBadRequest, "query %s: parameter %q given %d times", name, k, len(vs))
			return
		}
		params[k] = vs[0]
	}
	// Checked first: while a reload drains, reading the pipeline waits for it.
	if s.isReloading() {
		writeError(w, http.StatusConflict, "cannot query %q: a reload is in progress; retry when it completes", name)
		return
	}
	if s.nodeKind(name) == "" {
		writeError(w, http.StatusNotFound, "cannot query %q: no running plugin has that name", name)
		return
	}
	res, err := s.b.Query(name, params)
	switch {
	case errors.Is(err, engine.ErrNotQueryable):
		writeError(w, http.StatusBadRequest, "cannot query %q: it has no queryable state (queryable: Cardinality, Funnel)", name)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "query %s: %v", name, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
