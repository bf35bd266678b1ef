package scan

import "strings"

// tlds lists the top-level domains an address found in raw bytes may end
// in: every ISO 3166 country-code TLD and the common generic ones. Random
// bytes satisfy "letters '.' letters" every few megabytes; a known TLD cuts
// that to about one false address per gigabyte of random data, while the
// addresses of leaked datasets (mostly .com, .cn, .net, ...) all pass.
var tlds = func() map[string]bool {
	cc := "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz " +
		"ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr " +
		"ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp " +
		"ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz " +
		"na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw " +
		"sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz " +
		"ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
	g := "com net org edu gov mil int info biz name pro mobi asia tel travel jobs museum aero coop cat post xxx " +
		"xyz top site online club shop store vip app dev io tech cloud email live life world today link work " +
		"ltd group space website fun wang ink ren kim cool xin beer art blog news media" // common new gTLDs
	m := map[string]bool{}
	for _, t := range strings.Fields(cc + " " + g) {
		m[t] = true
	}
	return m
}()

// knownTLD reports whether b (ASCII letters, all lower- or all upper-case)
// may end an address: a listed TLD, or any of four letters or more (random
// bytes almost never hold four letters of one case; new generic TLDs and
// the reserved .test, .example, .local are long).
func knownTLD(b []byte) bool {
	if len(b) < 2 || len(b) > maxTLD {
		return false
	}
	long := len(b) >= 4
	up := b[0] >= 'A' && b[0] <= 'Z'
	var s [maxTLD]byte
	for i, c := range b {
		if (c >= 'A' && c <= 'Z') != up {
			return false
		}
		s[i] = c | 0x20
	}
	return long || tlds[string(s[:len(b)])]
}
