// Package binlog holds the binlog benchmarks: MysqlbinlogInput ->
// MockOutput-like counting sink against a bare go-mysql loop decoding the
// same binlog range in the same run (rows/s, ratio, allocations per row).
// They need the test MariaDB (DBUS_TEST_MYSQL_ADDR, see .ci/mariadb.sh)
// and skip without it.
package binlog
