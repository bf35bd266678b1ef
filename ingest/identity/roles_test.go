package identity

import (
	"strings"
	"testing"
	"time"
)

// naiveAdd is what RoleSampler.Add must equal: every kind tried in
// sniffOrder on the raw value.
func naiveAdd(s *RoleSampler, v string) {
	v = strings.TrimSpace(v)
	if v == "" || v == `\N` || strings.EqualFold(v, "null") {
		return
	}
	s.n++
	for i, k := range sniffOrder {
		if _, r := NormalizeAt(k, v, TodayOf(time.Now())); r == Valid {
			s.valid[i]++
			return
		}
	}
}

var sampleValues = []string{
	"13800138000", "+86 138 0013 8000", "１３８００１３８０００", "(mailto:Zhang@Example.COM)",
	"张三@例子.中国", "杭州市西湖区长江路174号", "11010519491231002X", "110105491231002",
	"6222 0212 3456 7890 128", "４１１１１１１１１１１１１１１１", "①３８００１３８０００", "  NULL ",
	"name@mail.example.cn", "＠example.com", "x＠ｅｘａｍｐｌｅ.com", "\u300013800138000\u3000", "",
}

// TestRoleSamplerShortcut: the shortcuts in Add (one Fold, only e-mail
// for non-ASCII values) change no verdict.
func TestRoleSamplerShortcut(t *testing.T) {
	var got, want RoleSampler
	for _, v := range sampleValues {
		got.Add(v)
		naiveAdd(&want, v)
	}
	got.today = 0
	if got != want {
		t.Fatalf("Add %+v, naive %+v", got, want)
	}
	if want.n < 10 || want.valid == [len(sniffOrder)]int{} {
		t.Fatalf("the sample values test nothing: %+v", want)
	}
}

func FuzzRoleSamplerAdd(f *testing.F) {
	for _, v := range sampleValues {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var got, want RoleSampler
		got.Add(v)
		naiveAdd(&want, v)
		got.today = 0
		if got != want {
			t.Fatalf("%q: Add %+v, naive %+v", v, got, want)
		}
	})
}

// TestRoleSamplerBinary: a sampler encoded on one machine and decoded on
// another merges as the original would; a cut encoding is an error.
func TestRoleSamplerBinary(t *testing.T) {
	var a RoleSampler
	for _, v := range []string{"13812345678", "+86 139 1234 5678", "a@b.cn", "x", "11010519491231002X"} {
		a.Add(v)
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var c RoleSampler
	if err := c.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if c != a {
		t.Fatalf("decoded %+v, want %+v", c, a)
	}
	var m RoleSampler
	m.Merge(&c)
	m.Merge(&a)
	if m.Values() != 2*a.Values() || m.Role() != a.Role() {
		t.Errorf("merged %d values role %q; want %d, %q", m.Values(), m.Role(), 2*a.Values(), a.Role())
	}
	if err := c.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Error("a cut encoding decoded")
	}
}
