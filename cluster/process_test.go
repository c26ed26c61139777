package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/go-zookeeper/zk"
)

// Multi-process tests: real dbusd processes in cluster mode, killed with
// SIGKILL or frozen with SIGSTOP. Every member writes what it delivers to
// its own file (StreamOutput); MockInput resource i pads its payload to
// procPayload+i bytes, so a line's length names its resource.

const procPayload = 32

var dbusdBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dbusdBin.dir != "" {
		os.RemoveAll(dbusdBin.dir)
	}
	os.Exit(code)
}

// dbusdPath builds cmd/dbusd once per test binary.
func dbusdPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process cluster test: skipped with -short")
	}
	dbusdBin.once.Do(func() {
		dbusdBin.dir, dbusdBin.err = os.MkdirTemp("", "dbusd-cluster-test")
		if dbusdBin.err != nil {
			return
		}
		dbusdBin.path = filepath.Join(dbusdBin.dir, "dbusd")
		out, err := exec.Command("go", "build", "-o", dbusdBin.path, "../cmd/dbusd").CombinedOutput()
		if err != nil {
			dbusdBin.err = fmt.Errorf("go build ../cmd/dbusd: %v\n%s", err, out)
		}
	})
	if dbusdBin.err != nil {
		t.Fatal(dbusdBin.err)
	}
	return dbusdBin.path
}

// proc is one dbusd process.
type proc struct {
	name string
	dir  string
	conf string
	out  string // StreamOutput file
	log  string // stderr
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

type procCluster struct {
	t     *testing.T
	h     *harness // cluster name, admin
	dir   string
	procs map[string]*proc
	// highest delivered sequence per resource (countAll)
	highest map[string]int64
	// yaml, when set, replaces memberYAML.
	yaml func(p *proc) string
}

func newProcCluster(t *testing.T) *procCluster {
	dbusdPath(t)
	h := newHarness(t)
	return &procCluster{t: t, h: h, dir: t.TempDir(), procs: map[string]*proc{}}
}

// memberYAML is a member's dbusd config: one distributed MockInput, one
// StreamOutput file per member.
func (pc *procCluster) memberYAML(p *proc, interval time.Duration, rate int) string {
	return fmt.Sprintf(`engine:
  checkpoint_interval: %s
  shutdown_timeout: 5s
cluster:
  name: %s
  member: %s
  zookeeper: [%s]
  session_timeout: %s
  connect_timeout: 5s
  release_timeout: 2s
  local_dir: %s
inputs:
  - name: src
    class: MockInput
    rate: %d
    payload: %d
outputs:
  - name: out
    class: StreamOutput
    match: src
    path: %s
`, interval, pc.h.cluster, p.name, strings.Join(pc.h.zk, ", "), procSessionTimeout, filepath.Join(p.dir, "local"), rate, procPayload, p.out)
}

// procSessionTimeout is the members' session_timeout in memberYAML.
const procSessionTimeout = 2 * time.Second

func (pc *procCluster) start(name string, interval time.Duration, rate int) *proc {
	pc.t.Helper()
	p := &proc{name: name, dir: filepath.Join(pc.dir, name), done: make(chan struct{})}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		pc.t.Fatal(err)
	}
	p.conf, p.out, p.log = filepath.Join(p.dir, "dbusd.yaml"), filepath.Join(p.dir, "out.txt"), filepath.Join(p.dir, "dbusd.log")
	conf := pc.memberYAML(p, interval, rate)
	if pc.yaml != nil {
		conf = pc.yaml(p)
	}
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		pc.t.Fatal(err)
	}
	logf, err := os.Create(p.log)
	if err != nil {
		pc.t.Fatal(err)
	}
	p.cmd = exec.Command(dbusdBin.path, "-conf", p.conf)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	pc.procs[name] = p
	pc.t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.stop(pc.t)
		if pc.t.Failed() {
			b, _ := os.ReadFile(p.log)
			pc.t.Logf("log of %s (last 3000 bytes):\n%s", p.name, tail(b, 3000))
		}
	})
	return p
}

// soak stretches d 20 times with DBUS_SOAK=1 (longer runs before and
// after the failure).
func soak(d time.Duration) time.Duration {
	if os.Getenv("DBUS_SOAK") != "" {
		return 20 * d
	}
	return d
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stop ends the process with SIGTERM (orderly: drain, final commit),
// killing it after 15 s.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Errorf("dbusd %s did not stop within 15s of SIGTERM: killing it", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) logSize() int64 {
	st, err := os.Stat(p.log)
	if err != nil {
		return 0
	}
	return st.Size()
}

var logRes = regexp.MustCompile(`resource=(\S+)`)
var logEpoch = regexp.MustCompile(`epoch=(\d+)`)

// logEvents returns resource -> epochs of the log lines with message msg
// written after byte offset from.
func (p *proc) logEvents(t *testing.T, from int64, msg string) map[string][]uint64 {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint64{}
	for _, line := range strings.Split(string(b[min(from, int64(len(b))):]), "\n") {
		if !strings.Contains(line, `msg="`+msg+`"`) {
			continue
		}
		m := logRes.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var ep uint64
		if e := logEpoch.FindStringSubmatch(line); e != nil {
			ep, _ = strconv.ParseUint(e[1], 10, 64)
		}
		out[m[1]] = append(out[m[1]], ep)
	}
	return out
}

// delivered reads a member's output file from byte offset from: resource
// index -> seq -> times delivered.
func readDelivered(t *testing.T, path string, from int64) map[int]map[int64]int {
	t.Helper()
	out := map[int]map[int64]int{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			t.Fatalf("%s: bad line %q", path, line)
		}
		j := i + 1
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		seq, err := strconv.ParseInt(string(line[i+1:j]), 10, 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		res := len(line) - procPayload
		if out[res] == nil {
			out[res] = map[int64]int{}
		}
		out[res][seq]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// addProcResources adds n MockInput resources; resource i pads its
// payload to procPayload+i bytes.
func (pc *procCluster) addResources(n int) []string {
	pc.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("res-%02d", i)
		if err := pc.h.admin.AddResource(pc.h.cluster, ResourceSpec{ID: id, Input: "src", Config: map[string]any{"payload": procPayload + i}}); err != nil {
			pc.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func resIndex(id string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(id, "res-"))
	return n
}

// memberNames waits until the admin API lists exactly want members.
func (pc *procCluster) waitMembers(want int) {
	pc.h.waitFor(fmt.Sprintf("%d members registered", want), 20*time.Second, func() bool {
		ms, err := pc.h.admin.Members(pc.h.cluster)
		return err == nil && len(ms) == want
	})
}

// resourceEpochs returns resource -> owner and epoch (owner records).
func (pc *procCluster) resourceEpochs() (map[string]string, map[string]uint64) {
	rs, err := pc.h.admin.Resources(pc.h.cluster)
	if err != nil {
		pc.t.Fatal(err)
	}
	owner, epoch := map[string]string{}, map[string]uint64{}
	for _, r := range rs {
		owner[r.ID], epoch[r.ID] = r.Owner, r.Epoch
	}
	return owner, epoch
}

// TestClusterProcessKill: three dbusd processes run 30 MockInput
// resources 10/10/10. One is killed with SIGKILL: its resources run again
// on the others within session timeout + 1 s, resuming from their
// checkpoints (nothing lost across all members' output files), while the
// survivors' resources are neither re-granted nor restarted.
func TestClusterProcessKill(t *testing.T) {
	pc := newProcCluster(t)
	for _, n := range []string{"m1", "m2", "m3"} {
		pc.start(n, 100*time.Millisecond, 200)
	}
	pc.waitMembers(3)
	ids := pc.addResources(30)
	pc.h.waitFor("30 resources running 10/10/10", 30*time.Second, func() bool {
		c := countBy(pc.h.runningBy())
		return c["m1"] == 10 && c["m2"] == 10 && c["m3"] == 10
	})
	time.Sleep(soak(1500 * time.Millisecond)) // deliver and checkpoint for a while

	before := pc.h.runningBy()
	ownerBefore, epochBefore := pc.resourceEpochs()
	victim := pc.procs[before[ids[0]]]
	var survivors []*proc
	for _, p := range pc.procs {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	moved := map[string]bool{}
	for id, m := range before {
		if m == victim.name {
			moved[id] = true
		}
		if ownerBefore[id] != m {
			t.Fatalf("resource %s runs on %s but its owner record names %s", id, m, ownerBefore[id])
		}
	}
	outAt, logAt := map[string]int64{}, map[string]int64{}
	for _, p := range survivors {
		outAt[p.name], logAt[p.name] = fileSize(p.out), p.logSize()
	}

	victim.kill()
	killed := time.Now()
	// The victim is dead and its session not yet expired: nobody else
	// may run its resources, so these are its final checkpoints.
	cps, err := pc.h.admin.Checkpoints(pc.h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	cpAtKill := map[string]int64{}
	for id := range moved {
		rec := cps[id]
		if rec.Member != victim.name || len(rec.Checkpoints) != 1 {
			t.Fatalf("checkpoint of %s at the kill: %+v, want one written by %s", id, rec, victim.name)
		}
		for _, cp := range rec.Checkpoints {
			cpAtKill[id] = cp.Offset
		}
	}

	// Takeover: every moved resource listed as running by a survivor.
	takeover := map[string]time.Duration{}
	deadline := killed.Add(15 * time.Second)
	for len(takeover) < len(moved) && time.Now().Before(deadline) {
		for id, m := range pc.h.runningBy() {
			if moved[id] && m != victim.name {
				if _, ok := takeover[id]; !ok {
					takeover[id] = time.Since(killed)
				}
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(takeover) < len(moved) {
		t.Fatalf("only %d of %d resources of %s restarted within 15s", len(takeover), len(moved), victim.name)
	}
	var first, last time.Duration = time.Hour, 0
	for _, d := range takeover {
		first, last = min(first, d), max(last, d)
	}
	// The bound: ZooKeeper expires the dead member's session after the
	// configured session timeout (the server's clock, not ours: it does
	// not stretch with load; .ci/zookeeper.sh's tickTime of 500 ms rounds
	// expiry up by less than that). Everything after it - the leader's
	// watch firing, its assignment multi, the survivors' sync, reading
	// the owner record and starting the engines of 2 processes on a
	// shared 2-core runner - is our own work, which a loaded machine or
	// the race detector slows: that second is stretched by
	// testenv.Scale (DBUS_TEST_TIMEOUT_SCALE; 3 under -race). Once
	// measured 3.18 s against a fixed 3 s under load.
	limit := procSessionTimeout + testenv.Scaled(time.Second)
	t.Logf("kill -9 %s: its %d resources running elsewhere after %s..%s (limit %s = session timeout %s + scaled 1 s)", victim.name, len(moved), first.Round(time.Millisecond), last.Round(time.Millisecond), limit, procSessionTimeout)
	if last > limit {
		t.Errorf("takeover took %s, more than session timeout + %s = %s", last, testenv.Scaled(time.Second), limit)
	}
	afterRun := pc.h.runningBy()
	if c := countBy(afterRun); c[survivors[0].name]+c[survivors[1].name] != 30 || c[survivors[0].name] != 15 {
		t.Errorf("after the kill: %v, want 15/15", c)
	}

	time.Sleep(soak(1500 * time.Millisecond)) // the moved resources deliver and checkpoint
	ownerAfter, epochAfter := pc.resourceEpochs()
	for _, id := range ids {
		if moved[id] {
			if epochAfter[id] <= epochBefore[id] || ownerAfter[id] == victim.name {
				t.Errorf("moved resource %s: %s@%d -> %s@%d", id, ownerBefore[id], epochBefore[id], ownerAfter[id], epochAfter[id])
			}
		} else if ownerAfter[id] != ownerBefore[id] || epochAfter[id] != epochBefore[id] {
			t.Errorf("resource %s of survivor %s was re-granted: %s@%d -> %s@%d", id, ownerBefore[id], ownerBefore[id], epochBefore[id], ownerAfter[id], epochAfter[id])
		}
	}
	// Restart counts from the survivors' logs since the kill.
	for _, p := range survivors {
		for id, eps := range p.logEvents(t, logAt[p.name], "resource starting") {
			if !moved[id] || len(eps) != 1 {
				t.Errorf("%s started %s %d times after the kill (moved: %v)", p.name, id, len(eps), moved[id])
			}
		}
		if st := p.logEvents(t, logAt[p.name], "stopping resource"); len(st) > 0 {
			t.Errorf("%s stopped resources after the kill: %v", p.name, st)
		}
	}
	// Resume points: the first sequence a survivor delivered of a moved
	// resource is the victim's last checkpoint.
	for _, p := range survivors {
		post := readDelivered(t, p.out, outAt[p.name])
		for id := range moved {
			if afterRun[id] != p.name {
				continue
			}
			seqs := post[resIndex(id)]
			lo := int64(-1)
			for q := range seqs {
				if lo < 0 || q < lo {
					lo = q
				}
			}
			if lo != cpAtKill[id] {
				t.Errorf("resource %s resumed on %s at %d, its checkpoint at the kill was %d", id, p.name, lo, cpAtKill[id])
			}
		}
	}

	// Orderly stop, then count every resource's sequences across all files.
	for _, p := range survivors {
		p.stop(t)
	}
	total, dupMoved, dupOther := pc.countAll(ids, func(id string) bool { return moved[id] })
	t.Logf("delivered %d sequences of 30 resources; duplicates: %d over %d moved resources (in flight since their last checkpoint), %d elsewhere",
		total, dupMoved, len(moved), dupOther)
	if dupOther != 0 {
		t.Errorf("%d duplicates of resources that did not move (restarted?)", dupOther)
	}
	for id := range moved {
		if hi := pc.highest[id]; hi < cpAtKill[id]+20 {
			t.Errorf("moved resource %s made little progress after the kill: up to %d, checkpoint %d", id, hi, cpAtKill[id])
		}
	}
}

// countAll reads every member's output file and checks that each
// resource delivered every sequence from 0 to its highest. It returns
// the sequences delivered and the duplicates of resources for which
// moved is true, and of the others; pc.highest is set.
func (pc *procCluster) countAll(ids []string, moved func(string) bool) (total, dupMoved, dupOther int) {
	t := pc.t
	all := map[int]map[int64]int{}
	for _, p := range pc.procs {
		for res, seqs := range readDelivered(t, p.out, 0) {
			if all[res] == nil {
				all[res] = map[int64]int{}
			}
			for q, n := range seqs {
				all[res][q] += n
			}
		}
	}
	pc.highest = map[string]int64{}
	for _, id := range ids {
		seqs := all[resIndex(id)]
		hi := int64(-1)
		for q := range seqs {
			hi = max(hi, q)
		}
		pc.highest[id] = hi
		if hi < 0 {
			t.Errorf("resource %s delivered nothing", id)
		}
		var missing []int64
		for q := int64(0); q <= hi; q++ {
			switch n := seqs[q]; {
			case n == 0:
				missing = append(missing, q)
			case n > 1 && moved(id):
				dupMoved += n - 1
			case n > 1:
				dupOther += n - 1
			}
		}
		total += int(hi + 1)
		if len(missing) > 0 {
			t.Errorf("resource %s lost %d of 0..%d: %v", id, len(missing), hi, missing[:min(10, len(missing))])
		}
	}
	return total, dupMoved, dupOther
}

// TestClusterProcessSIGSTOP: a dbusd frozen with SIGSTOP past its session
// timeout loses its resources; once resumed with SIGCONT it stops its old
// pipelines and makes no checkpoint write: the checkpoint znodes' versions
// do not change. (The survivor's engine checkpoints every 10 minutes, and
// while the frozen member is away the test holds its member name with
// weight 0, so nothing moves back: any write would be the frozen one's.)
func TestClusterProcessSIGSTOP(t *testing.T) {
	pc := newProcCluster(t)
	a := pc.start("frozen", 100*time.Millisecond, 50)
	pc.waitMembers(1)
	ids := pc.addResources(6)
	pc.h.waitFor("6 resources on frozen", 20*time.Second, func() bool { return countBy(pc.h.runningBy())["frozen"] == 6 })
	pc.start("survivor", 10*time.Minute, 50)
	pc.h.waitFor("3/3", 20*time.Second, func() bool {
		c := countBy(pc.h.runningBy())
		return c["frozen"] == 3 && c["survivor"] == 3
	})
	time.Sleep(700 * time.Millisecond)
	_, epochs := pc.resourceEpochs()
	lost := map[string]uint64{} // frozen's resources and their epochs
	for id, m := range pc.h.runningBy() {
		if m == "frozen" {
			lost[id] = epochs[id]
		}
	}
	logAt := a.logSize()

	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	pc.h.waitFor("survivor runs every resource", 15*time.Second, func() bool { return countBy(pc.h.runningBy())["survivor"] == 6 })
	t.Logf("survivor took over %s after SIGSTOP (session timeout 2s)", time.Since(frozen).Round(time.Millisecond))
	owners, epochsNow := pc.resourceEpochs()
	for id, e := range lost {
		if owners[id] != "survivor" || epochsNow[id] <= e {
			t.Fatalf("resource %s: owner record %s@%d, want survivor after epoch %d", id, owners[id], epochsNow[id], e)
		}
	}
	// Hold the name: the thawed member cannot register again, and a
	// weight-0 member takes nothing from the survivor.
	p := newPaths(DefaultRoot, pc.h.cluster)
	hold := mustJSON(MemberInfo{Name: "frozen", Weight: 0, Running: []string{}})
	pc.h.waitFor("member name held", 5*time.Second, func() bool {
		_, err := pc.h.admin.s.conn.Create(p.member("frozen"), hold, zk.FlagEphemeral, pc.h.admin.s.acl)
		return err == nil
	})
	versions := func() map[string]int32 {
		out := map[string]int32{}
		for _, id := range ids {
			_, st, err := pc.h.admin.s.conn.Get(p.checkpoint(id))
			if err != nil {
				t.Fatalf("checkpoint of %s: %v", id, err)
			}
			out[id] = st.Version
		}
		return out
	}
	before := versions()
	time.Sleep(time.Until(frozen.Add(4 * time.Second))) // frozen well past the session timeout

	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()
	// It stops every pipeline it lost (each at its old epoch).
	pc.h.waitFor("frozen stops its old pipelines", 10*time.Second, func() bool {
		stopped := a.logEvents(t, logAt, "resource stopped")
		for id, e := range lost {
			if !slices.Contains(stopped[id], e) {
				return false
			}
		}
		return true
	})
	t.Logf("frozen stopped its %d old pipelines %s after SIGCONT", len(lost), time.Since(thawed).Round(time.Millisecond))
	time.Sleep(time.Until(thawed.Add(3 * time.Second)))
	after := versions()
	for _, id := range ids {
		if after[id] != before[id] {
			t.Errorf("checkpoint of %s written after the takeover (version %d -> %d)", id, before[id], after[id])
		}
	}
	owners2, epochs2 := pc.resourceEpochs()
	for id := range lost {
		if owners2[id] != "survivor" || epochs2[id] != epochsNow[id] {
			t.Errorf("resource %s: owner record %s@%d, want survivor@%d", id, owners2[id], epochs2[id], epochsNow[id])
		}
	}
	b, _ := os.ReadFile(a.log)
	attempts := 0
	for _, line := range strings.Split(string(b[logAt:]), "\n") {
		if strings.Contains(line, "fenced") || strings.Contains(line, "not saved") || strings.Contains(line, "commit failed") {
			attempts++
		}
	}
	t.Logf("frozen: %d log lines of refused checkpoint writes after SIGCONT; checkpoint znode versions unchanged", attempts)
	if attempts == 0 {
		t.Errorf("frozen logged no refused checkpoint write after SIGCONT: did its pipelines try to commit?")
	}
	// Release the name, stop both; nothing was lost.
	pc.h.admin.s.conn.Delete(p.member("frozen"), -1)
	for _, p := range pc.procs {
		p.stop(t)
	}
	_, dupMoved, dupOther := pc.countAll(ids, func(id string) bool { _, ok := lost[id]; return ok })
	t.Logf("duplicates: %d over the %d moved resources, %d elsewhere", dupMoved, len(lost), dupOther)
}

// TestClusterProcessSIGHUP: SIGHUP makes a member re-read its config
// file and apply its pipeline - the resources whose pipeline changed
// restart - and a broken file changes nothing; the member keeps running
// either way (SIGHUP used to kill it with exit 129, so `systemctl
// reload` left it dead).
func TestClusterProcessSIGHUP(t *testing.T) {
	pc := newProcCluster(t)
	p := pc.start("m1", 100*time.Millisecond, 100)
	pc.waitMembers(1)
	ids := pc.addResources(2)
	pc.h.waitFor("2 resources running", 20*time.Second, func() bool { return len(pc.h.runningBy()) == 2 })
	alive := func() bool {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	starts := func() int {
		n := 0
		for _, eps := range p.logEvents(t, 0, "resource starting") {
			n += len(eps)
		}
		return n
	}
	if n := starts(); n != 2 {
		t.Fatalf("%d resource starts before the reload, want 2", n)
	}
	// A changed pipeline (MockInput rate 100 -> 50): both restart.
	if err := os.WriteFile(p.conf, []byte(pc.memberYAML(p, 100*time.Millisecond, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	pc.h.waitFor("the reload applied and both resources restarted", 20*time.Second, func() bool {
		return !alive() || (logHas(t, p, "config file reloaded") && starts() == 4 && len(pc.h.runningBy()) == 2)
	})
	if !alive() {
		t.Fatalf("SIGHUP ended the member: %v", p.err)
	}
	// A broken file: logged, nothing restarts, the member lives on.
	if err := os.WriteFile(p.conf, []byte("inputs: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	pc.h.waitFor("the broken config rejected", 20*time.Second, func() bool { return !alive() || logHas(t, p, "rejected") })
	if !alive() {
		t.Fatalf("SIGHUP with a broken config ended the member: %v", p.err)
	}
	if n := starts(); n != 4 {
		t.Errorf("%d resource starts after the rejected reload, want 4", n)
	}
	_ = ids
}

func logHas(t *testing.T, p *proc, s string) bool {
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}
