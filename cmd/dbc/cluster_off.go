//go:build dbc_nocluster

package main

import (
	"fmt"
	"io"
)

// runCluster is the dispatch point for the cluster commands. Builds with
// -tags dbc_nocluster (for when package cluster does not build) have none.
func runCluster(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "cluster commands: not available in this build")
	return 2
}
