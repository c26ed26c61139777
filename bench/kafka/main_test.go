package kafkabench

import (
	"os"
	"testing"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

func TestMain(m *testing.M) {
	kfaketest.MaybeServe() // the broker processes of BenchmarkKafkaOutputTLSBrokerProcess
	os.Exit(m.Run())
}
