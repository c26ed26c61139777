package engine_test

import "testing"

// BenchmarkEngineHotPath moves b.N packets input -> fused filter -> ring ->
// output through the engine (window, acks, recycling) with the stepping
// input of TestEngineAllocsPerPacketZero; ns/op is per packet.
func BenchmarkEngineHotPath(b *testing.B) {
	const per = 4096
	step, stop := stepEngine(b, per, 16384)
	step() // warm up
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += per {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	stop()
}
