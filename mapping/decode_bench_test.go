package mapping_test

import (
	"testing"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

// BenchmarkDecode measures Decode on the generator's event mix, the
// per-event CPU floor of the pipeline.
func BenchmarkDecode(b *testing.B) {
	raws := mappingtest.NewGenerator(1, 500, 200, 20).Events(1000)
	size := 0
	for _, r := range raws {
		size += len(r)
	}
	b.SetBytes(int64(size / len(raws)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := mapping.Decode(raws[i%len(raws)], "x"); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
