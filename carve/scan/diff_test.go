package scan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidx/evidx/ingest/identity"
)

// textPath returns what a dataset's text line yields: the identities
// ScanTextAt finds in the folded line, as "kind:value", sorted.
func textPath(line string) []string {
	var out []string
	identity.ScanTextAt(identity.Fold(line), identity.TodayOf(time.Now()), func(k identity.Kind, v string, r identity.Result) {
		if r == identity.Valid {
			out = append(out, string(k)+":"+v)
		}
	})
	slices.Sort(out)
	return out
}

// scanPath returns what the raw-byte scan finds in the same bytes.
func scanPath(t testing.TB, line string) []string {
	out := scanBytes(t, []byte(line), Options{})
	slices.Sort(out)
	return out
}

// diffCases are lines on which the two paths once disagreed, and the
// precision rules of the identity contract.
var diffCases = []struct {
	in   string
	want []string
}{
	{"xls_cell@microsoft_excel.com", []string{"email:xls_cell@microsoft_excel.com"}},
	{"see (mailto:X@Example.com) now", []string{"email:x@example.com"}},
	{"<x@example.com>, \"y@example.org\".", []string{"email:x@example.com", "email:y@example.org"}},
	{"a@b.comfoo@c.com", nil},
	{"a@b.com@c.com", nil},
	{"bob@example.comAlice@example.org", []string{"email:bob@example.com"}},
	{"身份证440304900307123", []string{"cn_id:" + legacy18("44030419900307123")}},
	{"ID: 440304900307123", []string{"cn_id:" + legacy18("44030419900307123")}},
	{"order 440304900307123", nil},
	{"paid 440304900307123", nil},
	{"bad 110105194912310021 card 4111111111111111", []string{"bank_card:4111111111111111"}},
	{"id-shaped " + luhnCard("62010519491231002"), nil},
	{"amex 378282246310005 visa15 " + luhnCard("41111111111111"), []string{"bank_card:378282246310005"}},
	{"no issuer " + luhnCard("700000000000000"), nil},
	{"tel13812345678 and 138-1234-5678", []string{"phone:+8613812345678", "phone:+8613812345678"}},
}

// legacy18 is the 18-digit form of a 15-digit ID whose 17 digits are d17.
func legacy18(d17 string) string { return d17 + string(identity.CNIDCheck([]byte(d17))) }

// luhnCard appends the Luhn check digit to d.
func luhnCard(d string) string { return luhnComplete(d) }

// TestFinderPathsAgree feeds identical text through the dataset text path
// (identity.ScanTextAt) and the raw-byte scan: the set of (kind, value)
// must be the same, first on a table, then on a generated corpus.
func TestFinderPathsAgree(t *testing.T) {
	for _, tc := range diffCases {
		a, b := textPath(tc.in), scanPath(t, tc.in)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(a, want) || !slices.Equal(b, want) {
			t.Errorf("%q: text path %q, scan %q, want %q", tc.in, a, b, want)
		}
	}
	lines := diffCorpus(rand.New(rand.NewPCG(15, 11)), 3000)
	found, differ := 0, 0
	for _, l := range lines {
		a, b := textPath(l), scanPath(t, l)
		found += len(a)
		if !slices.Equal(a, b) {
			differ++
			if differ <= 10 {
				t.Errorf("%q: text path %q, scan %q", l, a, b)
			}
		}
	}
	if found < len(lines) {
		t.Errorf("corpus of %d lines yielded only %d identities: the generator makes too few", len(lines), found)
	}
	t.Logf("%d lines, %d identities, %d lines differ", len(lines), found, differ)
}

// diffCorpus generates n lines mixing identifiers in the forms people
// write them, decoys, and glue between them.
func diffCorpus(rng *rand.Rand, n int) []string {
	digits := func(k int) string {
		var b strings.Builder
		for range k {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	mobile := func() string { return "1" + string(byte('3'+rng.IntN(7))) + digits(9) }
	id := func() string {
		d17 := fmt.Sprintf("%02d%04d%04d%02d%02d%s", 11+rng.IntN(55), rng.IntN(10000), 1930+rng.IntN(90), 1+rng.IntN(12), 1+rng.IntN(28), digits(3))
		return d17 + string(identity.CNIDCheck([]byte(d17)))
	}
	words := []string{"alice", "Bob.Smith", "wang_wei", "zhang-san", "li+tag", "x"}
	domains := []string{"example.com", "qq.com", "163.COM", "mail.example.cn", "microsoft_excel.com", "sub-d.example.org", "b.comfoo", "example"}
	pieces := []func() string{
		func() string { return words[rng.IntN(len(words))] + "@" + domains[rng.IntN(len(domains))] },
		func() string {
			return "(mailto:" + words[rng.IntN(len(words))] + "@" + domains[rng.IntN(len(domains))] + ")"
		},
		func() string { return "<" + words[rng.IntN(len(words))] + "@" + domains[rng.IntN(len(domains))] + ">" },
		func() string { return mobile() },
		func() string { m := mobile(); return m[:3] + "-" + m[3:7] + "-" + m[7:] },
		func() string { return "+86" + mobile() },
		func() string { return "0086 " + mobile() },
		func() string { return id() },
		func() string { s := id(); return s[:17] + "0" }, // check often wrong
		func() string { s := id(); return "身份证" + s[:6] + s[8:17] },
		func() string { s := id(); return "ref " + s[:6] + s[8:17] },
		func() string { return luhnCard("4" + digits(14)) },
		func() string { return luhnCard("62" + digits(16)) },
		func() string { return luhnCard("37" + digits(12)) },
		func() string { return luhnCard("5" + string(byte('1'+rng.IntN(5))) + digits(13)) },
		func() string { return luhnCard(digits(15)) },
		func() string { return digits(1 + rng.IntN(20)) },
		func() string { return "v1." + digits(2) + "." + digits(1) },
		func() string { return "客户" },
		func() string { return "tel" },
	}
	glue := []string{" ", ", ", "; ", "\t", "/", ":", "", " | ", "，"}
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for k := 1 + rng.IntN(5); k > 0; k-- {
			b.WriteString(pieces[rng.IntN(len(pieces))]())
			b.WriteString(glue[rng.IntN(len(glue))])
		}
		out[i] = b.String()
	}
	return out
}
