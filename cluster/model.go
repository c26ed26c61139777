package cluster

import (
	"fmt"
	"path"
	"time"

	"github.com/dbus-project/dbus/cluster/assign"
	"github.com/dbus-project/dbus/engine"
)

// ResourceSpec is a registered resource: one unit of input work (a MySQL
// server's binlog, a Kafka topic or partition set, a file glob) bound to
// a distributed input of the pipeline config by name. Config is merged
// over that input's config when the resource runs; it must not carry
// secrets (see CheckNoSecrets).
type ResourceSpec struct {
	ID     string         `json:"id"`
	Input  string         `json:"input"`
	Config map[string]any `json:"config,omitempty"`
}

// MemberInfo is the data of a member's ephemeral znode.
type MemberInfo struct {
	Name    string    `json:"name"`
	Weight  int       `json:"weight"`
	Admin   string    `json:"admin,omitempty"`
	Started time.Time `json:"started"`
	// Running lists the resources the member runs now (sorted). The
	// leader reads it to learn that a released resource stopped.
	Running []string `json:"running"`
	// Failed maps a resource to why the member could not run it.
	Failed map[string]string `json:"failed,omitempty"`
	// Config is the pushed cluster config version the member runs (0:
	// its own file); ConfigError says why a newer version was rejected.
	Config      int    `json:"config,omitempty"`
	ConfigError string `json:"config_error,omitempty"`
}

// OwnerRecord is the data of owners/<resource>: the fencing token. Its
// znode version changes whenever the leader grants the resource, so a
// checkpoint write conditioned on the version read at start fails once
// the resource was granted again.
type OwnerRecord struct {
	Member string `json:"member"`
	Epoch  uint64 `json:"epoch"`
}

// CheckpointRecord is the data of checkpoints/<resource>.
type CheckpointRecord struct {
	Member      string                       `json:"member"`
	Epoch       uint64                       `json:"epoch"`
	Time        time.Time                    `json:"time"`
	Checkpoints map[string]engine.Checkpoint `json:"checkpoints"`
}

// Assignment is the data of the assignment znode, written by the leader.
type Assignment struct {
	Leader string       `json:"leader"`
	Time   time.Time    `json:"time"`
	State  assign.State `json:"state"`
}

// ConfigVersion describes one pushed cluster config.
type ConfigVersion struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Size    int       `json:"size"`
	Comment string    `json:"comment,omitempty"`
}

// paths builds the znode paths of one cluster. See DESIGN.md.
type paths struct {
	root    string // e.g. /dbus
	cluster string // e.g. /dbus/clusters/prod
}

func newPaths(root, cluster string) paths {
	return paths{root: root, cluster: path.Join(root, "clusters", cluster)}
}

func (p paths) clusters() string            { return path.Join(p.root, "clusters") }
func (p paths) members() string             { return p.cluster + "/members" }
func (p paths) member(name string) string   { return p.cluster + "/members/" + name }
func (p paths) election() string            { return p.cluster + "/election" }
func (p paths) resources() string           { return p.cluster + "/resources" }
func (p paths) resource(id string) string   { return p.cluster + "/resources/" + id }
func (p paths) owners() string              { return p.cluster + "/owners" }
func (p paths) owner(id string) string      { return p.cluster + "/owners/" + id }
func (p paths) checkpoints() string         { return p.cluster + "/checkpoints" }
func (p paths) checkpoint(id string) string { return p.cluster + "/checkpoints/" + id }
func (p paths) assignment() string          { return p.cluster + "/assignment" }
func (p paths) rebalance() string           { return p.cluster + "/rebalance" }
func (p paths) config() string              { return p.cluster + "/config" }
func (p paths) configVersion(v int) string  { return fmt.Sprintf("%s/config/v%010d", p.cluster, v) }

// layout lists the persistent znodes of a cluster, created on first use.
func (p paths) layout() []string {
	return []string{p.root, p.clusters(), p.cluster, p.members(), p.election(), p.resources(),
		p.owners(), p.checkpoints(), p.assignment(), p.rebalance(), p.config(), p.leftDir()}
}

// leftDir holds left/<member>: created by a member that leaves in
// order, just before it deletes its member znode; the leader deletes it
// when it sees the member gone. A member gone without one was lost
// (dbus_cluster_member_losses_total).
func (p paths) leftDir() string               { return p.cluster + "/left" }
func (p paths) leftMember(name string) string { return p.cluster + "/left/" + name }
