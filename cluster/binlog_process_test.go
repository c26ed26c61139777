package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
	"github.com/go-mysql-org/go-mysql/client"
)

// binlogSource is one database of the test MariaDB read by one binlog
// resource, through its own replication user (so that SHOW PROCESSLIST
// tells the resources' dump connections apart).
type binlogSource struct {
	id, db, user, pw, cred string
	serverID               int
}

// TestClusterProcessBinlogKill: two binlog sources (two databases of the
// test MariaDB, distinct resources with distinct server_ids and
// replication users) on three dbusd members. The owner of one source is
// killed with SIGKILL during a load: the source resumes on another
// member from its fenced checkpoint; the server never shows more than
// one binlog dump connection per source; every row arrives at least
// once, and in each member's output the rows of a key come in order.
func TestClusterProcessBinlogKill(t *testing.T) {
	addr, rootUser, rootPw := testenv.MySQL(t)
	pc := newProcCluster(t)
	// What dbc knows: the built-in plugins' specs (server_id is PerResource).
	reg := engine.NewRegistry()
	if err := mysqlbinlog.Register(reg); err != nil {
		t.Fatal(err)
	}
	pc.h.admin.Registry = reg
	admin, err := client.Connect(addr, rootUser, rootPw, "")
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	defer admin.Close()
	exec := func(c *client.Conn, q string, args ...any) {
		t.Helper()
		if _, err := c.Execute(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tag := fmt.Sprintf("%d", time.Now().UnixNano()%1e8)
	r, err := admin.Execute("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	startFile, _ := r.GetString(0, 0)
	startPos, _ := r.GetUint(0, 1)
	var srcs []*binlogSource
	for i := 1; i <= 2; i++ {
		s := &binlogSource{id: fmt.Sprintf("binlog-%d", i), db: fmt.Sprintf("dbus_cl%s_%d", tag, i), user: fmt.Sprintf("dbcl%s_%d", tag, i),
			pw: fmt.Sprintf("pw-%s-%d", tag, i), cred: fmt.Sprintf("binlogsrc%d", i), serverID: 7100 + i}
		srcs = append(srcs, s)
		exec(admin, "CREATE DATABASE "+s.db)
		exec(admin, "CREATE TABLE "+s.db+".t (id INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, v INT NOT NULL)")
		exec(admin, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", s.user, s.pw))
		exec(admin, fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '%s'@'%%'", s.user))
		t.Setenv(credEnv(s.cred), s.pw)
		t.Cleanup(func() {
			admin.Execute("DROP DATABASE IF EXISTS " + s.db)
			admin.Execute(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", s.user))
		})
	}
	pc.yaml = func(p *proc) string {
		return fmt.Sprintf(`engine:
  checkpoint_interval: 100ms
  shutdown_timeout: 5s
cluster:
  name: %s
  member: %s
  zookeeper: [%s]
  session_timeout: 2s
  connect_timeout: 5s
  release_timeout: 2s
  local_dir: %s
inputs:
  - name: binlog
    class: MysqlbinlogInput
    addr: %q
    server_id: 7000
    heartbeat: 200ms
    read_timeout: 3s
outputs:
  - name: out
    class: StreamOutput
    match: binlog
    path: %s
`, pc.h.cluster, p.name, strings.Join(pc.h.zk, ", "), filepath.Join(p.dir, "local"), addr, p.out)
	}
	for _, n := range []string{"m1", "m2", "m3"} {
		pc.start(n, 0, 0)
	}
	pc.waitMembers(3)
	for _, s := range srcs {
		err := pc.h.admin.AddResource(pc.h.cluster, ResourceSpec{ID: s.id, Input: "binlog", Config: map[string]any{
			"addr": addr, "user": s.user, "password": "${cred:" + s.cred + "}", "server_id": s.serverID,
			"include": []string{s.db + ".*"}, "start": "file", "start_file": startFile, "start_pos": startPos,
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A second resource with a server_id already used is refused.
	if err := pc.h.admin.AddResource(pc.h.cluster, ResourceSpec{ID: "binlog-dup", Input: "binlog", Config: map[string]any{
		"addr": addr, "server_id": srcs[0].serverID}}); err == nil || !strings.Contains(err.Error(), "server_id") {
		t.Fatalf("a resource reusing server_id %d was not refused: %v", srcs[0].serverID, err)
	}

	// Watch the server's dump connections per source user.
	mon, err := client.Connect(addr, rootUser, rootPw, "")
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	var maxDumps [2]atomic.Int64
	var sawDump [2]atomic.Bool
	stopMon := make(chan struct{})
	var monWG sync.WaitGroup
	monWG.Add(1)
	go func() {
		defer monWG.Done()
		for {
			select {
			case <-stopMon:
				return
			case <-time.After(20 * time.Millisecond):
			}
			rs, err := mon.Execute("SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' AND USER IN (?, ?) GROUP BY USER", srcs[0].user, srcs[1].user)
			if err != nil {
				continue
			}
			for i := 0; i < rs.RowNumber(); i++ {
				u, _ := rs.GetString(i, 0)
				n, _ := rs.GetInt(i, 1)
				for j, s := range srcs {
					if u == s.user {
						sawDump[j].Store(true)
						if n > maxDumps[j].Load() {
							maxDumps[j].Store(n)
						}
					}
				}
			}
		}
	}()
	defer func() { close(stopMon); monWG.Wait() }()

	// Load: rows (k = i % 10, v = i) into both sources, in one writer per
	// source.
	const rows = 1500
	var loadWG sync.WaitGroup
	var written [2]atomic.Int64
	for j, s := range srcs {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			c, err := client.Connect(addr, rootUser, rootPw, s.db)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 1; i <= rows; i++ {
				if _, err := c.Execute(fmt.Sprintf("INSERT INTO t (k, v) VALUES (%d, %d)", i%10, i)); err != nil {
					t.Errorf("insert into %s: %v", s.db, err)
					return
				}
				written[j].Store(int64(i))
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	// Kill the owner of binlog-1 once a third of its rows was written.
	h := pc.h
	h.waitFor("a third of the rows written", 60*time.Second, func() bool { return written[0].Load() >= rows/3 })
	owner, epoch := pc.resourceEpochs()
	victim := pc.procs[owner[srcs[0].id]]
	if victim == nil {
		t.Fatalf("binlog-1 has no running owner: %v", owner)
	}
	h.waitFor("the victim delivered rows", 20*time.Second, func() bool { return fileSize(victim.out) > 0 })
	victim.kill()
	killed := time.Now()
	t.Logf("kill -9 %s (owner of %s at epoch %d)", victim.name, srcs[0].id, epoch[srcs[0].id])
	h.waitFor("binlog-1 runs on another member", 20*time.Second, func() bool {
		ms, err := h.admin.Members(h.cluster)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.Name != victim.name && slicesContains(m.Running, srcs[0].id) {
				return true
			}
		}
		return false
	})
	t.Logf("%s running elsewhere %s after the kill", srcs[0].id, time.Since(killed).Round(time.Millisecond))
	loadWG.Wait()
	// Every row of both sources arrives (at least once).
	var files []string
	for _, p := range pc.procs {
		files = append(files, p.out)
	}
	var got map[string]map[int]int
	h.waitFor("every row delivered", 60*time.Second, func() bool {
		got = readBinlogRows(t, files, nil)
		for _, s := range srcs {
			if len(got[s.db]) < rows {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, s := range srcs {
		for v := 1; v <= rows; v++ {
			if got[s.db][v] == 0 {
				t.Errorf("%s: row v=%d never delivered", s.db, v)
			}
			dups += got[s.db][v] - 1
		}
	}
	// Per-key order inside each member's output.
	for _, f := range files {
		readBinlogRows(t, []string{f}, func(db string, k, v int, last map[string]int) {
			key := fmt.Sprintf("%s/%d", db, k)
			if prev, ok := last[key]; ok && v <= prev {
				t.Errorf("%s: key %s: v=%d after v=%d", f, key, v, prev)
			}
			last[key] = v
		})
	}
	for j, s := range srcs {
		if !sawDump[j].Load() {
			t.Errorf("never saw the binlog dump connection of %s (user %s)", s.id, s.user)
		}
		if n := maxDumps[j].Load(); n > 1 {
			t.Errorf("%s: the server showed %d binlog dump connections at once (want at most one per source)", s.id, n)
		}
	}
	t.Logf("%d rows per source delivered; %d duplicates (replayed from the fenced checkpoint after the kill)", rows, dups)
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// readBinlogRows reads MysqlbinlogInput JSON lines from files: db -> v ->
// times delivered. each, when set, sees every row in file order (a row
// delivered again by a replay is skipped after its first time).
func readBinlogRows(t *testing.T, files []string, each func(db string, k, v int, last map[string]int)) map[string]map[int]int {
	t.Helper()
	out := map[string]map[int]int{}
	for _, path := range files {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		last := map[string]int{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var row struct {
				DB    string `json:"db"`
				After struct {
					K int `json:"k"`
					V int `json:"v"`
				} `json:"after"`
			}
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				f.Close()
				t.Fatalf("%s: %v: %q", path, err, sc.Text())
			}
			if out[row.DB] == nil {
				out[row.DB] = map[int]int{}
			}
			out[row.DB][row.After.V]++
			id := fmt.Sprintf("%s/%d", row.DB, row.After.V)
			if each != nil && !seen[id] {
				each(row.DB, row.After.K, row.After.V, last)
			}
			seen[id] = true
		}
		f.Close()
	}
	return out
}
