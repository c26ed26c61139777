package mysqlbinlog

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
)

// TestBinlogInputConformance runs the engine's input conformance suite
// against the real MariaDB: every inserted row is delivered once, and after
// an orderly restart the input resumes from its checkpoint (rows written
// while it was stopped arrive, none twice).
func TestBinlogInputConformance(t *testing.T) {
	d := testDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))")
	start := d.pos()
	reg := engine.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	enginetest.TestInput(t, enginetest.InputCase{
		Registry: reg,
		Input: fmt.Sprintf("class: MysqlbinlogInput, addr: %q, user: %q, password: %q, server_id: %d, include: [%q], start: file, start_file: %q, start_pos: %d, heartbeat: 200ms, read_timeout: 2s",
			d.addr, d.user, d.pw, serverIDs.Add(1), d.name+".t", start.File, start.Pos),
		N: 500,
		Produce: func(t testing.TB, from, to int) {
			for i := from; i < to; i += 50 {
				var b bytes.Buffer
				b.WriteString("INSERT INTO t VALUES ")
				for j := i; j < min(i+50, to); j++ {
					if j > i {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "(%d, 'conf-%d-x')", j, j)
				}
				d.exec(b.String())
			}
		},
		ID: func(p []byte) (int, bool) {
			i := bytes.Index(p, []byte(`"conf-`))
			if i < 0 {
				return 0, false
			}
			p = p[i+6:]
			j := bytes.IndexByte(p, '-')
			if j < 0 {
				return 0, false
			}
			n, err := strconv.Atoi(string(p[:j]))
			return n, err == nil
		},
	})
}
