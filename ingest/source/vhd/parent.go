package vhd

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Parent locator platform codes.
const (
	platW2ru = 0x57327275 // "W2ru": Windows path relative to the child, UTF-16
	platW2ku = 0x57326b75 // "W2ku": absolute Windows path, UTF-16
	platMacX = 0x4d616358 // "MacX": file URL, UTF-8
	platMac  = 0x4d616320 // "Mac ": Mac OS alias record
	// Locator data is a path; anything longer than this is damage.
	maxLocator = 64 << 10
)

// recorded is one place the child says its parent is.
type recorded struct {
	path string // as recorded, with / separators
	rel  bool   // relative to the child's directory
	from string // which field said so, for messages
}

// openParent finds, opens and checks the parent of the differencing disk
// whose dynamic header is h.
func (d *Disk) openParent(h []byte, open OpenFunc, chain []string) error {
	if len(chain) > maxDepth {
		return fmt.Errorf("%s: parent chain deeper than %d", d.name, maxDepth)
	}
	var puid [16]byte
	copy(puid[:], h[40:56])
	name := utf16BE(h[64:576])
	recs := d.locators(h)
	if name != "" {
		recs = append(recs, recorded{path: slashes(name), rel: !isAbs(name), from: "parent name"})
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s: dynamic header: %w: differencing disk names no parent (no parent name, no usable locator)", d.name, ErrCorrupt)
	}
	// First beside the child by base name, then where recorded.
	dir := filepath.Dir(d.name)
	var cands []string
	seen := map[string]bool{}
	add := func(p string) {
		if p = filepath.Clean(p); !seen[p] {
			seen[p] = true
			cands = append(cands, p)
		}
	}
	for _, r := range recs {
		if b := baseName(r.path); b != "" {
			add(filepath.Join(dir, b))
		}
	}
	for _, r := range recs {
		if r.rel {
			add(filepath.Join(dir, filepath.FromSlash(r.path)))
		} else {
			add(filepath.FromSlash(r.path))
		}
	}
	want := name // what the parent is called in messages
	if want == "" {
		want = recs[0].path
	}
	if open == nil {
		return fmt.Errorf("%s: differencing disk needs parent %q (looked for at %s) but no opener was given", d.name, want, cands[0])
	}
	var errs []string
	loop := ""
	for _, p := range cands {
		if slices.Contains(chain, p) {
			loop = p
			continue
		}
		r, sz, err := open(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		par, err := openChain(r, sz, p, open, append(append([]string(nil), chain...), p))
		if err != nil {
			return fmt.Errorf("%s: parent: %w", d.name, err)
		}
		if par.uid != puid {
			d.problems = append(d.problems, fmt.Sprintf("%s: parent %s has unique ID %s, the child records parent ID %s", d.name, p, guid(par.uid), guid(puid)))
		}
		if par.size != d.size {
			d.problems = append(d.problems, fmt.Sprintf("%s: parent %s is %d bytes, the child %d; bytes past the parent's end read as zeros", d.name, p, par.size, d.size))
		}
		d.parent = par
		d.files = append(append(d.files, p), par.files...)
		d.problems = append(d.problems, par.problems...)
		return nil
	}
	if loop != "" && len(errs) == 0 {
		return fmt.Errorf("%s: parent %s loops back into the chain", d.name, loop)
	}
	if loop != "" {
		errs = append(errs, loop+" is already in the chain")
	}
	return fmt.Errorf("%s: parent %q not found (tried %s): %s", d.name, want, strings.Join(cands, ", "), strings.Join(errs, "; "))
}

// locators reads the 8 parent locator entries at 576 in the header h, best
// first (relative, absolute, Mac URL, Mac alias); damaged ones are
// problems.
func (d *Disk) locators(h []byte) []recorded {
	rank := map[uint32]int{platW2ru: 0, platW2ku: 1, platMacX: 2, platMac: 3}
	var byRank [4][]recorded
	for i := range 8 {
		e := h[576+24*i:]
		code := binary.BigEndian.Uint32(e)
		r, ok := rank[code]
		if !ok {
			continue // none, or the deprecated Wi2r/Wi2k
		}
		n := int64(binary.BigEndian.Uint32(e[8:]))
		off := int64(binary.BigEndian.Uint64(e[16:]))
		where := fmt.Sprintf("%s: parent locator %d (%q) at %#x", d.name, i, string(e[:4]), off)
		if n == 0 || n > maxLocator || off < 0 || off > d.fileSize-n {
			d.problems = append(d.problems, fmt.Sprintf("%s: %d bytes past the end of the file or absurd", where, n))
			continue
		}
		b := make([]byte, n)
		if m, _ := d.r.ReadAt(b, off); int64(m) < n {
			d.problems = append(d.problems, where+": short read")
			continue
		}
		var rec recorded
		switch code {
		case platW2ru, platW2ku:
			p := utf16Guess(b)
			rec = recorded{path: slashes(p), rel: code == platW2ru && !isAbs(p), from: string(e[:4])}
		case platMacX:
			p, rel, ok := fileURL(b)
			if !ok {
				d.problems = append(d.problems, fmt.Sprintf("%s: not a file URL: %q", where, b[:min(len(b), 80)]))
				continue
			}
			rec = recorded{path: p, rel: rel, from: "MacX"}
		case platMac:
			p, ok := macAlias(b)
			if !ok {
				d.problems = append(d.problems, where+": Mac alias record not understood")
				continue
			}
			rec = recorded{path: p, rel: !strings.HasPrefix(p, "/"), from: "Mac"}
		}
		if rec.path == "" {
			d.problems = append(d.problems, where+": empty path")
			continue
		}
		byRank[r] = append(byRank[r], rec)
	}
	var out []recorded
	for _, rs := range byRank {
		out = append(out, rs...)
	}
	return out
}

// utf16BE decodes a NUL-padded UTF-16 big-endian string (the parent name).
func utf16BE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return decode16(u)
}

// utf16Guess decodes locator data: UTF-16 little-endian as Windows writes
// it, big-endian if a byte-order mark or the zero bytes of ASCII say so.
func utf16Guess(b []byte) string {
	be := len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff
	if !be && !(len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe) {
		var even, odd int
		for i := 0; i+1 < len(b); i += 2 {
			if b[i] == 0 {
				even++
			}
			if b[i+1] == 0 {
				odd++
			}
		}
		be = even > odd
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if be {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		} else {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
	}
	if len(u) > 0 && u[0] == 0xfeff {
		u = u[1:]
	}
	return decode16(u)
}

func decode16(u []uint16) string {
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	return string(utf16.Decode(u))
}

// fileURL decodes a MacX locator, "file://localhost/path" or
// "file:///path" (or a bare, possibly relative, path).
func fileURL(b []byte) (path string, rel, ok bool) {
	s := strings.TrimRight(string(b), "\x00")
	if !utf8.ValidString(s) {
		return "", false, false
	}
	if rest, found := strings.CutPrefix(s, "file://"); found {
		rest = strings.TrimPrefix(rest, "localhost")
		if p, err := url.PathUnescape(rest); err == nil {
			rest = p
		}
		return rest, !strings.HasPrefix(rest, "/"), rest != ""
	}
	if strings.Contains(s, "://") {
		return "", false, false
	}
	return s, !strings.HasPrefix(s, "/"), s != ""
}

// macAlias takes the target's POSIX path (tag 18) or else its file name
// (the Str63 at 50) from a classic Mac OS alias record.
func macAlias(b []byte) (string, bool) {
	if len(b) < 150 {
		return "", false
	}
	name := ""
	if n := int(b[50]); n > 0 && n <= 63 {
		name = string(b[51 : 51+n])
	}
	for p := 150; p+4 <= len(b); {
		tag := binary.BigEndian.Uint16(b[p:])
		n := int(binary.BigEndian.Uint16(b[p+2:]))
		if tag == 0xffff || p+4+n > len(b) {
			break
		}
		if tag == 18 && n > 0 {
			s := string(b[p+4 : p+4+n])
			if !strings.HasPrefix(s, "/") {
				s = "/" + s
			}
			return s, true
		}
		p += 4 + n + n&1
	}
	return name, name != ""
}

// slashes turns a Windows path's separators into /.
func slashes(p string) string { return strings.ReplaceAll(p, `\`, "/") }

// isAbs: a drive letter, a UNC or a rooted path.
func isAbs(p string) bool {
	p = slashes(p)
	return strings.HasPrefix(p, "/") || len(p) >= 2 && p[1] == ':'
}

// baseName is the last element of a / or \ separated path.
func baseName(p string) string {
	p = slashes(p)
	if i := strings.LastIndexAny(p, "/:"); i >= 0 {
		p = p[i+1:]
	}
	if p == "." || p == ".." {
		return ""
	}
	return p
}

// guid formats a VHD unique ID (stored as plain bytes) 8-4-4-4-12.
func guid(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
