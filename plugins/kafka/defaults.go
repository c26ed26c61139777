package kafka

import "time"

// defaultInFlight is KafkaOutput's in_flight when the config gives none:
// engine batches (engine.batch, 256 packets) handed to the client before
// the first is acked. The client can only fill its per-partition batches
// and keep requests in flight to every broker with records it has been
// given; at the engine's default of 1 (2 slots, 512 records spread over
// the partitions) each produce request carried a few dozen records and
// the pipeline ran at 512 records per broker round trip (issue 12:
// 0.07x of the slower bare end). 16 x 256 = 4096 records stays under the
// default batch_records (the client never blocks) and half the input's
// default pool.
const defaultInFlight = 16

// DefaultInFlight implements engine.InFlightDefaulter.
func (o *Output) DefaultInFlight() int { return defaultInFlight }

// ProducerDefaults are the client settings of KafkaOutput's default
// profile (benchmarks give a bare franz-go producer the same ones).
type ProducerDefaults struct {
	BatchRecords int // kgo.MaxBufferedRecords
	Linger       time.Duration
	BatchBytes   int64
	InFlight     int // engine batches in flight
}

// DefaultProducer returns the default profile's client settings.
func DefaultProducer() ProducerDefaults {
	p := profiles[""]
	return ProducerDefaults{BatchRecords: p.batchRecords, Linger: p.linger, BatchBytes: p.batchBytes, InFlight: defaultInFlight}
}
