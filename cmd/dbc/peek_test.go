package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/internal/testenv"

	_ "github.com/go-mysql-org/go-mysql/driver"
)

func TestBinlogDbcPeekShowsRows(t *testing.T) {
	addr, user, password := testenv.MySQL(t)
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@%s?", user, password, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS dbcpeek", "CREATE TABLE IF NOT EXISTS dbcpeek.t (id INT PRIMARY KEY, v VARCHAR(20))", "DELETE FROM dbcpeek.t"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var out testenv.SyncBuffer
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"peek", "-mysql", addr, "-user", user, "-password", password, "-include", "dbcpeek.*", "-duration", "3s"}, nil, &out, &errb)
	}()
	// Rows written once peek has resolved its start position are shown.
	testenv.Eventually(t, 3*time.Second, func() bool { return strings.Contains(out.String(), "# peeking") }, "dbc peek did not start")
	for i := 1; i <= 3; i++ {
		if _, err := db.Exec("INSERT INTO dbcpeek.t VALUES (?, ?)", i, fmt.Sprintf("row-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if code := <-done; code != 0 {
		t.Fatalf("dbc peek exit %d: %s", code, errb.String())
	}
	rows := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("peek line %q: %v", line, err)
		}
		if strings.Contains(line, "row-") {
			rows++
		}
	}
	if rows != 3 {
		t.Fatalf("peek showed %d rows, want 3:\n%s", rows, out.String())
	}
	if !strings.Contains(out.String(), "# rows") {
		t.Fatalf("no rate line:\n%s", out.String())
	}
}

func TestBinlogDbcPeekBadStart(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"peek", "-start", "nonsense"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-start") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
