package persons

import (
	_ "embed"
	"strconv"
	"strings"
	"sync"
)

// gb2260TSV is the GB/T 2260 address-code table (see its header: every code
// of the editions 200212 to 201607, retired ones included, from the npm
// package gb2260 0.6.0).
//
//go:embed gb2260.tsv
var gb2260TSV string

// GB2260Edition names the table embedded.
const GB2260Edition = "GB/T 2260 editions 200212-201607 (npm gb2260 0.6.0), retired codes kept"

// region is one address code's entry.
type region struct {
	name string
	last string // newest edition holding the code
}

var (
	regionsOnce sync.Once
	regionTable map[string]region
)

func regions() map[string]region {
	regionsOnce.Do(func() {
		regionTable = map[string]region{}
		for _, l := range strings.Split(gb2260TSV, "\n") {
			if l == "" || l[0] == '#' {
				continue
			}
			f := strings.Split(l, "\t")
			if len(f) != 3 {
				continue
			}
			regionTable[f[0]] = region{name: f[1], last: f[2]}
		}
	})
	return regionTable
}

// Place is where an ID number's address code points: province (2 digits),
// prefecture (4) and county (6), each with its name ("" when the table
// does not hold the code).
type Place struct {
	Province, ProvinceName     string
	Prefecture, PrefectureName string
	County, CountyName         string
	Retired                    bool // the county code is absent from the newest edition
}

// PlaceOf returns the place of an 18-character ID number's address code.
func PlaceOf(id string) Place {
	var p Place
	if len(id) < 6 {
		return p
	}
	t := regions()
	p.Province = id[:2]
	p.ProvinceName = t[id[:2]+"0000"].name
	p.Prefecture = id[:4]
	p.PrefectureName = t[id[:4]+"00"].name
	p.County = id[:6]
	if r, ok := t[id[:6]]; ok {
		p.CountyName = r.name
		p.Retired = r.last != "201607"
	}
	return p
}

// BirthYear returns the birth year of an 18-character ID number, 0 if
// unreadable.
func BirthYear(id string) int {
	if len(id) < 10 {
		return 0
	}
	y, err := strconv.Atoi(id[6:10])
	if err != nil {
		return 0
	}
	return y
}

// Sex returns "male" or "female" from the 17th digit (odd: male).
func Sex(id string) string {
	if len(id) < 17 || id[16] < '0' || id[16] > '9' {
		return ""
	}
	if (id[16]-'0')%2 == 1 {
		return "male"
	}
	return "female"
}

// AgeBand returns the ten-year band ("30-39") of someone born in birth,
// aged in year now; "80+" from 80.
func AgeBand(birth, now int) string {
	a := now - birth
	if birth == 0 || a < 0 {
		return "unknown"
	}
	if a >= 80 {
		return "80+"
	}
	lo := a / 10 * 10
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+9)
}
