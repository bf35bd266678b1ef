package leakgen

import (
	"archive/zip"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	_ "github.com/mattn/go-sqlite3" // writes the SQLite datasets
	"github.com/ulikunitz/xz"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// Options configure Generate.
type Options struct {
	Seed uint64
	// Rows is the total number of data rows over all files (garbage lines
	// and headers excluded).
	Rows int
	// Dup is the share of rows repeating a person already in the same file.
	Dup float64
	// Overlap is the share of rows taking a person from earlier files.
	Overlap float64
	// Formats: "all" (default) or a comma list of dataset names (see Names).
	Formats string
}

// Counts are identity counts per kind, as evidx reports them.
type Counts map[string]int64

// FileTruth is the ground truth of one generated file.
type FileTruth struct {
	Path        string `json:"path"`
	Format      string `json:"format"`
	Encoding    string `json:"encoding"`
	Compression string `json:"compression"`
	Rows        int64  `json:"rows"`
	Rejected    int64  `json:"rejected"`
	Unique      Counts `json:"unique"`
	Invalid     Counts `json:"invalid"`
	// Persons is how many of Truth.Persons have a record in this file.
	Persons int64 `json:"persons"`
}

// Truth is what Generate wrote: per file and overall unique identities,
// and the persons the data can link.
type Truth struct {
	Seed   uint64 `json:"seed"`
	Unique Counts `json:"unique"`
	// Persons is the number of people the data can link: a union-find of
	// the generator's own over the valid canonical identifiers of each
	// record it wrote (see linkCount), records being a row, a line, an
	// INSERT tuple, and a SQLite row of contacts with the identities row
	// of the same uid. It exceeds the unique values of a kind where the
	// data splits a person (a phone alone in one row, the ID number alone
	// in another).
	Persons int64 `json:"persons"`
	// Hubs is how many values the hub rule left out (none in this data:
	// every value is one person's; the persons corpus has one).
	Hubs  int64       `json:"hubs"`
	Files []FileTruth `json:"files"`
}

// dataset describes one file to generate.
type dataset struct {
	name        string
	format      string // writer: gbkdash, csv, tsv, jsonl, mysql, pgcopy, sqlite, text, utf16csv
	compression string // none, gzip, zstd, bzip2, xz, zip
}

var datasets = []dataset{
	{"leak_gbk.txt", "gbkdash", "none"},
	{"users.csv", "csv", "none"},
	{"nohdr.tsv", "tsv", "none"},
	{"users.jsonl", "jsonl", "none"},
	{"dump.sql", "mysql", "none"},
	{"pg_dump.sql", "pgcopy", "none"},
	{"members.sqlite", "sqlite", "none"},
	{"notes.txt", "text", "none"},
	{"excel_utf16.csv", "utf16csv", "none"},
	{"orders.csv.gz", "csv", "gzip"},
	{"gbk.txt.zst", "gbkdash", "zstd"},
	{"users.jsonl.bz2", "jsonl", "bzip2"},
	{"dump.sql.xz", "mysql", "xz"},
	{"bundle.zip", "tsv", "zip"},
}

// Names lists the dataset file names Generate can write.
func Names() []string {
	var n []string
	for _, d := range datasets {
		n = append(n, d.name)
	}
	return n
}

// fileState accumulates one file's rows and truth.
type fileState struct {
	rng      *rand.Rand
	seed     uint64
	index    int     // of the file in the Generate
	persons  []int64 // person numbers used in this file
	phones   map[string]bool
	emails   map[string]bool
	ids      map[string]bool
	invalid  Counts
	rows     int64
	rejected int64
	text     bool // plain text: invalid phones are not identifiers there
}

// rec is one generated row: the spellings written for each field.
type rec struct {
	name, phone, id, email, addr string
	decoy11, decoy18             string
	order                        int64
	ids                          []string // canonical valid identifiers ("phone:+86…", "cn_id:…", "email:…")
}

const (
	pInvalidID    = 0.03
	pInvalidPhone = 0.02
	pNoEmail      = 0.05
	pGarbage      = 0.01
)

// gen holds the state shared by the files of one Generate.
type gen struct {
	o      Options
	rng    *rand.Rand
	next   int64   // next fresh person number
	pool   []int64 // persons used so far in any file
	global map[string]map[string]bool
	recs   []precord // the records written, for the persons truth
}

// person picks the row's person for f: a duplicate from f, one from an
// earlier file, or a fresh one.
func (g *gen) person(f *fileState) int64 {
	r := f.rng.Float64()
	switch {
	case r < g.o.Dup && len(f.persons) > 0:
		return f.persons[f.rng.IntN(len(f.persons))]
	case r < g.o.Dup+g.o.Overlap && len(g.pool) > 0:
		p := g.pool[f.rng.IntN(len(g.pool))]
		f.persons = append(f.persons, p)
		return p
	}
	p := g.next
	g.next++
	g.pool = append(g.pool, p)
	f.persons = append(f.persons, p)
	return p
}

// row makes the next row of f with variant spellings, and records its
// truth (the canonical values of the valid spellings it chose): the
// counts and one record of the persons truth (every format writes a row
// as one record; keys adds its join keys).
func (g *gen) row(f *fileState, textSafe bool) rec {
	r := g.spell(f, textSafe)
	g.recs = append(g.recs, precord{file: f.index, ids: r.ids})
	return r
}

// key adds to the record of the row just made a join key of a database
// table: "key:" + file + "/" + the key=value evidx forms (keys join rows
// of one source only).
func (g *gen) key(f *fileState, kv string) {
	r := &g.recs[len(g.recs)-1]
	r.ids = append(r.ids, "key:"+strconv.Itoa(f.index)+"/"+kv)
}

func (g *gen) spell(f *fileState, textSafe bool) rec {
	pn := g.person(f)
	p := makePerson(g.o.Seed, pn)
	rng := f.rng
	var r rec
	r.name = p.name
	r.addr = p.addr
	r.order = 1_000_000 + rng.Int64N(9_000_000)
	// Decoys: 11-digit numbers starting with 1 whose second digit is
	// uniform (7 in 10 look like mobiles), and 18 random digits.
	r.decoy11 = "1" + pad(rng.Uint64N(10_000_000_000), 10)
	r.decoy18 = pad(rng.Uint64N(1_000_000_000), 9) + pad(rng.Uint64N(1_000_000_000), 9)

	if rng.Float64() < pInvalidPhone && !textSafe {
		r.phone = "12" + p.phone11[2:]
		f.invalid["phone"]++
	} else {
		r.phone = phoneVariant(rng, p.phone11, textSafe)
		f.phones["+86"+p.phone11] = true
		r.ids = append(r.ids, "phone:+86"+p.phone11)
	}
	if rng.Float64() < pInvalidID {
		bad := p.id18[:17] + string(wrongCheck(p.id18[17]))
		r.id = bad
		f.invalid["cn_id"]++
	} else {
		r.id = idVariant(rng, p, textSafe)
		f.ids[p.id18] = true
		r.ids = append(r.ids, "cn_id:"+p.id18)
	}
	if rng.Float64() < pNoEmail {
		r.email = ""
	} else {
		r.email = emailVariant(rng, p.email, textSafe)
		f.emails[p.email] = true
		r.ids = append(r.ids, "email:"+p.email)
	}
	f.rows++
	return r
}

func wrongCheck(c byte) byte {
	if c == '0' {
		return '1'
	}
	if c == 'X' {
		return '0'
	}
	return c - 1
}

// fullWidth spells ASCII digits and letters as their full-width forms.
func fullWidth(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c > ' ' && c < 0x7f {
			b.WriteRune(c - 0x21 + 0xFF01)
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func phoneVariant(rng *rand.Rand, d string, textSafe bool) string {
	forms := []func() string{
		func() string { return d },
		func() string { return "+86" + d },
		func() string { return "0086-" + d[:3] + "-" + d[3:7] + "-" + d[7:] },
		func() string { return "86" + d },
		func() string { return fullWidth(d) },
		func() string { return d[:3] + "-" + d[3:7] + "-" + d[7:] },
		func() string { return "+86 " + d[:3] + " " + d[3:7] + " " + d[7:] },
		func() string { return "(+86)" + d[:3] + "-" + d[3:7] + "-" + d[7:] },
		func() string { return d[:3] + "." + d[3:7] + "." + d[7:] },
		func() string { return "0086" + d },
	}
	n := len(forms)
	if textSafe {
		n = 6 // no spaces, dots or parentheses inside free text
	}
	return forms[rng.IntN(n)]()
}

func idVariant(rng *rand.Rand, p person, textSafe bool) string {
	switch rng.IntN(5) {
	case 1:
		if p.id18[17] == 'X' {
			return p.id18[:17] + "x"
		}
	case 2:
		if p.legacy {
			return p.id18[:6] + p.id18[8:17]
		}
	case 3:
		if !textSafe {
			return fullWidth(p.id18)
		}
	}
	return p.id18
}

func emailVariant(rng *rand.Rand, e string, textSafe bool) string {
	switch rng.IntN(5) {
	case 1:
		return strings.ToUpper(e)
	case 2:
		return strings.Replace(e, "@", "＠", 1)
	case 3:
		return strings.ToUpper(e[:1]) + e[1:]
	case 4:
		if !textSafe {
			return " " + e + " "
		}
	}
	return e
}

// garbage is a line that is no record of any format.
func garbage(rng *rand.Rand) string {
	g := []string{"@@@@ CORRUPTED BLOCK @@@@", "~~~~~~~~~~~~~~~~", "?? ??? ?? ???", "=== page break ===", "lorem ipsum dolor sit amet"}
	return g[rng.IntN(len(g))]
}

// Generate writes the datasets into dir (created if needed) and returns
// their truth, also written to dir/truth.json.
func Generate(dir string, o Options) (*Truth, error) {
	if o.Rows <= 0 {
		o.Rows = 10000
	}
	if o.Dup < 0 || o.Dup > 0.9 {
		return nil, fmt.Errorf("leakgen: dup %v out of [0, 0.9]", o.Dup)
	}
	if o.Overlap == 0 {
		o.Overlap = 0.1
	}
	sel := datasets
	if o.Formats != "" && o.Formats != "all" {
		sel = nil
		want := map[string]bool{}
		for _, f := range strings.Split(o.Formats, ",") {
			want[strings.TrimSpace(f)] = true
		}
		for _, d := range datasets {
			if want[d.name] || want[d.format] || want[d.compression] {
				sel = append(sel, d)
			}
		}
		if len(sel) == 0 {
			return nil, fmt.Errorf("leakgen: no dataset matches %q (have %v)", o.Formats, Names())
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &gen{o: o, rng: rand.New(rand.NewPCG(o.Seed, 0x1eaf)), global: map[string]map[string]bool{
		"phone": {}, "email": {}, "cn_id": {}}}
	t := &Truth{Seed: o.Seed}
	per := o.Rows / len(sel)
	for i, d := range sel {
		n := per
		if i == len(sel)-1 {
			n = o.Rows - per*(len(sel)-1)
		}
		f := &fileState{rng: rand.New(rand.NewPCG(o.Seed, uint64(i)+1)), seed: o.Seed, index: i,
			phones: map[string]bool{}, emails: map[string]bool{}, ids: map[string]bool{}, invalid: Counts{}}
		ft, err := g.file(dir, d, f, n)
		if err != nil {
			return nil, fmt.Errorf("leakgen: %s: %w", d.name, err)
		}
		for k, set := range map[string]map[string]bool{"phone": f.phones, "email": f.emails, "cn_id": f.ids} {
			for v := range set {
				g.global[k][v] = true
			}
		}
		t.Files = append(t.Files, ft)
	}
	t.Unique = Counts{"phone": int64(len(g.global["phone"])), "email": int64(len(g.global["email"])),
		"cn_id": int64(len(g.global["cn_id"])), "bank_card": 0}
	var inFile []int64
	t.Persons, inFile, t.Hubs = linkCount(g.recs, len(sel))
	for i := range t.Files {
		t.Files[i].Persons = inFile[i]
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, err
	}
	return t, os.WriteFile(filepath.Join(dir, "truth.json"), append(b, '\n'), 0o644)
}

func (g *gen) file(dir string, d dataset, f *fileState, n int) (FileTruth, error) {
	path := filepath.Join(dir, d.name)
	ft := FileTruth{Path: path, Compression: d.compression}
	var content []byte
	var err error
	inner := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(d.name, ".gz"), ".zst"), ".bz2"), ".xz")
	switch d.format {
	case "sqlite":
		content, err = g.sqlite(dir, f, n)
		ft.Format, ft.Encoding = "sqlite", ""
	default:
		var text string
		text, ft.Format, ft.Encoding = g.text(d.format, f, n)
		content = []byte(text)
		switch d.format {
		case "gbkdash":
			content, err = simplifiedchinese.GBK.NewEncoder().Bytes(content)
		case "utf16csv":
			content, err = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes(content)
		}
	}
	if err != nil {
		return ft, err
	}
	switch d.compression {
	case "gzip":
		content, err = compress(content, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil })
	case "zstd":
		content, err = compress(content, func(w io.Writer) (io.WriteCloser, error) { return zstd.NewWriter(w) })
	case "xz":
		content, err = compress(content, func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) })
	case "bzip2":
		content, err = bzip2(content)
	case "zip":
		content, err = zipOf(inner+".tsv", content)
		ft.Compression = "zip"
	}
	if err != nil {
		return ft, err
	}
	if d.compression == "none" {
		ft.Compression = "none"
	}
	ft.Unique = Counts{"phone": int64(len(f.phones)), "email": int64(len(f.emails)), "cn_id": int64(len(f.ids)), "bank_card": 0}
	ft.Invalid = f.invalid
	for _, k := range []string{"phone", "email", "cn_id", "bank_card"} {
		if _, ok := ft.Invalid[k]; !ok {
			ft.Invalid[k] = 0
		}
	}
	ft.Rows, ft.Rejected = f.rows, f.rejected
	return ft, os.WriteFile(path, content, 0o644)
}

func compress(b []byte, mk func(io.Writer) (io.WriteCloser, error)) ([]byte, error) {
	var buf bytes.Buffer
	w, err := mk(&buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bzip2 compresses with the bzip2 program (Go has no bzip2 writer).
func bzip2(b []byte) ([]byte, error) {
	cmd := exec.Command("bzip2", "-c", "-9")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bzip2: %w", err)
	}
	return out, nil
}

func zipOf(name string, b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// Two members: the data, split in half at a line, so both are read.
	half := bytes.IndexByte(b[len(b)/2:], '\n')
	parts := [][]byte{b, nil}
	if half >= 0 {
		cut := len(b)/2 + half + 1
		parts = [][]byte{b[:cut], b[cut:]}
	}
	for i, p := range parts {
		w, err := zw.Create(fmt.Sprintf("part%d/%s", i+1, name))
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(p); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// csvQuote quotes a CSV field when it needs it (RFC 4180).
func csvQuote(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") || strings.HasPrefix(s, " ") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func sqlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// text generates a text format; it returns the content (UTF-8), the
// format name and the encoding evidx should report.
func (g *gen) text(format string, f *fileState, n int) (string, string, string) {
	var b strings.Builder
	rng := f.rng
	maybeGarbage := func() {
		if rng.Float64() < pGarbage {
			b.WriteString(garbage(rng) + "\n")
			f.rejected++
		}
	}
	switch format {
	case "gbkdash":
		for i := 0; i < n; i++ {
			r := g.row(f, false)
			b.WriteString(r.name + "----" + r.phone + "----" + r.id + "----" + r.email + "\n")
			maybeGarbage()
		}
		return b.String(), "delimited(----)", "gb18030"
	case "csv", "utf16csv":
		b.WriteString("姓名,手机号,身份证号,邮箱,地址,订单号\n")
		for i := 0; i < n; i++ {
			r := g.row(f, false)
			addr := r.addr
			switch rng.IntN(4) {
			case 0:
				addr += "\n" + "收件人: " + r.name // a quoted newline
			case 1:
				addr += ", 近\"地铁\"站"
			}
			fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", csvQuote(r.name), csvQuote(r.phone), csvQuote(r.id),
				csvQuote(r.email), csvQuote(addr), r.decoy11)
			maybeGarbage()
		}
		if format == "utf16csv" {
			return b.String(), "csv", "utf-16le"
		}
		return b.String(), "csv", "utf-8"
	case "tsv":
		for i := 0; i < n; i++ {
			r := g.row(f, false)
			fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.decoy11, r.phone, r.decoy18, r.id, r.email)
			maybeGarbage()
		}
		return b.String(), "tsv", "utf-8"
	case "jsonl":
		for i := 0; i < n; i++ {
			r := g.row(f, false)
			obj := map[string]any{
				"uid":     r.order,
				"profile": map[string]any{"name": r.name, "contact": map[string]any{"mobile": r.phone, "emails": []any{r.email}}},
				"idcard":  r.id,
				"meta":    map[string]any{"order": r.decoy11, "tags": []string{"vip"}},
			}
			if r.email == "" {
				obj["profile"].(map[string]any)["contact"].(map[string]any)["emails"] = []any{}
			}
			line, _ := json.Marshal(obj)
			b.Write(line)
			b.WriteByte('\n')
			if rng.Float64() < pGarbage {
				b.WriteString("{\"uid\": 12, \"broken\n")
				f.rejected++
			}
		}
		return b.String(), "jsonl", "utf-8"
	case "mysql":
		b.WriteString("-- MySQL dump 10.13\n/*!40101 SET NAMES utf8mb4 */;\nDROP TABLE IF EXISTS `members`;\n")
		b.WriteString("CREATE TABLE `members` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `name` varchar(64) DEFAULT NULL,\n  `mobile` varchar(32) DEFAULT NULL,\n  `email` varchar(128) DEFAULT NULL,\n  `id_no` varchar(20) DEFAULT NULL,\n  `addr` text,\n  `order_no` bigint DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `idx_mobile` (`mobile`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n")
		b.WriteString("LOCK TABLES `members` WRITE;\n")
		for i := 0; i < n; {
			b.WriteString("INSERT INTO `members` VALUES ")
			for j := 0; j < 50 && i < n; j, i = j+1, i+1 {
				r := g.row(f, false)
				if j > 0 {
					b.WriteByte(',')
				}
				email := "NULL"
				if r.email != "" {
					email = sqlQuote(r.email)
				}
				name := r.name
				if rng.IntN(10) == 0 {
					name += "'s \"shop\"\\"
				}
				fmt.Fprintf(&b, "(%d,%s,%s,%s,%s,%s,%s)", i+1, sqlQuote(name), sqlQuote(r.phone), email, sqlQuote(r.id), sqlQuote(r.addr+"\n2F"), r.decoy11)
				// A table's own id is "<table>_id"; order_no is a key by
				// its name (random: two rows sharing one are rare).
				g.key(f, "members_id="+strconv.Itoa(i+1))
				g.key(f, "order_no="+r.decoy11)
			}
			b.WriteString(";\n")
			if rng.Float64() < 0.2 {
				// Garbage between statements: one rejected row each.
				b.WriteString(garbage(rng) + "\n")
				f.rejected++
			}
		}
		b.WriteString("UNLOCK TABLES;\n")
		return b.String(), "mysql", "utf-8"
	case "pgcopy":
		b.WriteString("--\n-- PostgreSQL database dump\n--\nSET client_encoding = 'UTF8';\n")
		b.WriteString("CREATE TABLE public.customers (\n    id integer NOT NULL,\n    full_name text,\n    phone character varying(32),\n    email text,\n    sfz character varying(18),\n    ref bigint\n);\n\n")
		b.WriteString("COPY public.customers (id, full_name, phone, email, sfz, ref) FROM stdin;\n")
		esc := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`)
		for i := 0; i < n; i++ {
			r := g.row(f, false)
			email := `\N`
			if r.email != "" {
				email = esc.Replace(r.email)
			}
			fmt.Fprintf(&b, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, esc.Replace(r.name), esc.Replace(r.phone), email, esc.Replace(r.id), r.decoy11)
			g.key(f, "customers_id="+strconv.Itoa(i+1))
		}
		b.WriteString("\\.\n\n")
		return b.String(), "postgres", "utf-8"
	case "text":
		tmpl := []string{
			"客户%s，电话%s，身份证%s，邮箱%s，已付款。",
			"contact %s tel:%s id %s mail %s",
			"%s 的资料 %s / 身份证 %s / %s", // a 15-digit ID is one only where named
		}
		for i := 0; i < n; i++ {
			r := g.row(f, true)
			email := r.email
			if email == "" {
				email = "无"
			}
			fmt.Fprintf(&b, tmpl[rng.IntN(len(tmpl))]+"\n", r.name, r.phone, r.id, email)
			if rng.Float64() < pGarbage {
				// A line without identifiers is still a text row.
				fmt.Fprintf(&b, "备注: 订单 %d 已发货\n", r.order)
				f.rows++
			}
		}
		return b.String(), "text", "utf-8"
	}
	panic("leakgen: unknown format " + format)
}

// sqlite writes two tables (contacts and identities) into a temporary
// database and returns its bytes. A row of each with the same uid is one
// record (evidx joins tables on a shared key column).
func (g *gen) sqlite(dir string, f *fileState, n int) ([]byte, error) {
	tmp, err := os.CreateTemp(dir, ".leakgen-*.sqlite")
	if err != nil {
		return nil, err
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	db, err := sql.Open("sqlite3", name)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for _, s := range []string{
		"CREATE TABLE contacts (uid INTEGER PRIMARY KEY, xm TEXT, tel TEXT, mail TEXT, memo TEXT)",
		"CREATE TABLE identities (uid INTEGER, sfzh TEXT, qq INTEGER)",
	} {
		if _, err := db.Exec(s); err != nil {
			return nil, err
		}
	}
	tx, err := db.Begin()
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		r := g.row(f, false)
		var mail any
		if r.email != "" {
			mail = r.email
		}
		if _, err := tx.Exec("INSERT INTO contacts VALUES (?,?,?,?,?)", i+1, r.name, r.phone, mail, r.addr); err != nil {
			return nil, err
		}
		// Every row of both tables counts as a row.
		if _, err := tx.Exec("INSERT INTO identities VALUES (?,?,?)", i+1, r.id, r.decoy11); err != nil {
			return nil, err
		}
		f.rows++
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	db.Close()
	return os.ReadFile(name)
}

// sortedKeys is for stable output in tests.
func sortedKeys(m map[string]bool) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// Encodings Reencode writes, and Compressions Compress writes.
var (
	Encodings    = []string{"utf-8", "utf-8-bom", "utf-16le", "utf-16be", "gb18030"}
	Compressions = []string{"none", "gzip", "zstd", "bzip2", "xz", "zip"}
)

// Reencode returns UTF-8 text in enc (one of Encodings; the UTF-16 forms
// with their BOM), so tests can check that a file and its re-encodings
// count the same.
func Reencode(text []byte, enc string) ([]byte, error) {
	switch enc {
	case "utf-8":
		return text, nil
	case "utf-8-bom":
		return append([]byte{0xEF, 0xBB, 0xBF}, text...), nil
	case "utf-16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes(text)
	case "utf-16be":
		return unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().Bytes(text)
	case "gb18030":
		return simplifiedchinese.GB18030.NewEncoder().Bytes(text)
	}
	return nil, fmt.Errorf("leakgen: unknown encoding %q", enc)
}

// Compress returns content in container comp (one of Compressions); a
// zip holds it whole as member name (a cut at a line could fall inside a
// quoted field or leave a part without its header).
func Compress(content []byte, comp, name string) ([]byte, error) {
	switch comp {
	case "none":
		return content, nil
	case "gzip":
		return compress(content, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil })
	case "zstd":
		return compress(content, func(w io.Writer) (io.WriteCloser, error) { return zstd.NewWriter(w) })
	case "xz":
		return compress(content, func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) })
	case "bzip2":
		return bzip2(content)
	case "zip":
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.Create(name)
		if err == nil {
			_, err = w.Write(content)
		}
		if err == nil {
			err = zw.Close()
		}
		return buf.Bytes(), err
	}
	return nil, fmt.Errorf("leakgen: unknown compression %q", comp)
}
