// Command dbusd runs a dbus pipeline.
//
//	dbusd -conf FILE                 run until SIGINT/SIGTERM (orderly shutdown, exit 0)
//	dbusd -conf FILE -t [-offline]   validate the config and exit (every error listed)
//	dbusd -dryrun [-conf FILE]       replace outputs with acking sinks and report packets/s
//	dbusd -duration 10s              stop cleanly after a duration
//	dbusd -admin 127.0.0.1:8714      serve the admin API, /metrics and /ui/
//
// Without -conf, dbusd runs its embedded default pipeline (a dry run of
// MockInput -> MockFilter -> MockOutput). SIGHUP reloads the config file
// as a diff. A config with a cluster: section runs this process as a
// cluster member (see package cluster).
package main
