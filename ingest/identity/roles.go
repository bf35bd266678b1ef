package identity

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Other marks a column whose header names something that is not an
// identity (order number, QQ, user id, ...): its values are never sniffed,
// so decoy numeric columns are not taken for phones or ID numbers.
const Other Kind = "other"

// headerSynonyms maps a folded header (see foldHeader) to its role.
var headerSynonyms = map[string]Kind{
	"手机": Phone, "手机号": Phone, "手机号码": Phone, "电话": Phone, "电话号码": Phone,
	"联系电话": Phone, "联系方式": Phone, "移动电话": Phone, "手机电话": Phone,
	"mobile": Phone, "phone": Phone, "tel": Phone, "telephone": Phone, "cell": Phone,
	"cellphone": Phone, "mobilephone": Phone, "phonenumber": Phone, "phoneno": Phone,
	"mobileno": Phone, "phones": Phone, "mobiles": Phone, "tels": Phone, "mobilenumber": Phone, "shouji": Phone, "sj": Phone, "dianhua": Phone,
	"邮箱": Email, "电子邮箱": Email, "邮件": Email, "电子邮件": Email, "邮箱地址": Email,
	"email": Email, "mail": Email, "emailaddress": Email, "youxiang": Email, "emails": Email, "mails": Email,
	"身份证": CNID, "身份证号": CNID, "身份证号码": CNID, "证件号": CNID, "证件号码": CNID,
	"身份证件号": CNID, "公民身份号码": CNID,
	"sfz": CNID, "sfzh": CNID, "sfzhm": CNID, "idcard": CNID, "idno": CNID, "idnumber": CNID,
	"idcardno": CNID, "idcardnumber": CNID, "cnid": CNID, "identity": CNID, "identityno": CNID,
	"银行卡": BankCard, "银行卡号": BankCard, "卡号": BankCard, "bankcard": BankCard,
	"cardno": BankCard, "cardnumber": BankCard, "bankcardno": BankCard, "bankaccount": BankCard,
	"姓名": Name, "名字": Name, "name": Name, "xm": Name, "realname": Name, "fullname": Name,
	"truename": Name, "客户姓名": Name,
	"地址": Address, "住址": Address, "家庭住址": Address, "联系地址": Address, "收货地址": Address,
	"address": Address, "addr": Address, "dizhi": Address,
	"qq": Other, "qq号": Other, "uid": Other, "userid": Other, "id": Other, "no": Other,
	"编号": Other, "序号": Other, "订单号": Other, "订单编号": Other, "order": Other,
	"orderid": Other, "orderno": Other, "account": Other, "账号": Other, "用户名": Other,
	"username": Other, "zip": Other, "zipcode": Other, "postcode": Other, "邮编": Other,
	"amount": Other, "金额": Other, "price": Other, "time": Other, "date": Other,
	"createdat": Other, "created": Other, "时间": Other, "日期": Other, "password": Other,
	"密码": Other, "pwd": Other, "salt": Other, "ip": Other, "wechat": Other, "微信": Other,
	"gender": Other, "sex": Other, "性别": Other, "age": Other, "年龄": Other, "birthday": Other,
	"生日": Other, "出生日期": Other, "memberid": Other, "会员号": Other, "seq": Other,
	"serial": Other, "trackingno": Other, "快递单号": Other, "运单号": Other, "pk": Other,
}

// foldHeader folds a header for synonym lookup: NFKC, lower case, and
// spaces, underscores, dashes, dots and quotes removed.
func foldHeader(h string) string {
	h = strings.ToLower(Fold(h))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '.', '"', '\'', '`', '[', ']', ':', '：':
			return -1
		}
		return r
	}, h)
}

// HeaderRole returns the role a header names and whether it is known.
// For key paths ("user.contact.mobile", "phones.0") the last segment that
// is not an array index decides.
func HeaderRole(h string) (Kind, bool) {
	if k, ok := headerSynonyms[foldHeader(h)]; ok {
		return k, true
	}
	if i := strings.LastIndexAny(h, ".["); i >= 0 {
		segs := strings.FieldsFunc(h, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
		for j := len(segs) - 1; j >= 0; j-- {
			if isDigits(segs[j]) || segs[j] == "#" {
				continue
			}
			k, ok := headerSynonyms[foldHeader(segs[j])]
			return k, ok
		}
	}
	return "", false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sniffOrder is the order kinds are tried on a value: emails are
// unambiguous, ID numbers carry a check digit, phones a prefix rule; bank
// cards last, since any number passes Luhn one time in ten.
var sniffOrder = [...]Kind{Email, CNID, Phone, BankCard} // Email first: Add relies on it

// RoleThreshold is the share of a column's sampled non-empty values that
// must validate as a kind for the column to take that role. It is high so
// that decoy numeric columns (where, say, 7 in 10 random 11-digit numbers
// starting with 1 look like mobiles) are not taken, yet real columns with
// a few bad check digits are.
const RoleThreshold = 0.8

// RoleSampler decides column roles from sampled values when the header
// does not. Add values with Add, then ask Role. Not safe for concurrent use.
type RoleSampler struct {
	n     int
	valid [len(sniffOrder)]int
	today Today // taken at the first Add: time.Now per value is measurable
}

// Add records one sampled value of the column.
func (s *RoleSampler) Add(v string) {
	v = strings.TrimSpace(v)
	if v == "" || v == `\N` || strings.EqualFold(v, "null") {
		return
	}
	s.n++
	if s.today == 0 {
		s.today = TodayOf(time.Now())
	}
	v = Fold(v) // once, not once per kind (the normalisers' Fold is then cheap)
	if !isASCII(v) {
		// Folded, only an e-mail address may hold other characters (phone,
		// ID and card normalisers refuse them): spare three NFKC passes
		// over names and addresses.
		if strings.IndexByte(v, '@') >= 0 {
			if _, r := NormalizeEmail(v); r == Valid {
				s.valid[0]++
			}
		}
		return
	}
	for i, k := range sniffOrder {
		if _, r := NormalizeAt(k, v, s.today); r == Valid {
			s.valid[i]++
			return
		}
	}
}

// Mixed is the role of a column whose values are identifiers of several
// kinds ("contact": phone or e-mail): each value is tried as e-mail, ID
// number, then phone. Values that are none are not counted as invalid,
// since their kind is unknown.
const Mixed Kind = "mixed"

// Role returns the kind most sampled values validate as; Mixed when most
// validate but as several kinds; "" when fewer than RoleThreshold of them
// validate (or fewer than minSample values were seen).
func (s *RoleSampler) Role() Kind {
	const minSample = 3
	if s.n < minSample {
		return ""
	}
	all := 0
	for i, k := range sniffOrder {
		if k == BankCard {
			// Bank cards only from a header: Luhn alone is too weak.
			continue
		}
		if float64(s.valid[i]) >= RoleThreshold*float64(s.n) {
			return k
		}
		all += s.valid[i]
	}
	if float64(all) >= RoleThreshold*float64(s.n) {
		return Mixed
	}
	return ""
}

// NormalizeMixed tries v as each kind a Mixed column may hold.
func NormalizeMixed(v string, today Today) (Kind, string, bool) {
	for _, k := range [...]Kind{Email, CNID, Phone} {
		if c, r := NormalizeAt(k, v, today); r == Valid {
			return k, c, true
		}
	}
	return "", "", false
}

// Validates reports how many sampled values validated as some kind.
func (s *RoleSampler) Validates() int {
	t := 0
	for _, v := range s.valid {
		t += v
	}
	return t
}

// Share is the part of the sampled non-empty values that validated as k
// (for Mixed, as any kind); 0 before any value.
func (s *RoleSampler) Share(k Kind) float64 {
	if s.n == 0 {
		return 0
	}
	if k == Mixed {
		return float64(s.Validates()) / float64(s.n)
	}
	for i, sk := range sniffOrder {
		if sk == k {
			return float64(s.valid[i]) / float64(s.n)
		}
	}
	return 0
}

// Best is the kind the most sampled values validated as, with its share
// ("" and 0 when none did).
func (s *RoleSampler) Best() (Kind, float64) {
	bi := -1
	for i := range sniffOrder {
		if s.valid[i] > 0 && (bi < 0 || s.valid[i] > s.valid[bi]) {
			bi = i
		}
	}
	if bi < 0 {
		return "", 0
	}
	return sniffOrder[bi], float64(s.valid[bi]) / float64(s.n)
}

// Values is how many non-empty values were sampled.
func (s *RoleSampler) Values() int { return s.n }

// MarshalBinary encodes the sampler, so samples taken on other machines
// (a Beam pipeline's workers) can be merged.
func (s *RoleSampler) MarshalBinary() ([]byte, error) {
	b := binary.AppendVarint(nil, int64(s.n))
	b = binary.AppendVarint(b, int64(s.today))
	for _, v := range s.valid {
		b = binary.AppendVarint(b, int64(v))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (s *RoleSampler) UnmarshalBinary(b []byte) error {
	var vals [2 + len(sniffOrder)]int64
	off := 0
	for i := range vals {
		v, n := binary.Varint(b[off:])
		if n <= 0 {
			return fmt.Errorf("identity: role sampler: bad varint %d at byte %d of %d", i, off, len(b))
		}
		vals[i], off = v, off+n
	}
	s.n, s.today = int(vals[0]), Today(vals[1])
	for i := range s.valid {
		s.valid[i] = int(vals[2+i])
	}
	return nil
}

// Merge adds o's samples to s.
func (s *RoleSampler) Merge(o *RoleSampler) {
	s.n += o.n
	for i := range s.valid {
		s.valid[i] += o.valid[i]
	}
}
