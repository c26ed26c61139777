// Command dbusbench runs dbus's throughput profiles (`make bench`): Go
// micro-benchmarks of the hot paths, end-to-end dry-run scenarios against
// baselines measured in the same run, and the plugin benchmarks, then
// prints one table and writes it with the machine's CPU and Go version to
// a report file.
package main
