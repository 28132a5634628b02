package pipeline

import (
	"reflect"
	"testing"
)

func TestDealSharesPartitionsInOrder(t *testing.T) {
	offsets := func(ps ...int) map[int]int64 {
		m := map[int]int64{}
		for _, p := range ps {
			m[p] = int64(100 + p)
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		partitions map[int]int64
		lanes      int
		want       []map[int]int64
	}{
		{"even", offsets(0, 1, 2, 3), 2, []map[int]int64{offsets(0, 2), offsets(1, 3)}},
		{"uneven", offsets(3, 7, 9), 2, []map[int]int64{offsets(3, 9), offsets(7)}},
		{"fewer partitions than lanes", offsets(5), 4, []map[int]int64{offsets(5)}},
		{"one lane", offsets(0, 1, 2), 1, []map[int]int64{offsets(0, 1, 2)}},
		{"none", offsets(), 2, []map[int]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deal(tc.partitions, tc.lanes); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("deal(%v, %d) = %v, want %v", tc.partitions, tc.lanes, got, tc.want)
			}
		})
	}
}
