package kafka

import "time"

// defaultInFlight is KafkaOutput's in_flight when the config gives none:
// engine batches (engine.batch, 256 packets) handed to the client before
// the first is acked. The client can only fill its per-partition batches
// and keep requests in flight to every broker with records it has been
// given; at the engine's default of 1 (2 slots, 512 records spread over
// the partitions) each produce request carried a few dozen records and
// the pipeline ran at 512 records per broker round trip (issue 12:
// 0.07x of the slower bare end).
//
// A slot holds one engine batch whatever its size, and the engine hands
// a free slot whatever its ring holds: when a produce response acks many
// batches at once, the freed slots take small batches. With single-row
// transactions (issue 12's updates load) engine batches averaged 50-95
// packets, so 16 slots capped the client at about 1500 records in flight
// while the storing broker's round trips dominated (a trace of the run:
// all 16 slots taken 60 % of the time, the input blocked on the output's
// full ring). 64 slots let the input's pool (8192 packets by default) be
// the bound instead, as MaxBufferedRecords is for a bare producer; with
// the default pool the client never holds more than its batch_records
// (8192), so Produce does not block.
const defaultInFlight = 64

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
