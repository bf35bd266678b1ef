package custody

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxComponent is the longest path component written to a host file
// system, in bytes (255 on ext4, NTFS, APFS); longer names are cut and get
// a hash suffix so they stay distinct.
const maxComponent = 200

// EscapeName makes one path component from evidence safe as a host file
// name: control characters, '/', '\\', '%' and invalid UTF-8 bytes become
// %XX (so the mapping is reversible and readable), "." and ".." become
// "%2E" and "%2E%2E", an empty name becomes "%00", and a component longer
// than maxComponent bytes is cut and suffixed with 8 hex digits of its
// SHA-256.
func EscapeName(s string) string {
	switch s {
	case "":
		return "%00"
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, "%%%02X", s[i])
		case r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == '%' || (r >= 0x80 && r < 0xa0):
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	out := b.String()
	if len(out) > maxComponent {
		h := sha256.Sum256([]byte(s))
		cut := maxComponent - 9
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "~" + hex.EncodeToString(h[:4])
	}
	return out
}

// SafePath turns a path from evidence ("/dir/name", any bytes) into a
// relative, clean, host-safe path: components escaped by EscapeName, empty
// components dropped. The result never is absolute and never contains "..".
func SafePath(p string) string {
	var parts []string
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			continue
		}
		parts = append(parts, EscapeName(c))
	}
	if len(parts) == 0 {
		return "%00"
	}
	return strings.Join(parts, "/")
}

// namer assigns export names, disambiguating collisions deterministically:
// a file whose name is taken gets "~2", "~3", ... before its extension, and
// a directory component that is already a file gets "~dir".
type namer struct {
	used map[string]byte // 'f' file, 'd' directory
}

func newNamer() *namer { return &namer{used: map[string]byte{}} }

func (n *namer) name(rel string) string {
	parts := strings.Split(rel, "/")
	prefix := ""
	for i, c := range parts[:len(parts)-1] {
		cand := path.Join(prefix, c)
		for n.used[cand] == 'f' {
			c += "~dir"
			cand = path.Join(prefix, c)
		}
		parts[i] = c
		n.used[cand] = 'd'
		prefix = cand
	}
	last := parts[len(parts)-1]
	full := path.Join(prefix, last)
	if n.used[full] != 0 {
		ext := path.Ext(last)
		if len(ext) > 16 || ext == last {
			ext = ""
		}
		stem := strings.TrimSuffix(last, ext)
		for k := 2; ; k++ {
			full = path.Join(prefix, stem+"~"+strconv.Itoa(k)+ext)
			if n.used[full] == 0 {
				break
			}
		}
	}
	n.used[full] = 'f'
	return full
}

// Exported is one file the export writes: its name relative to the export
// root, and the stored object it is copied from.
type Exported struct {
	Name   string // "EV1/vol-1/dir/name", "EV1/carved/0x00012000-jpeg.jpg"
	Object string // SHA-256 of the stored object
	MD5    string
	Size   int64
}

// exportList calls fn for every extracted and carved file that has a stored
// object, in a stable order (evidence, volume, row; then carved by offset),
// with names as export writes them. Report manifests use the same names.
func (c *Case) exportList(ctx context.Context, fn func(Exported) error) error {
	nm := newNamer()
	rows, err := c.db.QueryContext(ctx, `SELECT f.evidence_id, f.volume, f.path, o.sha256, o.md5, o.size
		FROM files f JOIN objects o ON o.sha256 = f.object ORDER BY f.evidence_id, f.volume, f.id`)
	if err != nil {
		return fmt.Errorf("custody: export list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev, p string
		var vol int
		var e Exported
		if err := rows.Scan(&ev, &vol, &p, &e.Object, &e.MD5, &e.Size); err != nil {
			return fmt.Errorf("custody: export list: %w", err)
		}
		e.Name = nm.name(fmt.Sprintf("%s/vol-%d/%s", EscapeName(ev), vol, SafePath(p)))
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("custody: export list: %w", err)
	}
	rows.Close()
	rows, err = c.db.QueryContext(ctx, `SELECT c.evidence_id, c.layer, c.offset, c.type, o.sha256, o.md5, o.size
		FROM carved c JOIN objects o ON o.sha256 = c.object ORDER BY c.evidence_id, c.layer, c.offset, c.id`)
	if err != nil {
		return fmt.Errorf("custody: export list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev, lay, typ string
		var off int64
		var e Exported
		if err := rows.Scan(&ev, &lay, &off, &typ, &e.Object, &e.MD5, &e.Size); err != nil {
			return fmt.Errorf("custody: export list: %w", err)
		}
		t := EscapeName(typ)
		where := "carved"
		if lay != "" {
			// Carved from a disk inside a file: under that file's name,
			// offsets in that disk.
			where = "carved/" + EscapeName(lay)
		}
		e.Name = nm.name(fmt.Sprintf("%s/%s/%012x-%s.%s", EscapeName(ev), where, off, t, t))
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
