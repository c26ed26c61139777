// Package ui holds the live pipeline page's static assets, embedded in the
// binary: plain HTML, CSS and JavaScript drawing the DAG as SVG, polling
// the admin JSON API (/api/v1/dag) once a second, and charts of the last
// minutes per node from /api/v1/history with the reload log
// (/api/v1/reloads). Nothing is fetched from
// the internet. Handler serves the assets; it is safe for concurrent use.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html app.js history.js style.css
var assets embed.FS

// FS returns the embedded assets.
func FS() fs.FS { return assets }

// Handler serves the assets (mount it under a prefix with
// http.StripPrefix). Responses are not cached so an upgrade shows at once.
func Handler() http.Handler {
	fsrv := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}
