// Command dbc is the dbus operator's console.
//
// For one dbusd, through its admin API:
//
//	dbc [-addr HOST:PORT] [-token T | -token-file F] [-json] COMMAND [ARGS]
//
//	status                 version, uptime, config generation, last reload
//	plugins [CLASS]        registered plugin classes; one class's config fields
//	dag                    nodes with rates, drops and edges
//	queues                 ring depths, pools and in-flight windows
//	checkpoints            committed checkpoints per input and stream
//	tap NODE [-max N] [-every N] [-payload-bytes N] [-timeout D]
//	                       print sampled packets passing NODE
//	pause INPUT            stop reading an input (packets in flight finish)
//	resume INPUT
//	query NAME [KEY=VALUE ...]
//	                       state of a running queryable plugin (Cardinality
//	                       estimates, Funnel conversions), as its JSON
//	snapshot INPUT [DB.TABLE ...]
//	                       ad hoc snapshot of tables by a MysqlbinlogInput
//	                       while it streams; without tables: its progress
//	reload [FILE|-]        apply FILE (or stdin) as the new config; without
//	                       FILE dbusd re-reads its config file
//
// For a cluster (ZooKeeper), package cluster implements the commands:
//
//	dbc cluster [-zk ...] COMMAND ...      explicit form
//	dbc [-zk ...] clusters|members|resources|rebalance|config ...
//	dbc -zk HOSTS checkpoints -cluster C   (-zk or -root selects the cluster form)
//
// -addr defaults to $DBC_ADDR or 127.0.0.1:8714, -token to $DBC_TOKEN.
// Exit status: 0 done, 1 the request failed, 2 bad usage.
package main
