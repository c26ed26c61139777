package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/go-zookeeper/zk"
	"gopkg.in/yaml.v3"
)

// Admin is the operator's API over ZooKeeper (what dbc calls). It reads
// and writes only the cluster znodes; it never talks to members. Safe for
// use by one goroutine at a time.
type Admin struct {
	s    *session
	root string
	// Registry, when set, lets AddResource check that the resource's input
	// class is distributed.
	Registry *engine.Registry
}

// AdminOptions configure Dial.
type AdminOptions struct {
	Root           string // default /dbus
	SessionTimeout time.Duration
	ConnectTimeout time.Duration
	Auth           *AuthConfig
	Credentials    *Credentials
	Logger         *slog.Logger
}

// Dial connects an Admin to the ZooKeeper servers.
func Dial(ctx context.Context, servers []string, o AdminOptions) (*Admin, error) {
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Credentials == nil {
		o.Credentials = &Credentials{vals: map[string]string{}}
	}
	s, err := connect(ctx, servers, o.SessionTimeout, o.ConnectTimeout, o.Auth, o.Credentials, nil, o.Logger)
	if err != nil {
		return nil, err
	}
	return &Admin{s: s, root: o.Root}, nil
}

// Close ends the admin session.
func (a *Admin) Close() { a.s.close() }

func (a *Admin) paths(cluster string) (paths, error) {
	if !ValidName(cluster) {
		return paths{}, fmt.Errorf("cluster name %q: use letters, digits, '.', '_' or '-'", cluster)
	}
	return newPaths(a.root, cluster), nil
}

func (a *Admin) existing(cluster string) (paths, error) {
	p, err := a.paths(cluster)
	if err != nil {
		return p, err
	}
	ok, _, err := a.s.conn.Exists(p.cluster)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, fmt.Errorf("no cluster %q under %s (dbc clusters lists them)", cluster, a.root)
	}
	return p, nil
}

// Clusters lists the clusters.
func (a *Admin) Clusters() ([]string, error) {
	kids, _, err := a.s.conn.Children(newPaths(a.root, "x").clusters())
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	sort.Strings(kids)
	return kids, err
}

// CreateCluster creates a cluster's znodes (members create them too).
func (a *Admin) CreateCluster(cluster string) error {
	p, err := a.paths(cluster)
	if err != nil {
		return err
	}
	return a.s.ensure(p.layout()...)
}

// MemberStatus is a member as dbc shows it.
type MemberStatus struct {
	MemberInfo
	Leader bool     `json:"leader"`
	Owned  []string `json:"owned"` // granted by the assignment
}

// Members lists the live members, the leader marked.
func (a *Admin) Members(cluster string) ([]MemberStatus, error) {
	p, err := a.existing(cluster)
	if err != nil {
		return nil, err
	}
	names, _, err := a.s.conn.Children(p.members())
	if err != nil {
		return nil, err
	}
	leader := a.leader(p)
	asg, _ := a.assignment(p)
	owned := map[string][]string{}
	for _, r := range asg.State.Resources {
		if r.Owner != "" {
			owned[r.Owner] = append(owned[r.Owner], r.ID)
		}
	}
	sort.Strings(names)
	infos := make([]*MemberInfo, len(names))
	err = forEachParallel(len(names), func(i int) error {
		var mi MemberInfo
		if _, err := a.s.getJSON(p.member(names[i]), &mi); err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		}
		infos[i] = &mi
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []MemberStatus
	for i, n := range names {
		if mi := infos[i]; mi != nil {
			mi.Name = n
			out = append(out, MemberStatus{MemberInfo: *mi, Leader: n == leader, Owned: owned[n]})
		}
	}
	return out, nil
}

// leader returns the member holding the lowest election node.
func (a *Admin) leader(p paths) string {
	kids, _, err := a.s.conn.Children(p.election())
	if err != nil || len(kids) == 0 {
		return ""
	}
	sort.Slice(kids, func(i, j int) bool { return seqOf(kids[i]) < seqOf(kids[j]) })
	data, _, err := a.s.conn.Get(p.election() + "/" + kids[0])
	if err != nil {
		return ""
	}
	return string(data)
}

func (a *Admin) assignment(p paths) (Assignment, error) {
	var asg Assignment
	_, err := a.s.getJSON(p.assignment(), &asg)
	return asg, err
}

// AddResource registers a resource. Its id must be a valid name, its
// config must carry no credentials, and when a cluster config was pushed
// its input must be one of that config's inputs (and distributed, when
// a.Registry is set).
func (a *Admin) AddResource(cluster string, spec ResourceSpec) error {
	p, err := a.paths(cluster)
	if err != nil {
		return err
	}
	if !ValidName(spec.ID) {
		return fmt.Errorf("resource id %q: use letters, digits, '.', '_' or '-' (it becomes a znode name)", spec.ID)
	}
	if spec.Input == "" {
		return fmt.Errorf("resource %s: input is required (the name of a distributed input in the pipeline config)", spec.ID)
	}
	class, err := a.checkInput(p, spec)
	if err != nil {
		return err
	}
	if err := CheckNoSecrets(spec.Config, secretSpecs(a.registry(), class)...); err != nil {
		return fmt.Errorf("resource %s: %w", spec.ID, err)
	}
	if err := a.checkPerResource(p, spec, class); err != nil {
		return err
	}
	if err := a.s.ensure(p.layout()...); err != nil {
		return err
	}
	_, err = a.s.conn.Create(p.resource(spec.ID), mustJSON(spec), 0, a.s.acl)
	if errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("resource %s already exists in cluster %s (remove it first)", spec.ID, cluster)
	}
	return err
}

// checkPerResource enforces engine.Field.PerResource: a resource of an
// input whose class is known must set such a field, and no other
// resource of the same input may use the same value (class unknown: the
// PerResource fields of every registered distributed input are checked
// for duplicates).
func (a *Admin) checkPerResource(p paths, spec ResourceSpec, class string) error {
	check, err := a.perResourceKeys(spec, class)
	if err != nil || len(check) == 0 {
		return err
	}
	ids, _, err := a.s.conn.Children(p.resources())
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	for _, id := range ids {
		var other ResourceSpec
		if _, err := a.s.getJSON(p.resource(id), &other); err != nil || id == spec.ID {
			continue
		}
		other.ID = id
		if err := samePerResource(spec, other, check); err != nil {
			return err
		}
	}
	return nil
}

// samePerResource fails when other (of the same input) uses one of
// spec's values of the keys check.
func samePerResource(spec, other ResourceSpec, check []string) error {
	if other.Input != spec.Input {
		return nil
	}
	for _, n := range check {
		if v, ok := other.Config[n]; ok && fmt.Sprint(v) == fmt.Sprint(spec.Config[n]) {
			return fmt.Errorf("resource %s: %s %v is already used by resource %s of input %q: every resource needs its own value", spec.ID, n, spec.Config[n], other.ID, spec.Input)
		}
	}
	return nil
}

// perResourceKeys returns the PerResource keys spec sets (see
// checkPerResource), failing when the class is known and spec lacks one.
func (a *Admin) perResourceKeys(spec ResourceSpec, class string) ([]string, error) {
	var names []string
	reg := a.registry()
	if s, ok := reg.Lookup(class); class != "" && ok {
		for _, f := range s.Fields {
			if !f.PerResource {
				continue
			}
			if _, set := spec.Config[f.Name]; !set {
				return nil, fmt.Errorf("resource %s: input %q (class %s): set %q in the resource's config: every resource needs its own value", spec.ID, spec.Input, class, f.Name)
			}
			names = append(names, f.Name)
		}
	} else {
		for _, s := range reg.Specs() {
			if s.Kind == engine.KindInput && s.Distributed {
				for _, f := range s.Fields {
					if f.PerResource && !slices.Contains(names, f.Name) {
						names = append(names, f.Name)
					}
				}
			}
		}
	}
	var check []string
	for _, n := range names {
		if _, set := spec.Config[n]; set {
			check = append(check, n)
		}
	}
	return check, nil
}

// AddResources registers many resources at once (dbc resources add
// -file): each is checked as AddResource checks it, and against the
// others of the batch; then they are created in multis of at most 500
// znodes (each multi all or nothing). It returns how many were created.
// One session and a few requests instead of a dbc run per resource.
func (a *Admin) AddResources(cluster string, specs []ResourceSpec) (int, error) {
	p, err := a.paths(cluster)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	var errs []error
	for i, spec := range specs {
		if !ValidName(spec.ID) {
			errs = append(errs, fmt.Errorf("resource id %q: use letters, digits, '.', '_' or '-' (it becomes a znode name)", spec.ID))
			continue
		}
		if seen[spec.ID] {
			errs = append(errs, fmt.Errorf("resource %s: listed twice", spec.ID))
			continue
		}
		seen[spec.ID] = true
		if spec.Input == "" {
			errs = append(errs, fmt.Errorf("resource %s: input is required (the name of a distributed input in the pipeline config)", spec.ID))
			continue
		}
		class, err := a.checkInput(p, spec)
		if err == nil {
			if err = CheckNoSecrets(spec.Config, secretSpecs(a.registry(), class)...); err != nil {
				err = fmt.Errorf("resource %s: %w", spec.ID, err)
			}
		}
		if err == nil {
			err = a.checkPerResource(p, spec, class)
		}
		if err == nil {
			var check []string
			if check, err = a.perResourceKeys(spec, class); err == nil {
				for _, other := range specs[:i] {
					if err = samePerResource(spec, other, check); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	if err := a.s.ensure(p.layout()...); err != nil {
		return 0, err
	}
	created := 0
	for len(specs) > 0 {
		n := min(len(specs), maxMultiOps)
		var ops []any
		for _, spec := range specs[:n] {
			ops = append(ops, &zk.CreateRequest{Path: p.resource(spec.ID), Data: mustJSON(spec), Acl: a.s.acl})
		}
		resps, err := a.s.conn.Multi(ops...)
		if i, err := multiErr(resps, err); err != nil {
			if i >= 0 && errors.Is(err, zk.ErrNodeExists) {
				return created, fmt.Errorf("resource %s already exists in cluster %s (remove it first); %d of %d created", specs[i].ID, cluster, created, created+len(specs))
			}
			return created, fmt.Errorf("create resources: %w; %d created", err, created)
		}
		created += n
		specs = specs[n:]
	}
	return created, nil
}

// registry returns the registry whose specs say which fields are secret:
// a.Registry, else engine.Default (dbc links every built-in plugin).
func (a *Admin) registry() *engine.Registry {
	if a.Registry != nil {
		return a.Registry
	}
	return engine.Default
}

// checkInput validates spec.Input against the newest pushed config and
// returns its class ("" when no config was pushed).
func (a *Admin) checkInput(p paths, spec ResourceSpec) (string, error) {
	v, data, err := a.latestConfig(p)
	if err != nil || v == 0 {
		return "", err
	}
	var doc struct {
		Inputs []struct {
			Name  string `yaml:"name"`
			Class string `yaml:"class"`
		} `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", nil // not ours to judge here; push validated it
	}
	var names []string
	for _, in := range doc.Inputs {
		names = append(names, in.Name)
		if in.Name != spec.Input {
			continue
		}
		if a.Registry != nil {
			if s, ok := a.Registry.Lookup(in.Class); ok && !s.Distributed {
				return "", fmt.Errorf("resource %s: input %q (class %s) does not accept cluster resources", spec.ID, spec.Input, in.Class)
			}
		}
		return in.Class, nil
	}
	return "", fmt.Errorf("resource %s: unknown input %q: cluster config v%d has inputs %s", spec.ID, spec.Input, v, listOrNone(names))
}

// RemoveResource unregisters a resource; its owner stops it. With purge,
// its checkpoint is deleted too (else re-adding it resumes from there).
func (a *Admin) RemoveResource(cluster, id string, purge bool) error {
	p, err := a.existing(cluster)
	if err != nil {
		return err
	}
	if err := a.s.conn.Delete(p.resource(id), -1); err != nil {
		if errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("no resource %s in cluster %s", id, cluster)
		}
		return err
	}
	if purge {
		if err := a.s.conn.Delete(p.checkpoint(id), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
	}
	return nil
}

// ResourceStatus is a resource as dbc shows it.
type ResourceStatus struct {
	ResourceSpec
	Owner     string `json:"owner,omitempty"`
	Epoch     uint64 `json:"epoch,omitempty"`
	Target    string `json:"target,omitempty"`
	Releasing bool   `json:"releasing,omitempty"`
	// Failed is why the owner cannot run the resource (it is retried
	// with backoff and does not count toward the owner's share).
	Failed string `json:"failed,omitempty"`
	// CheckpointTime is when the checkpoint was last written, by whom at
	// which epoch; Lag is how long ago.
	CheckpointTime   time.Time     `json:"checkpoint_time,omitzero"`
	CheckpointMember string        `json:"checkpoint_member,omitempty"`
	CheckpointEpoch  uint64        `json:"checkpoint_epoch,omitempty"`
	Lag              time.Duration `json:"lag,omitempty"`
}

// Resources lists every resource with owner, epoch and checkpoint lag.
func (a *Admin) Resources(cluster string) ([]ResourceStatus, error) {
	p, err := a.existing(cluster)
	if err != nil {
		return nil, err
	}
	ids, _, err := a.s.conn.Children(p.resources())
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	asg, _ := a.assignment(p)
	byID := map[string]int{}
	for i, r := range asg.State.Resources {
		byID[r.ID] = i
	}
	// Failures as the members report them: member -> resource -> why.
	failures := map[string]map[string]string{}
	if names, _, err := a.s.conn.Children(p.members()); err == nil {
		for _, n := range names {
			var mi MemberInfo
			if _, err := a.s.getJSON(p.member(n), &mi); err == nil && len(mi.Failed) > 0 {
				failures[n] = mi.Failed
			}
		}
	}
	now := time.Now()
	var out []ResourceStatus
	for _, id := range ids {
		var rs ResourceStatus
		if _, err := a.s.getJSON(p.resource(id), &rs.ResourceSpec); err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return nil, err
		}
		rs.ID = id
		var own OwnerRecord
		if _, err := a.s.getJSON(p.owner(id), &own); err == nil {
			rs.Owner, rs.Epoch = own.Member, own.Epoch
		}
		if rs.Owner != "" {
			rs.Failed = failures[rs.Owner][id]
		}
		if i, ok := byID[id]; ok {
			r := asg.State.Resources[i]
			rs.Target, rs.Releasing = r.Target, r.Releasing
		}
		var cp CheckpointRecord
		if _, err := a.s.getJSON(p.checkpoint(id), &cp); err == nil && !cp.Time.IsZero() {
			rs.CheckpointTime, rs.CheckpointMember, rs.CheckpointEpoch = cp.Time, cp.Member, cp.Epoch
			rs.Lag = now.Sub(cp.Time).Round(time.Millisecond)
		}
		out = append(out, rs)
	}
	return out, nil
}

// Rebalance asks the leader to recompute the assignment.
func (a *Admin) Rebalance(cluster string) error {
	p, err := a.existing(cluster)
	if err != nil {
		return err
	}
	_, err = a.s.conn.Set(p.rebalance(), mustJSON(map[string]any{"requested": time.Now().UTC()}), -1)
	return err
}

// Checkpoints returns every resource's checkpoint record.
func (a *Admin) Checkpoints(cluster string) (map[string]CheckpointRecord, error) {
	p, err := a.existing(cluster)
	if err != nil {
		return nil, err
	}
	ids, _, err := a.s.conn.Children(p.checkpoints())
	if err != nil {
		return nil, err
	}
	out := map[string]CheckpointRecord{}
	for _, id := range ids {
		data, _, err := a.s.conn.Get(p.checkpoint(id))
		if err != nil {
			continue
		}
		rec, err := decodeCheckpointRecord(data)
		if err != nil {
			return nil, fmt.Errorf("checkpoint of %s: %w", id, err)
		}
		out[id] = rec
	}
	return out, nil
}

// PushConfig stores data as the next version of the cluster config and
// returns its version. The config must be valid YAML whose secret fields
// hold references, not values, and without credentials in DSNs.
func (a *Admin) PushConfig(cluster string, data []byte, comment string) (int, error) {
	p, err := a.paths(cluster)
	if err != nil {
		return 0, err
	}
	var probe any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return 0, fmt.Errorf("config is not valid YAML: %v", err)
	}
	if err := checkConfigSecrets(data, a.registry()); err != nil {
		return 0, fmt.Errorf("config push refused: %w", err)
	}
	if a.Registry != nil {
		// References (${env:}, ${file:}) resolve on the members, not here.
		if _, err := engine.ParseWith(fmt.Sprintf("cluster %s config", cluster), data, a.Registry, engine.ParseOptions{KeepReferences: true}); err != nil {
			return 0, fmt.Errorf("config push refused: %w", err)
		}
	}
	if err := a.s.ensure(p.layout()...); err != nil {
		return 0, err
	}
	if err := a.checkCoversResources(p, data); err != nil {
		return 0, fmt.Errorf("config push refused: %w", err)
	}
	// The version is the config znode's child count + 1, claimed with a
	// conditional create (a concurrent push gets NodeExists and retries).
	for range 10 {
		v, _, err := a.latestConfig(p)
		if err != nil {
			return 0, err
		}
		meta := mustJSON(ConfigVersion{Version: v + 1, Time: time.Now().UTC(), Size: len(data), Comment: comment})
		resps, err := a.s.conn.Multi(
			&zk.CreateRequest{Path: p.configVersion(v + 1), Data: data, Acl: a.s.acl},
			&zk.SetDataRequest{Path: p.config(), Data: meta, Version: -1},
		)
		if _, err := multiErr(resps, err); err == nil {
			return v + 1, nil
		} else if !errors.Is(err, zk.ErrNodeExists) {
			return 0, err
		}
	}
	return 0, errors.New("config push: too many concurrent pushes")
}

// checkCoversResources refuses a config that lacks the input of a
// registered resource (members would reject it anyway).
func (a *Admin) checkCoversResources(p paths, data []byte) error {
	var doc struct {
		Inputs []struct {
			Name string `yaml:"name"`
		} `yaml:"inputs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config is not a pipeline config: %v", err)
	}
	have := map[string]bool{}
	for _, in := range doc.Inputs {
		have[in.Name] = true
	}
	ids, _, err := a.s.conn.Children(p.resources())
	if err != nil {
		return err
	}
	sort.Strings(ids)
	lacking := map[string][]string{} // input -> resources
	for _, id := range ids {
		var spec ResourceSpec
		if _, err := a.s.getJSON(p.resource(id), &spec); err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return err
		}
		if !have[spec.Input] {
			lacking[spec.Input] = append(lacking[spec.Input], id)
		}
	}
	var errs []error
	for _, in := range sortedKeys(lacking) {
		errs = append(errs, fmt.Errorf("resources %s use input %q, which this config lacks (keep the input or remove the resources first)", strings.Join(lacking[in], ", "), in))
	}
	return errors.Join(errs...)
}

func (a *Admin) latestConfig(p paths) (int, []byte, error) {
	kids, _, err := a.s.conn.Children(p.config())
	if errors.Is(err, zk.ErrNoNode) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	best := 0
	for _, k := range kids {
		if v, err := strconv.Atoi(strings.TrimPrefix(k, "v")); err == nil && v > best {
			best = v
		}
	}
	if best == 0 {
		return 0, nil, nil
	}
	data, _, err := a.s.conn.Get(p.configVersion(best))
	return best, data, err
}

// ConfigHistory lists the pushed config versions, oldest first.
func (a *Admin) ConfigHistory(cluster string) ([]ConfigVersion, error) {
	p, err := a.existing(cluster)
	if err != nil {
		return nil, err
	}
	kids, _, err := a.s.conn.Children(p.config())
	if err != nil {
		return nil, err
	}
	var out []ConfigVersion
	for _, k := range kids {
		v, err := strconv.Atoi(strings.TrimPrefix(k, "v"))
		if err != nil {
			continue
		}
		data, st, err := a.s.conn.Get(p.configVersion(v))
		if err != nil {
			continue
		}
		out = append(out, ConfigVersion{Version: v, Time: time.UnixMilli(st.Ctime).UTC(), Size: len(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Config returns config version v (0: the newest).
func (a *Admin) Config(cluster string, v int) (int, []byte, error) {
	p, err := a.existing(cluster)
	if err != nil {
		return 0, nil, err
	}
	if v == 0 {
		v, data, err := a.latestConfig(p)
		if err == nil && v == 0 {
			err = fmt.Errorf("cluster %s has no pushed config", cluster)
		}
		return v, data, err
	}
	data, _, err := a.s.conn.Get(p.configVersion(v))
	if errors.Is(err, zk.ErrNoNode) {
		return 0, nil, fmt.Errorf("cluster %s has no config version %d", cluster, v)
	}
	return v, data, err
}

// DiffConfig returns a line diff from version v1 to v2 (0: newest).
func (a *Admin) DiffConfig(cluster string, v1, v2 int) (string, error) {
	v1, d1, err := a.Config(cluster, v1)
	if err != nil {
		return "", err
	}
	v2, d2, err := a.Config(cluster, v2)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("--- v%d\n+++ v%d\n", v1, v2) + lineDiff(string(d1), string(d2)), nil
}

// lineDiff renders an LCS line diff ("-", "+", " " prefixes).
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			sb.WriteString("  " + x[i] + "\n")
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("- " + x[i] + "\n")
			i++
		default:
			sb.WriteString("+ " + y[j] + "\n")
			j++
		}
	}
	return sb.String()
}
