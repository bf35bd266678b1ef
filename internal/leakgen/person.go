// Package leakgen generates realistic leaked personal-data datasets from a
// seed, in every format and encoding evidx reads, with variant spellings
// of the same identities, and writes the ground truth: the unique
// identities per kind overall and per file, computed from the canonical
// values it chose, never by parsing its own output.
package leakgen

import (
	"strconv"
)

// personSpace is the number of distinct people a seed can produce; person
// numbers are spread over it by a bijection so fields never collide.
const personSpace = 100_000_000

// permMul is coprime with personSpace (it ends in 1 and is odd), so
// i -> i*permMul mod personSpace is a bijection.
const permMul = 48_271_601

var mobilePrefixes = []string{"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"145", "147", "150", "151", "152", "153", "155", "156", "157", "158", "159", "166",
	"170", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184", "185",
	"186", "187", "188", "189", "191", "198", "199"}

var regions = []string{"110101", "110105", "120101", "310104", "320102", "330106", "340104",
	"350203", "370102", "410105", "420106", "430104", "440106", "440304", "450103", "500103",
	"510104", "520102", "610113", "210102"}

var surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗"}
var surnamePinyin = []string{"wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu", "guo", "he", "gao", "lin", "luo"}
var given = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平", "刚", "桂英", "建华", "晓东", "子涵", "浩然"}
var cities = []string{"北京市朝阳区", "上海市浦东新区", "广州市天河区", "深圳市南山区", "杭州市西湖区", "成都市武侯区", "武汉市洪山区", "南京市鼓楼区", "重庆市渝中区", "西安市雁塔区"}
var streets = []string{"建设路", "人民路", "解放大道", "中山路", "和平街", "长江路", "科技园路", "文化路"}
var domains = []string{"qq.com", "163.com", "126.com", "sina.com", "gmail.com", "hotmail.com", "foxmail.com", "yahoo.com.cn", "sohu.com", "139.com"}

// birthDays is the number of days of birth dates used: 1940-01-01 onward.
const birthDays = 60 * 365

// person is one synthetic individual. Canonical fields are what evidx
// must produce after normalisation.
type person struct {
	name, namePinyin string
	phone11          string // 11 digits; canonical is "+86" + phone11
	id18             string // canonical 18-character ID number
	legacy           bool   // born in the 1900s: a 15-digit form exists
	email            string // canonical (lower-case)
	addr             string
}

// makePerson returns person number i (0 <= i < personSpace) of a seed:
// a pure function, so duplicates can be regenerated instead of stored.
func makePerson(seed uint64, i int64) person {
	p := (uint64(i)*permMul + seed*7919) % personSpace
	var pr person
	h := mix(seed ^ uint64(i)*0x9E3779B97F4A7C15)
	s := int(h % uint64(len(surnames)))
	pr.name = surnames[s] + given[(h>>8)%uint64(len(given))]
	pr.namePinyin = surnamePinyin[s]
	// Phone: prefix and 8 digits from p; unique while p < 41*10^8.
	pref := mobilePrefixes[p%uint64(len(mobilePrefixes))]
	pr.phone11 = pref + pad(p/uint64(len(mobilePrefixes))%100_000_000, 8)
	// ID: region, birth date, sequence from p: unique while p < 20*1000*birthDays.
	reg := regions[p%uint64(len(regions))]
	q := p / uint64(len(regions))
	seq := q % 1000
	day := (q / 1000) % birthDays
	y, m, d := civil(int64(day) - 10958) // 1940-01-01 is day -10958 of the Unix epoch
	d17 := reg + pad(uint64(y), 4) + pad(uint64(m), 2) + pad(uint64(d), 2) + pad(seq, 3)
	pr.id18 = d17 + string(cnidCheck(d17))
	pr.legacy = y >= 1900 && y <= 1999
	// The dot keeps e-mails distinct: "li"+"n1x" and "lin"+"1x" would not be.
	pr.email = pr.namePinyin + "." + strconv.FormatUint(p, 36) + "@" + domains[(h>>16)%uint64(len(domains))]
	pr.addr = cities[(h>>24)%uint64(len(cities))] + streets[(h>>32)%uint64(len(streets))] + strconv.Itoa(int((h>>40)%999)+1) + "号"
	return pr
}

// mix is splitmix64's finaliser: a cheap, well-spread hash of x.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func pad(v uint64, n int) string {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func civil(z int64) (int, int, int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return int(y), int(m), int(d)
}

// cnidCheck is the ISO 7064 MOD 11-2 check character of 17 digits,
// written here independently of the identity package it tests.
func cnidCheck(d17 string) byte {
	w := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(d17[i]-'0') * w[i]
	}
	return "10X98765432"[sum%11]
}
