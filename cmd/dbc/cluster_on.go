//go:build !dbc_nocluster

package main

import (
	"io"

	"github.com/dbus-project/dbus/cluster"
	// Every built-in spec in engine.Default: the cluster commands refuse
	// configs and resources whose secret fields hold literal values.
	_ "github.com/dbus-project/dbus/plugins/all"
)

// runCluster is the dispatch point for the cluster commands: package
// cluster owns them (clusters, members, resources, rebalance, checkpoints,
// config) and their flags (-zk, -root, -json, -timeout). args is the
// command line after "dbc" (after "dbc cluster" for the explicit form).
// Build with -tags dbc_nocluster to leave them out.
func runCluster(args []string, stdout, stderr io.Writer) int {
	return cluster.RunCLI(args, stdout, stderr)
}
