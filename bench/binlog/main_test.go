package binlog

import (
	"os"
	"testing"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

func TestMain(m *testing.M) {
	kfaketest.MaybeServe() // the broker process of BenchmarkBinlogToKafka
	os.Exit(m.Run())
}
