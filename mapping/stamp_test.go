package mapping_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func stamp(sec int, id string) mapping.Stamp {
	return mapping.Stamp{At: t0.Add(time.Duration(sec) * time.Second), MessageID: id}
}

func TestStampAfter(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		s, o mapping.Stamp
		want bool
	}{
		{"later time wins", stamp(2, "a"), stamp(1, "z"), true},
		{"earlier time loses", stamp(1, "z"), stamp(2, "a"), false},
		{"tie: greater messageId wins", stamp(1, "m-b"), stamp(1, "m-a"), true},
		{"tie: smaller messageId loses", stamp(1, "m-a"), stamp(1, "m-b"), false},
		{"identical stamps: neither wins", stamp(1, "m"), stamp(1, "m"), false},
		{"messageIds compare bytewise", stamp(1, "m-10"), stamp(1, "m-9"), false},
		{"one microsecond later wins", mapping.Stamp{At: t0.Add(time.Microsecond), MessageID: "a"}, stamp(0, "b"), true},
		{"same instant in another zone is a tie", mapping.Stamp{At: t0.In(paris), MessageID: "b"}, stamp(0, "a"), true},
		{"same instant in another zone, smaller id", mapping.Stamp{At: t0.In(paris), MessageID: "a"}, stamp(0, "b"), false},
		{"anything beats the zero stamp", stamp(-3600, ""), mapping.Stamp{}, true},
	}
	for _, tt := range tests {
		if got := tt.s.After(tt.o); got != tt.want {
			t.Errorf("%s: %+v.After(%+v) = %v, want %v", tt.name, tt.s, tt.o, got, tt.want)
		}
	}
}

// TestStampAfterIsStrictTotalOrder checks, over random stamps, that exactly
// one of a.After(b), b.After(a), a == b holds, and transitivity.
func TestStampAfterIsStrictTotalOrder(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"", "a", "b", "m-1", "m-10", "m-2"}
	random := func() mapping.Stamp { return stamp(r.IntN(3), ids[r.IntN(len(ids))]) }
	for range 2000 {
		a, b, c := random(), random(), random()
		same := a.At.Equal(b.At) && a.MessageID == b.MessageID
		n := 0
		for _, v := range []bool{a.After(b), b.After(a), same} {
			if v {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("not a strict total order: a=%+v b=%+v a.After(b)=%v b.After(a)=%v", a, b, a.After(b), b.After(a))
		}
		if a.After(b) && b.After(c) && !a.After(c) {
			t.Fatalf("not transitive: %+v > %+v > %+v", a, b, c)
		}
	}
}

func obj(kv ...string) mapping.Object {
	o := mapping.Object{}
	for i := 0; i < len(kv); i += 2 {
		o[kv[i]] = json.RawMessage(kv[i+1])
	}
	return o
}

func trait(v string, s mapping.Stamp) mapping.Trait { return mapping.Trait{Value: []byte(v), Stamp: s} }

func TestTraitsMerge(t *testing.T) {
	t.Parallel()
	var tr mapping.Traits // nil: created on first write
	if !tr.Merge(obj("email", `"a@x"`, "plan", `"free"`), stamp(10, "m-1")) {
		t.Fatal("first Merge reported no change")
	}
	want := mapping.Traits{"email": trait(`"a@x"`, stamp(10, "m-1")), "plan": trait(`"free"`, stamp(10, "m-1"))}
	if !reflect.DeepEqual(tr, want) {
		t.Fatalf("after first Merge: %v, want %v", tr, want)
	}

	steps := []struct {
		name    string
		values  mapping.Object
		s       mapping.Stamp
		changed bool
		after   mapping.Traits
	}{
		{"same event again changes nothing", obj("email", `"a@x"`, "plan", `"free"`), stamp(10, "m-1"), false, want},
		{"older event loses on every key", obj("email", `"old@x"`, "plan", `"old"`), stamp(5, "m-9"), false, want},
		{"tie with a smaller messageId loses", obj("email", `"tie@x"`), stamp(10, "m-0"), false, want},
		{"newer event wins per key, others kept", obj("plan", `"pro"`, "age", `30`), stamp(20, "m-2"),
			true, mapping.Traits{"email": trait(`"a@x"`, stamp(10, "m-1")), "plan": trait(`"pro"`, stamp(20, "m-2")), "age": trait(`30`, stamp(20, "m-2"))}},
		{"mixed: wins on a new key only", obj("plan", `"older"`, "city", `"Paris"`), stamp(15, "m-3"),
			true, mapping.Traits{"email": trait(`"a@x"`, stamp(10, "m-1")), "plan": trait(`"pro"`, stamp(20, "m-2")), "age": trait(`30`, stamp(20, "m-2")), "city": trait(`"Paris"`, stamp(15, "m-3"))}},
		{"tie with a greater messageId wins, null is a value", obj("email", `null`), stamp(10, "m-10"),
			true, mapping.Traits{"email": trait(`null`, stamp(10, "m-10")), "plan": trait(`"pro"`, stamp(20, "m-2")), "age": trait(`30`, stamp(20, "m-2")), "city": trait(`"Paris"`, stamp(15, "m-3"))}},
		{"empty object changes nothing", obj(), stamp(99, "m-99"), false, nil},
	}
	for _, s := range steps {
		before := clone(tr)
		if got := tr.Merge(s.values, s.s); got != s.changed {
			t.Errorf("%s: Merge reported %v, want %v", s.name, got, s.changed)
		}
		expect := s.after
		if expect == nil {
			expect = before
		}
		if !reflect.DeepEqual(tr, expect) {
			t.Errorf("%s:\n got %v\nwant %v", s.name, tr, expect)
		}
	}
}

func clone(t mapping.Traits) mapping.Traits {
	out := mapping.Traits{}
	for k, v := range t {
		out[k] = v
	}
	return out
}

func TestTraitsPut(t *testing.T) {
	t.Parallel()
	var tr mapping.Traits
	if !tr.Put("k", trait(`1`, stamp(1, "a"))) || tr == nil {
		t.Fatalf("Put into nil Traits: %v", tr)
	}
	if tr.Put("k", trait(`0`, stamp(0, "z"))) {
		t.Error("older Put won")
	}
	if tr.Put("k", trait(`1`, stamp(1, "a"))) {
		t.Error("identical Put reported a change")
	}
	if !tr.Put("k", trait(`2`, stamp(1, "b"))) {
		t.Error("tie with greater messageId lost")
	}
	if got := string(tr["k"].Value); got != `2` {
		t.Errorf("value = %s, want 2", got)
	}
}

func TestUnion(t *testing.T) {
	t.Parallel()
	anon := mapping.Traits{
		"email":     trait(`"anon@x"`, stamp(1, "m-anon")),
		"firstName": trait(`"Jane"`, stamp(1, "m-anon")),
		"lastName":  trait(`"Late"`, stamp(30, "m-late")),
	}
	user := mapping.Traits{
		"email":    trait(`"user@x"`, stamp(20, "m-user")),
		"lastName": trait(`"Doe"`, stamp(20, "m-user")),
		"plan":     trait(`"pro"`, stamp(20, "m-user")),
	}
	want := mapping.Traits{
		"email":     trait(`"user@x"`, stamp(20, "m-user")),
		"firstName": trait(`"Jane"`, stamp(1, "m-anon")),
		"lastName":  trait(`"Late"`, stamp(30, "m-late")),
		"plan":      trait(`"pro"`, stamp(20, "m-user")),
	}
	anonBefore, userBefore := clone(anon), clone(user)
	for _, order := range [][]mapping.Traits{{anon, user}, {user, anon}, {anon, user, anon}, {nil, user, nil, anon}} {
		if got := mapping.Union(order...); !reflect.DeepEqual(got, want) {
			t.Errorf("Union in order %v:\n got %v\nwant %v", order, got, want)
		}
	}
	if !reflect.DeepEqual(anon, anonBefore) || !reflect.DeepEqual(user, userBefore) {
		t.Error("Union modified its arguments")
	}
	if got := mapping.Union(); len(got) != 0 {
		t.Errorf("Union() = %v, want empty", got)
	}
	if got := mapping.Union(nil, mapping.Traits{}); len(got) != 0 {
		t.Errorf("Union(nil, {}) = %v, want empty", got)
	}
	// Ties across profiles are broken by messageId.
	a := mapping.Traits{"k": trait(`"a"`, stamp(5, "m-a"))}
	b := mapping.Traits{"k": trait(`"b"`, stamp(5, "m-b"))}
	for _, order := range [][]mapping.Traits{{a, b}, {b, a}} {
		if got := string(mapping.Union(order...)["k"].Value); got != `"b"` {
			t.Errorf("tie: Union = %s, want \"b\"", got)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	s1, s2, s3 := stamp(1, "m-1"), stamp(2, "m-2"), stamp(3, "m-3")
	data := mapping.Traits{
		"email":        trait(`"a@x"`, s1),
		"address":      trait(`{"city":"Paris","geo":{"lat":48.85,"zip":null},"lines":["1 rue"]}`, s2),
		"address.city": trait(`"Exact"`, s3),
		"company":      trait(`{"name":"Acme","address":{"city":"Lyon"}}`, s3),
		"a.b":          trait(`{"c":"via a.b"}`, s1),
		"a":            trait(`{"b":{"c":"via a"},"x":1}`, s2),
		"n":            trait(`null`, s1),
		"s":            trait(`"not an object"`, s1),
	}
	tests := []struct {
		path  string
		want  string
		stamp mapping.Stamp
		ok    bool
	}{
		{"email", `"a@x"`, s1, true},
		{"address.city", `"Exact"`, s3, true}, // an exact key wins over the nested value
		{"address.geo.lat", `48.85`, s2, true},
		{"address.geo", `{"lat":48.85,"zip":null}`, s2, true},
		{"address.geo.zip", `null`, s2, true}, // present but null: found, the builder treats it as missing
		{"address.lines", `["1 rue"]`, s2, true},
		{"company.address.city", `"Lyon"`, s3, true},
		{"company.name", `"Acme"`, s3, true},
		{"a.b.c", `"via a.b"`, s1, true}, // the longest existing prefix is tried first
		{"a.x", `1`, s2, true},
		{"n", `null`, s1, true},
		{"missing", "", mapping.Stamp{}, false},
		{"address.country", "", mapping.Stamp{}, false},
		{"address.lines.0", "", mapping.Stamp{}, false}, // arrays are not indexed
		{"address.city.name", "", mapping.Stamp{}, false},
		{"s.length", "", mapping.Stamp{}, false},
		{"n.x", "", mapping.Stamp{}, false},
		{"Email", "", mapping.Stamp{}, false}, // case-sensitive
		{"", "", mapping.Stamp{}, false},
	}
	for _, tt := range tests {
		got, ok := mapping.Lookup(data, tt.path)
		if ok != tt.ok {
			t.Errorf("Lookup(%q) ok = %v, want %v (got %s)", tt.path, ok, tt.ok, got.Value)
			continue
		}
		if !ok {
			continue
		}
		if string(got.Value) != tt.want || got.Stamp != tt.stamp {
			t.Errorf("Lookup(%q) = %s %+v, want %s %+v", tt.path, got.Value, got.Stamp, tt.want, tt.stamp)
		}
	}
	if _, ok := mapping.Lookup(nil, "email"); ok {
		t.Error("Lookup in nil Traits found something")
	}
}
