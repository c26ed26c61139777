package engine

import (
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The plugin API: the identifiers of package engine a plugin's own code
// (not its tests) may use. Everything else in package engine (Engine,
// Supervisor, Parse, Config, the checkpoint stores, NodeStats, taps) is
// the runtime, used by cmd/dbusd, cluster and tests; what sits under
// engine/internal is out of a plugin's reach by Go's internal rule.
// Adding a name here widens the API every plugin author sees: document it
// in doc.go ("For plugin authors") first.
var pluginAPI = map[string]bool{
	// Lifecycle interfaces, contexts and optional abilities (api.go).
	"Input": true, "InputContext": true, "Filter": true, "FilterContext": true, "TickContext": true,
	"Output": true, "AsyncOutput": true, "Completion": true, "Stream": true, "Checkpoint": true,
	"Starter": true, "Closer": true, "Flusher": true, "FilterFlusher": true, "Ticker": true,
	"DryRunner": true, "Committer": true, "Queryable": true, "Stateful": true, "InlineOutput": true,
	"InFlightDefaulter": true, "TransactionalOutput": true, "SourceBinder": true, "LagReporter": true, "RecordLagReporter": true,
	"MetricsReporter": true, "MetricKind": true, "MetricCounter": true, "MetricGauge": true, "PluginMetric": true,
	// Errors.
	"BatchError": true, "Permanent": true, "IsPermanent": true, "ConfigError": true, "ErrFenced": true,
	// Spec, registry, config (spec.go, config.go, secret.go).
	"Spec": true, "Field": true, "FieldType": true, "Kind": true, "KindInput": true, "KindFilter": true, "KindOutput": true,
	"TypeString": true, "TypeInt": true, "TypeFloat": true, "TypeBool": true, "TypeDuration": true,
	"TypeSize": true, "TypeStrings": true, "TypeAny": true,
	"WriteKind": true, "WritesNothing": true, "WritesFile": true, "WritesDir": true,
	"Registry": true, "NewRegistry": true, "Default": true,
	"Conf": true, "NewConf": true, "ParseSize": true, "IsReference": true, "Redacted": true,
	// Helpers for plugin state and waits.
	"WriteFileAtomic": true, "CheckWritableDir": true, "Sleep": true,
}

// packRuntime are the names of package pack that are the engine's packet
// machinery (pools, windows, releasers, accounting): a plugin gets packets
// from its context and never builds or counts them itself.
var packRuntime = map[string]bool{
	"Pool": true, "NewPool": true, "PoolConfig": true, "Window": true, "NewWindow": true,
	"Releaser": true, "NewReleaser": true, "Account": true,
}

// packetRuntimeFields are selectors on packets (and pools) that belong to
// the engine: sequence and send time, holder counts, pool accounting. The
// check is by name (no type information), so a plugin must not use these
// names on its own values either.
var packetRuntimeFields = map[string]bool{
	"Seq": true, "Sent": true, "Retain": true, "SetRefs": true, "AddOut": true, "OutBytes": true,
}

const modulePath = "github.com/dbus-project/dbus/"

// checkPluginFile returns the plugin API violations of one parsed file.
func checkPluginFile(fset *token.FileSet, f *ast.File, isTest bool) []string {
	var bad []string
	at := func(n ast.Node) string { return fset.Position(n.Pos()).String() }
	names := map[string]string{} // local name -> import path, for engine and pack
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !strings.HasPrefix(p, modulePath) {
			continue
		}
		rel := strings.TrimPrefix(p, modulePath)
		allowed := rel == "engine" || rel == "pack" || strings.HasPrefix(rel, "plugins/") ||
			rel == "internal/jsonstr" || rel == "internal/httpbody" ||
			(isTest && (rel == "engine/enginetest" || rel == "internal/testenv"))
		if !allowed {
			bad = append(bad, fmt.Sprintf("%s: imports %s: plugins may import only engine (the plugin API), pack, other plugins, internal/jsonstr and internal/httpbody (tests: also engine/enginetest, internal/testenv)", at(imp), p))
		}
		local := filepath.Base(p)
		if imp.Name != nil {
			local = imp.Name.Name
		}
		if rel == "engine" || rel == "pack" {
			names[local] = rel
		}
	}
	if isTest {
		// Tests run engines (engine.New, Parse, stores): the runtime is
		// theirs to use.
		return bad
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok {
			switch names[id.Name] {
			case "engine":
				if !pluginAPI[sel.Sel.Name] {
					bad = append(bad, fmt.Sprintf("%s: engine.%s is not part of the plugin API (see pluginAPI in engine/apiguard_test.go)", at(sel), sel.Sel.Name))
				}
				return true
			case "pack":
				if packRuntime[sel.Sel.Name] {
					bad = append(bad, fmt.Sprintf("%s: pack.%s is engine machinery, not for plugins", at(sel), sel.Sel.Name))
				}
				return true
			}
		}
		if packetRuntimeFields[sel.Sel.Name] {
			bad = append(bad, fmt.Sprintf("%s: .%s belongs to the engine's packet machinery, not to plugins", at(sel), sel.Sel.Name))
		}
		return true
	})
	return bad
}

// TestEngineAPIGuard fails when code under plugins/ reaches past the
// plugin API: an import of engine/admin, engine/metrics or the runtime
// packages, or (outside tests) a use of a runtime name of package engine
// or of the packet machinery of package pack.
func TestEngineAPIGuard(t *testing.T) {
	root := filepath.Join("..", "plugins")
	fset := token.NewFileSet()
	var bad []string
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := goparser.ParseFile(fset, path, nil, goparser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		bad = append(bad, checkPluginFile(fset, f, strings.HasSuffix(path, "_test.go"))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("parsed only %d files under %s: the walk missed the plugins", files, root)
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// TestEngineAPIGuardCatches proves the guard reports each kind of
// violation (a guard that finds nothing would pass the test above too).
func TestEngineAPIGuardCatches(t *testing.T) {
	src := `package evil

import (
	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	p "github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/ring"
)

func f(pk *p.Packet, c *engine.Conf) {
	_ = engine.NewSupervisor
	_ = p.NewPool
	_ = pk.Seq
	_ = admin.New
	_ = ring.New
	_ = engine.Permanent
}
`
	fset := token.NewFileSet()
	f, err := goparser.ParseFile(fset, "evil.go", src, goparser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checkPluginFile(fset, f, false), "\n")
	for _, want := range []string{"imports github.com/dbus-project/dbus/engine/admin", "imports github.com/dbus-project/dbus/ring",
		"engine.NewSupervisor is not part", "pack.NewPool is engine machinery", ".Seq belongs"} {
		if !strings.Contains(got, want) {
			t.Errorf("guard missed %q; reported:\n%s", want, got)
		}
	}
	if strings.Contains(got, "engine.Permanent") || strings.Contains(got, "engine.Conf") || strings.Contains(got, "p.Packet") {
		t.Errorf("guard reported part of the plugin API:\n%s", got)
	}
	if n := len(checkPluginFile(fset, f, true)); n != 2 {
		t.Errorf("in a test file only the two imports are violations, got %d", n)
	}
}
