package identity

import (
	"testing"
	"time"
	"unicode/utf8"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in   string
		want string
		res  Result
	}{
		{"13812345678", "+8613812345678", Valid},
		{" 13812345678 ", "+8613812345678", Valid},
		{"+8613812345678", "+8613812345678", Valid},
		{"+86 138 1234 5678", "+8613812345678", Valid},
		{"8613812345678", "+8613812345678", Valid},
		{"008613812345678", "+8613812345678", Valid},
		{"0086-138-1234-5678", "+8613812345678", Valid},
		{"(+86)13812345678", "+8613812345678", Valid},
		{"(+86) 138.1234.5678", "+8613812345678", Valid},
		{"138-1234-5678", "+8613812345678", Valid},
		{"(138)12345678", "+8613812345678", Valid},
		{"１３８１２３４５６７８", "+8613812345678", Valid}, // full-width digits
		{"＋８６　１３８１２３４５６７８", "+8613812345678", Valid},
		{"+14155552671", "+14155552671", Valid},      // US, via libphonenumber
		{"+44 20 7946 0958", "+442079460958", Valid}, // UK landline
		{"12012345678", "", Invalid},                 // 1[0-2] is no mobile prefix
		{"010-12345678", "", Invalid},                // landline without +
		{"+1 5551", "", Invalid},
		{"+999 1234567", "", Invalid},
		{"abc", "", NotKind},
		{"", "", NotKind},
		{"1381234567a", "", NotKind},
		{"123", "", NotKind},
		{"++8613812345678", "", NotKind},
	}
	for _, tt := range tests {
		got, res := NormalizePhone(tt.in)
		if got != tt.want || res != tt.res {
			t.Errorf("NormalizePhone(%q) = %q, %d; want %q, %d", tt.in, got, res, tt.want, tt.res)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in   string
		want string
		res  Result
	}{
		{"Alice@Example.COM", "alice@example.com", Valid},
		{" bob@qq.com ", "bob@qq.com", Valid},
		{"bob＠qq.com", "bob@qq.com", Valid}, // full-width at
		{"ＢＯＢ＠ＱＱ．ＣＯＭ", "bob@qq.com", Valid},
		{"a.b+tag@gmail.com", "a.b+tag@gmail.com", Valid}, // no provider folding
		{"@qq.com", "", Invalid},
		{"a@b@qq.com", "", Invalid},
		{"a@localhost", "", Invalid},
		{"a@q q.com", "", Invalid},
		{"call me a@q.com", "", Invalid},
		{"alice", "", NotKind},
		{"xls_cell@microsoft_excel.com", "xls_cell@microsoft_excel.com", Valid}, // _ in the domain
		{"(mailto:x@example.com)", "x@example.com", Valid},
		{"MAILTO:X@Example.com", "x@example.com", Valid},
		{"<x@example.com>", "x@example.com", Valid},
		{"\"x@example.com\",", "x@example.com", Valid},
		{"'x@example.com'.", "x@example.com", Valid},
		{"(<mailto:x@example.com>);", "x@example.com", Valid},
		{"mailto:", "", NotKind},
		{"(mailto:@example.com)", "", Invalid},
		{"x@example", "", Invalid},
	}
	for _, tt := range tests {
		got, res := NormalizeEmail(tt.in)
		if got != tt.want || res != tt.res {
			t.Errorf("NormalizeEmail(%q) = %q, %d; want %q, %d", tt.in, got, res, tt.want, tt.res)
		}
	}
}

func TestNormalizeCNID(t *testing.T) {
	now := TodayOf(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	// mk builds a valid number from its first 17 digits.
	mk := func(d17 string) string { return d17 + string(CNIDCheck([]byte(d17))) }
	x := "11010519491231002" // GB 11643 example: check digit X
	tests := []struct {
		in   string
		want string
		res  Result
	}{
		{x + "X", x + "X", Valid},
		{x + "x", x + "X", Valid},
		{" " + x + "X ", x + "X", Valid},
		{mk("44030419900307123"), mk("44030419900307123"), Valid},
		{"440304900307123", mk("44030419900307123"), Valid}, // 15-digit legacy
		{"４４０３０４９００３０７１２３", mk("44030419900307123"), Valid},
		{x + "1", "", Invalid},                                    // wrong check
		{mk("44030419900230123"), "", Invalid},                    // 30 Feb
		{mk("44030420300101123"), "", Invalid},                    // future
		{"440304901307123", "", Invalid},                          // month 13
		{"4403041990030712", "", NotKind},                         // 16 digits
		{mk("44030420000229123"), mk("44030420000229123"), Valid}, // leap day
		{mk("44030419000229123"), "", Invalid},                    // 1900 is no leap year
		{mk("44030420251231123"), mk("44030420251231123"), Valid}, // yesterday
		{mk("44030420260101123"), mk("44030420260101123"), Valid}, // today
		{mk("44030420260102123"), "", Invalid},                    // tomorrow
		{"44030419900307123Y", "", NotKind},
	}
	for _, tt := range tests {
		got, res := NormalizeCNIDAt(tt.in, now)
		if got != tt.want || res != tt.res {
			t.Errorf("NormalizeCNID(%q) = %q, %d; want %q, %d", tt.in, got, res, tt.want, tt.res)
		}
	}
	if CNIDCheck([]byte(x)) != 'X' {
		t.Errorf("CNIDCheck(%s) = %c, want X", x, CNIDCheck([]byte(x)))
	}
}

func TestNormalizeBankCard(t *testing.T) {
	tests := []struct {
		in   string
		want string
		res  Result
	}{
		{"4111111111111111", "4111111111111111", Valid},
		{"4111 1111 1111 1111", "4111111111111111", Valid},
		{"4111111111111112", "", Invalid},
		{"411111", "", NotKind},
		{luhnOf("422222222222"), luhnOf("422222222222"), Valid},             // Visa 13
		{luhnOf("411111111111111111"), luhnOf("411111111111111111"), Valid}, // Visa 19
		{luhnOf("41111111111111"), "", Invalid},                             // Visa 15: no such length
		{"5555555555554444", "5555555555554444", Valid},                     // Mastercard 51-55
		{"2221000000000009", "2221000000000009", Valid},                     // Mastercard 2221-2720
		{luhnOf("272100000000000"), "", Invalid},                            // 2721: outside
		{"6222021234567890128", "6222021234567890128", Valid},               // UnionPay 19
		{luhnOf("622202123456789"), luhnOf("622202123456789"), Valid},       // UnionPay 16
		{"378282246310005", "378282246310005", Valid},                       // Amex 15
		{luhnOf("3782822463100051"), "", Invalid},                           // Amex 16
		{"3530111333300000", "3530111333300000", Valid},                     // JCB
		{"6011111111111117", "6011111111111117", Valid},                     // Discover 6011
		{luhnOf("644000000000000"), luhnOf("644000000000000"), Valid},       // Discover 644
		{luhnOf("650000000000000"), luhnOf("650000000000000"), Valid},       // Discover 65
		{"30569309025904", "30569309025904", Valid},                         // Diners 14
		{luhnOf("3600000000000"), luhnOf("3600000000000"), Valid},           // Diners 36
		{luhnOf("676100000000000"), luhnOf("676100000000000"), Valid},       // Maestro
		{luhnOf("700000000000000"), "", Invalid},                            // no issuer 7
		{luhnOf("100000000000000"), "", Invalid},                            // no issuer 1
		{luhnOf("62010519491231002"), "", Invalid},                          // ID-shaped (Gansu, 1949-12-31), Luhn-valid
		{luhnOf("11010519491231002"), "", Invalid},                          // ID-shaped, no issuer either
		{luhnOf("620105194913310021"), luhnOf("620105194913310021"), Valid}, // 19 digits: not ID-shaped
	}
	for _, tt := range tests {
		got, res := NormalizeBankCard(tt.in)
		if got != tt.want || res != tt.res {
			t.Errorf("NormalizeBankCard(%q) = %q, %d; want %q, %d", tt.in, got, res, tt.want, tt.res)
		}
	}
}

func TestHeaderRole(t *testing.T) {
	tests := map[string]Kind{
		"手机号": Phone, "Mobile": Phone, "phone_number": Phone, "TEL": Phone,
		"邮箱": Email, "E-Mail": Email, "身份证号": CNID, "id_no": CNID, "SFZ": CNID,
		"姓名": Name, "地址": Address, "order_id": Other, "qq": Other,
		"user.contact.mobile": Phone, "phones.0": Phone, "a.b.email": Email,
	}
	for h, want := range tests {
		if got, ok := HeaderRole(h); !ok || got != want {
			t.Errorf("HeaderRole(%q) = %q, %v; want %q", h, got, ok, want)
		}
	}
	if k, ok := HeaderRole("foo"); ok {
		t.Errorf("HeaderRole(foo) = %q, want unknown", k)
	}
}

func TestRoleSamplerDecoys(t *testing.T) {
	var phone, decoy, ids RoleSampler
	for i := 0; i < 100; i++ {
		phone.Add("1380000" + pad4(i))
		// A decoy: 11-digit numbers starting with 1, second digit spread 0-9,
		// so 7 in 10 look like mobiles.
		decoy.Add("1" + string(rune('0'+i%10)) + "00000" + pad4(i))
		ids.Add("4403041990030712" + pad4(i)[2:]) // random check digits
	}
	if phone.Role() != Phone {
		t.Errorf("phone column role %q", phone.Role())
	}
	if decoy.Role() != "" {
		t.Errorf("decoy column role %q, want none", decoy.Role())
	}
	if ids.Role() != "" {
		t.Errorf("bad-check-digit column role %q, want none", ids.Role())
	}
}

func pad4(i int) string {
	b := []byte("0000")
	for j := 3; j >= 0; j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

func TestScanText(t *testing.T) {
	line := "联系 Alice＠Example.com 或 138-1234-5678, id 11010519491231002x; order 2023110512345 bad 110105194912310021 ref abc13812345678"
	type hit struct {
		k Kind
		v string
		r Result
	}
	var got []hit
	ScanText(Fold(line), func(k Kind, v string, r Result) { got = append(got, hit{k, v, r}) })
	want := []hit{
		{Email, "alice@example.com", Valid},
		{Phone, "+8613812345678", Valid},
		{CNID, "11010519491231002X", Valid},
		{CNID, "", Invalid},
		// Letters glued before digits ("tel13812345678") still make a
		// phone, as in the raw-byte scan (the finder is the same).
		{Phone, "+8613812345678", Valid},
	}
	if len(got) != len(want) {
		t.Fatalf("ScanText found %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hit %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// checkCanonical asserts the properties every normaliser must have: a
// Valid result is valid UTF-8, bounded, and a fixed point.
func checkCanonical(t *testing.T, k Kind, in string) {
	v, r := Normalize(k, in)
	if r != Valid {
		if v != "" {
			t.Fatalf("%s(%q) = %q with result %d", k, in, v, r)
		}
		return
	}
	if !utf8.ValidString(v) || len(v) > MaxValueLen+3 || v == "" {
		t.Fatalf("%s(%q) = %q: not a canonical value", k, in, v)
	}
	if v2, r2 := Normalize(k, v); r2 != Valid || v2 != v {
		t.Fatalf("%s not idempotent: %q -> %q -> %q (%d)", k, in, v, v2, r2)
	}
}

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"13812345678", "+86 138-1234-5678", "(+86)138", "+14155552671", "００８６１３８１２３４５６７８"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkCanonical(t, Phone, s) })
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@b.c", "Ａ＠Ｂ．ｃｏｍ", "@", "a@@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkCanonical(t, Email, s) })
}

func FuzzNormalizeCNID(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "440304900307123", "11010519491231002x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkCanonical(t, CNID, s) })
}

func FuzzNormalizeBankCard(f *testing.F) {
	for _, s := range []string{"4111111111111111", "4111 1111 1111 1111"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkCanonical(t, BankCard, s) })
}

func FuzzScanText(f *testing.F) {
	f.Add("mail a@b.com tel +86 13812345678 id 11010519491231002X")
	f.Add("@@@.@ 0086138123456789 +")
	f.Fuzz(func(t *testing.T, s string) {
		ScanText(s, func(k Kind, v string, r Result) {
			if r == Valid {
				if v2, r2 := Normalize(k, v); r2 != Valid || v2 != v {
					t.Fatalf("ScanText emitted non-canonical %s %q", k, v)
				}
			}
		})
	})
}

// luhnOf appends the Luhn check digit to the digits d.
func luhnOf(d string) string {
	for c := byte('0'); c <= '9'; c++ {
		if luhn([]byte(d + string(c))) {
			return d + string(c)
		}
	}
	panic("unreachable")
}

func TestIDShaped(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"11010519491231002X", true},
		{"110105194912310021", true}, // bad check: still shaped
		{"620105200002290011", true},
		{"990105194912310021", false}, // no province 99
		{"110105174912310021", false}, // year 17xx
		{"110105194913310021", false}, // month 13
		{"110105194912320021", false}, // day 32
		{"11010519491231002", false},  // 17 digits
		{"1101051949123100211", false},
	} {
		if got := IDShaped([]byte(tt.in)); got != tt.want {
			t.Errorf("IDShaped(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestScanTextCardLengths: free text takes cards of 13-16 and 19 digits;
// a lone 17- or 18-digit run is not a card (the demo image's decoy order
// numbers were), though a column named as cards still takes one.
func TestScanTextCardLengths(t *testing.T) {
	for _, tt := range []struct {
		digits string
		card   bool
	}{
		{luhnOf("411111111111111"), true},    // 16, Visa
		{luhnOf("37828224631000"), true},     // 15, Amex
		{luhnOf("622202123456789012"), true}, // 19, UnionPay
		{luhnOf("36637521857632799"), false}, // 18, Diners range
		{luhnOf("6222021234567890"), false},  // 17, UnionPay range
		{luhnOf("65149425211946686"), false}, // 18, Discover range
	} {
		var cards []string
		ScanText("ref "+tt.digits+" end", func(k Kind, v string, r Result) {
			if k == BankCard && r == Valid {
				cards = append(cards, v)
			}
		})
		if got := len(cards) == 1 && cards[0] == tt.digits; got != tt.card {
			t.Errorf("%s (%d digits): found %v, want a card: %v", tt.digits, len(tt.digits), cards, tt.card)
		}
		if _, r := NormalizeBankCard(tt.digits); r != Valid {
			t.Errorf("NormalizeBankCard(%s) = %d: a named card column must take it", tt.digits, r)
		}
	}
}

// TestLegacyIDContext: a 15-digit number is an ID number only where the
// text names it (身份证号, ID, id_no) within 32 bytes before it.
func TestLegacyIDContext(t *testing.T) {
	for line, want := range map[string]int{
		"身份证号：440304900307123":               1,
		"ID 440304900307123":                 1,
		"id_no: 440304900307123":             1,
		"idcard = 440304900307123":           1,
		"order 440304900307123":              0,
		"paid 440304900307123":               0,
		"id_no, name, phone 440304900307123": 0, // other words in between
	} {
		n := 0
		ScanText(Fold(line), func(k Kind, v string, r Result) {
			if k == CNID && r == Valid && v == "440304199003071238"[:17]+v[17:] {
				n++
			}
		})
		if n != want {
			t.Errorf("%q: %d ID numbers, want %d", line, n, want)
		}
	}
}
