// Package testenv gives integration tests the addresses of the real
// services that .ci/run starts (MariaDB, ZooKeeper). Addresses come from
// environment variables; when one is missing the test is skipped, except
// under CI=true, where a missing service is a failure. Safe for
// concurrent use; it only reads the environment.
//
// Waiting: tests never sleep a fixed time to "let it settle". They wait for
// a condition with Eventually (or WaitFor), whose deadline is stretched by
// Scale() under the race detector or DBUS_TEST_TIMEOUT_SCALE.
package testenv
