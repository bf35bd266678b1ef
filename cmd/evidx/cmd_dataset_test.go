package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evidx/evidx/custody"
	"github.com/evidx/evidx/internal/leakgen"
	"github.com/evidx/evidx/internal/testutil"
)

// idxRun runs the CLI in-process: stdout and the error main would map to
// an exit code.
func idxRun(t *testing.T, argv ...string) ([]byte, error) {
	r := runCLI(t, argv...)
	return r.stdout, r.err
}

// leak is a generated dataset: the CSV text (identifiers in messy
// spellings) and the canonical identities it holds.
type leak struct {
	csv    string
	truth  map[string]map[string]bool // kind -> canonical value
	spelt  map[string]string          // canonical -> one spelling used in the file
	bad    int                        // ID numbers with a wrong check character
	rows   int
	phones []string
}

// cnCheck is the ISO 7064 MOD 11-2 check character of 17 digits.
func cnCheck(d17 string) byte {
	w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	s := 0
	for i := range 17 {
		s += int(d17[i]-'0') * w[i]
	}
	return "10X98765432"[s%11]
}

// genLeak writes rows rows with a header; identities come from pools
// starting at off, so two leaks with overlapping ranges share identities.
func genLeak(seed uint64, rows, pool, off int) leak {
	r := rand.New(rand.NewPCG(seed, 1))
	l := leak{truth: map[string]map[string]bool{"phone": {}, "email": {}, "cn_id": {}}, spelt: map[string]string{}, rows: rows}
	var b strings.Builder
	b.WriteString("name,phone,email,idcard\n")
	for i := range rows {
		n := off + r.IntN(pool)
		digits := fmt.Sprintf("1%d%09d", 3+n%7, n*7919%1000000000)
		var ph string
		switch i % 4 {
		case 0:
			ph = digits
		case 1:
			ph = digits[:3] + "-" + digits[3:7] + "-" + digits[7:]
		case 2:
			ph = "+86 " + digits[:3] + " " + digits[3:7] + " " + digits[7:]
		default:
			ph = "0086" + digits
		}
		l.truth["phone"]["+86"+digits] = true
		l.spelt["+86"+digits] = ph
		l.phones = append(l.phones, "+86"+digits)
		e := off + r.IntN(pool)
		email := fmt.Sprintf("user%d@mail%d.example.cn", e, e%5)
		l.truth["email"][email] = true
		if i%3 == 0 {
			email = strings.ToUpper(email)
		}
		d := off + r.IntN(pool)
		d17 := fmt.Sprintf("110105%04d%02d%02d%03d", 1950+d%50, 1+d%12, 1+d%28, d%1000)
		id := d17 + string(cnCheck(d17))
		idField := id
		switch {
		case i%50 == 7:
			// A wrong check character: invalid, never an identity.
			bad := byte('0')
			if id[17] == '0' {
				bad = '1'
			}
			idField = d17 + string(bad)
			l.bad++
		case i%5 == 0:
			// 15-digit legacy form: no century, no check character.
			idField = d17[:6] + d17[8:17]
			l.truth["cn_id"][id] = true
		default:
			if i%2 == 0 {
				idField = strings.ToLower(idField)
			}
			l.truth["cn_id"][id] = true
		}
		fmt.Fprintf(&b, "name%d,%s,%s,%s\n", i, ph, email, idField)
	}
	l.csv = b.String()
	return l
}

func (l leak) counts() map[string]int64 {
	out := map[string]int64{}
	for k, m := range l.truth {
		out[k] = int64(len(m))
	}
	return out
}

func unionCounts(ls ...leak) map[string]int64 {
	out := map[string]int64{}
	for _, k := range []string{"phone", "email", "cn_id"} {
		s := map[string]bool{}
		for _, l := range ls {
			for v := range l.truth[k] {
				s[v] = true
			}
		}
		out[k] = int64(len(s))
	}
	return out
}

type statsJSON struct {
	Unique  map[string]int64 `json:"unique"`
	Sources []struct {
		Name     string           `json:"name"`
		SHA256   string           `json:"sha256"`
		Rows     int64            `json:"rows"`
		Rejected int64            `json:"rejected"`
		Unique   map[string]int64 `json:"unique"`
		New      map[string]int64 `json:"new"`
		Invalid  map[string]int64 `json:"invalid"`
		Status   string           `json:"status"`
	} `json:"sources"`
	Overlap []struct {
		A, B   string
		Shared int64
	} `json:"overlap"`
}

func decodeOne(t *testing.T, out []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", out)
	}
}

func sameCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for _, k := range []string{"phone", "email", "cn_id"} {
		if got[k] != want[k] {
			t.Errorf("%s[%s] = %d, want %d (got %v)", what, k, got[k], want[k], got)
		}
	}
}

// TestDatasetAddStatsSearch drives the three commands on a real case with
// generated leaks whose truth the generator computed.
func TestDatasetAddStatsSearch(t *testing.T) {
	dir := t.TempDir()
	cs := filepath.Join(dir, "case")
	if _, err := idxRun(t, "case", "init", cs, "--case-number", "T-6", "--examiner", "tester", "--shards", "4"); err != nil {
		t.Fatal(err)
	}
	a := genLeak(1, 3000, 2000, 0)
	b := genLeak(2, 2000, 2000, 1200)
	pa, pb := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b leak.csv")
	os.WriteFile(pa, []byte(a.csv), 0o600)
	os.WriteFile(pb, []byte(b.csv), 0o600)
	testutil.Unchanged(t, pa, pb)

	out, err := idxRun(t, "dataset", "add", cs, pa, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var added struct {
		Sources []struct {
			Name    string `json:"name"`
			Skipped bool   `json:"skipped"`
		} `json:"sources"`
	}
	decodeOne(t, out, &added)
	if len(added.Sources) != 1 || added.Sources[0].Name != "a.csv" || added.Sources[0].Skipped {
		t.Fatalf("add a: %s", out)
	}
	if _, err := idxRun(t, "dataset", "add", cs, pb, "--source", "leak B"); err != nil {
		t.Fatal(err)
	}

	var st statsJSON
	out, err = idxRun(t, "stats", cs, "--json")
	if err != nil {
		t.Fatal(err)
	}
	decodeOne(t, out, &st)
	sameCounts(t, "unique", st.Unique, unionCounts(a, b))
	if len(st.Sources) != 2 || st.Sources[1].Name != "leak B" {
		t.Fatalf("sources: %s", out)
	}
	sameCounts(t, "a unique", st.Sources[0].Unique, a.counts())
	sameCounts(t, "b unique", st.Sources[1].Unique, b.counts())
	newB := map[string]int64{}
	var shared int64
	for k, m := range b.truth {
		for v := range m {
			if a.truth[k][v] {
				shared++
			} else {
				newB[k]++
			}
		}
	}
	sameCounts(t, "b new", st.Sources[1].New, newB)
	if st.Sources[0].Rows != int64(a.rows) || st.Sources[0].Invalid["cn_id"] != int64(a.bad) {
		t.Errorf("a rows %d invalid %v, want %d and %d", st.Sources[0].Rows, st.Sources[0].Invalid, a.rows, a.bad)
	}
	if len(st.Overlap) != 1 || st.Overlap[0].Shared != shared {
		t.Errorf("overlap %+v, want %d", st.Overlap, shared)
	}

	// Adding the same files again changes nothing.
	if _, err := idxRun(t, "dataset", "add", cs, pa, pb); err != nil {
		t.Fatal(err)
	}
	var again statsJSON
	out, _ = idxRun(t, "stats", cs, "--json")
	decodeOne(t, out, &again)
	sameCounts(t, "unique after re-add", again.Unique, unionCounts(a, b))
	if len(again.Sources) != 2 {
		t.Errorf("re-add made %d sources", len(again.Sources))
	}

	// Search: other spellings of known values, and absent ones.
	var onlyA, inBoth string
	for _, p := range a.phones {
		if !b.truth["phone"][p] && onlyA == "" {
			onlyA = p
		}
		if b.truth["phone"][p] && inBoth == "" {
			inBoth = p
		}
	}
	spell := func(canon string) string { // ＋86 and full-width digits
		var s strings.Builder
		s.WriteString("＋８６ ")
		for _, c := range canon[3:] {
			s.WriteRune(c - '0' + '０')
		}
		return s.String()
	}
	var anEmail, anID string
	for v := range a.truth["email"] {
		if !b.truth["email"][v] {
			anEmail = v
			break
		}
	}
	for v := range a.truth["cn_id"] {
		if !b.truth["cn_id"][v] {
			anID = v
			break
		}
	}
	absentID := "11010519491231002X"
	if a.truth["cn_id"][absentID] || b.truth["cn_id"][absentID] {
		t.Fatal("generator made the absent ID")
	}
	out, err = idxRun(t, "search", cs, spell(onlyA), inBoth[3:6]+"-"+inBoth[6:10]+"-"+inBoth[10:], strings.ToUpper(anEmail),
		strings.ToLower(anID), "19999999999", "nobody@nowhere.cn", absentID, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sr struct {
		Matches []struct {
			Query   string
			Kind    string
			Value   string
			Sources []struct {
				Name        string `json:"name"`
				Occurrences int64  `json:"occurrences"`
				FirstLoc    string `json:"first_loc"`
			}
		}
		NotFound []string `json:"not_found"`
	}
	decodeOne(t, out, &sr)
	want := map[string][]string{onlyA: {"a.csv"}, inBoth: {"a.csv", "leak B"}, anEmail: {"a.csv"}, anID: {"a.csv"}}
	if len(sr.Matches) != len(want) {
		t.Fatalf("matches: %s", out)
	}
	for _, m := range sr.Matches {
		names := []string{}
		for _, s := range m.Sources {
			names = append(names, s.Name)
			if s.Occurrences < 1 || !strings.HasPrefix(s.FirstLoc, "line ") {
				t.Errorf("%s in %s: %+v", m.Value, s.Name, s)
			}
		}
		if fmt.Sprint(names) != fmt.Sprint(want[m.Value]) {
			t.Errorf("%q (%s %s) in %v, want %v", m.Query, m.Kind, m.Value, names, want[m.Value])
		}
	}
	if len(sr.NotFound) != 3 {
		t.Errorf("not found: %v", sr.NotFound)
	}

	// --file: victims who reported, one per line, in their own spellings.
	list := filepath.Join(dir, "victims.txt")
	os.WriteFile(list, []byte(a.spelt[onlyA]+"\n\n19999999999\n"+strings.ToUpper(anEmail)+"\n"), 0o600)
	out, err = idxRun(t, "search", cs, "--file", list, "--json")
	if err != nil {
		t.Fatal(err)
	}
	sr.Matches, sr.NotFound = nil, nil
	decodeOne(t, out, &sr)
	if len(sr.Matches) != 2 || len(sr.NotFound) != 1 || sr.NotFound[0] != "19999999999" {
		t.Errorf("--file: %s", out)
	}

	// Human output is a table naming both sources.
	out, err = idxRun(t, "stats", cs)
	if err != nil || !bytes.Contains(out, []byte("leak B")) || !bytes.Contains(out, []byte("Overlap")) {
		t.Errorf("stats table: %v\n%s", err, out)
	}
}

// TestIndexCommandsUsage: bad usage is a usageError (exit 2).
func TestIndexCommandsUsage(t *testing.T) {
	dir := t.TempDir()
	for _, argv := range [][]string{
		{"dataset", "add", dir},
		{"stats"},
		{"stats", dir, dir},
		{"search"},
		{"search", dir},
		{"search", dir, "x", "--kind", "shoe_size"},
		{"dataset", "add", dir, "a", "b", "--source", "x"},
	} {
		_, err := idxRun(t, argv...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", argv, err)
		}
	}
	// Not a case: a failure, not usage.
	f := filepath.Join(dir, "x.csv")
	os.WriteFile(f, []byte("a\n"), 0o600)
	if _, err := idxRun(t, "dataset", "add", dir, f); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("dataset add into a non-case: %v", err)
	}
}

// TestDatasetAddSIGKILL kills `evidx dataset add` (the real binary) with
// SIGKILL at random moments, reruns it, and compares stats with a clean
// run; verify must then pass.
func TestDatasetAddSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := evidxBinary(t)
	l := genLeak(9, 60000, 40000, 0)
	csv := filepath.Join(dir, "big leak.csv")
	os.WriteFile(csv, []byte(l.csv), 0o600)
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("evidx %v: %v", args, err)
		}
		return out
	}
	stats := func(cs string) statsJSON {
		var st statsJSON
		decodeOne(t, run("stats", cs, "--json"), &st)
		return st
	}
	clean := filepath.Join(dir, "clean")
	run("case", "init", clean, "--case-number", "K", "--examiner", "x", "--shards", "4")
	start := time.Now()
	run("dataset", "add", clean, csv)
	took := time.Since(start)
	want := stats(clean)
	sameCounts(t, "clean", want.Unique, l.counts())

	r := rand.New(rand.NewPCG(3, 3))
	cs := filepath.Join(dir, "killed")
	midLoad := 0
	run("case", "init", cs, "--case-number", "K", "--examiner", "x", "--shards", "4")
	for i := range 4 {
		cmd := exec.Command(bin, "dataset", "add", cs, csv)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(took/5 + time.Duration(r.Int64N(int64(took*3/4))))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		st := stats(cs)
		status := "no source yet"
		if len(st.Sources) > 0 {
			status = st.Sources[0].Status
		}
		if status == "loading" {
			midLoad++
		}
		t.Logf("kill %d: %v; source: %s", i, err, status)
	}
	if midLoad == 0 {
		t.Log("no kill landed inside a load this time")
	}
	run("dataset", "add", cs, csv)
	got := stats(cs)
	sameCounts(t, "after kills", got.Unique, want.Unique)
	if len(got.Sources) != 1 || got.Sources[0].Status != "done" {
		t.Fatalf("sources %+v", got.Sources)
	}
	sameCounts(t, "source unique", got.Sources[0].Unique, want.Sources[0].Unique)
	sameCounts(t, "source new", got.Sources[0].New, want.Sources[0].New)
	if got.Sources[0].Rows != want.Sources[0].Rows {
		t.Errorf("rows %d, want %d", got.Sources[0].Rows, want.Sources[0].Rows)
	}
	if out, err := exec.Command(bin, "verify", cs).CombinedOutput(); err != nil {
		t.Errorf("verify after kills: %v\n%s", err, out)
	}
	// The killed runs' temporary files (personal data) are gone: the
	// rerun swept them.
	left, _ := filepath.Glob(filepath.Join(cs, "tmp", "*"))
	sorts, _ := filepath.Glob(filepath.Join(cs, "index", "sort-*"))
	if len(left)+len(sorts) > 0 {
		t.Errorf("left behind after the rerun: %q %q", left, sorts)
	}
}

// evidxBinary builds the evidx binary once per test run, for tests that
// must kill a real process.
func evidxBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "evidx-test-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "evidx")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestCountSIGKILLSpill: `evidx count` killed while it spills leaves its
// run directory (personal data) under --tmp; the next count removes it,
// and its own run directory is gone when it ends.
func TestCountSIGKILLSpill(t *testing.T) {
	bin := evidxBinary(t)
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	csv := filepath.Join(dir, "leak.csv")
	f, err := os.Create(csv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leakgen.WriteBenchCSV(f, 5, 1_500_000, 0.2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(bin, "count", "--mem", "64M", "--workers", "1", "--tmp", tmp, csv)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var spilled []string
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end) && len(spilled) == 0; time.Sleep(20 * time.Millisecond) {
		spilled, _ = filepath.Glob(filepath.Join(tmp, "evidx-count-*", "evidx-dedupe-*", "*"))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(spilled) == 0 {
		t.Fatal("count never spilled under --mem 64M: the test proves nothing")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "evidx-count-*")); len(left) != 1 {
		t.Fatalf("after SIGKILL, run directories %q, want the killed one", left)
	}
	small := filepath.Join(dir, "small.csv")
	os.WriteFile(small, []byte("phone\n13812345678\n"), 0o600)
	if out, err := exec.Command(bin, "count", "--tmp", tmp, small).CombinedOutput(); err != nil {
		t.Fatalf("count: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("after the next count, %d entries left in --tmp: %v", len(left), left)
	}
}

// TestDatasetAddRejects: a malformed row is counted and kept, with its
// location, in rejects/SHA256.tsv, mode 0600, by `dataset add` and by
// `evidence add` for a dataset found on an image; nothing is kept for a
// dataset skipped as already ingested or without malformed rows. The
// custody layer lists both files, each is an output of its load's audit
// entry, and `evidx verify` passes, then fails naming the file once a
// byte of it changes.
func TestDatasetAddRejects(t *testing.T) {
	for _, tool := range []string{"mkfs.fat", "mcopy", "mmd"} {
		testutil.NeedTool(t, tool)
	}
	dir := t.TempDir()
	cs := filepath.Join(dir, "case")
	if _, err := idxRun(t, "case", "init", cs, "--case-number", "R", "--examiner", "x"); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "r.csv")
	os.WriteFile(f, []byte("name,phone\nzhang,13812345678\n\"open,13900001111\n"), 0o600)
	out, err := idxRun(t, "dataset", "add", cs, f, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Sources []struct {
			SHA256   string `json:"sha256"`
			Rejected int64  `json:"rejected"`
			Skipped  bool   `json:"skipped"`
		} `json:"sources"`
	}
	decodeOne(t, out, &res)
	if len(res.Sources) != 1 || res.Sources[0].Rejected != 1 || res.Sources[0].SHA256 != testutil.SHA256File(t, f) {
		t.Fatalf("%s", out)
	}
	fromFile := filepath.Join("rejects", res.Sources[0].SHA256+".tsv")
	checkRejectsFile(t, cs, fromFile, f, []string{"line 3"})

	// Added again: skipped, and its entry keeps nothing.
	if out, err = idxRun(t, "dataset", "add", cs, f, "--json"); err != nil {
		t.Fatal(err)
	}
	decodeOne(t, out, &res)
	if len(res.Sources) != 1 || !res.Sources[0].Skipped {
		t.Fatalf("second add: %s", out)
	}

	// An image holding a dataset with two malformed rows, one without
	// any, and r.csv again (already ingested: skipped).
	e := filepath.Join(dir, "e.csv")
	ecsv := "name,phone,email\n"
	for i := 2; i <= 30; i++ {
		switch i {
		case 7:
			ecsv += "a,b,c,d,e\n"
		case 19:
			ecsv += "just text\n"
		default:
			ecsv += fmt.Sprintf("u%d,138%08d,u%d@example.cn\n", i, i, i)
		}
	}
	os.WriteFile(e, []byte(ecsv), 0o600)
	clean := filepath.Join(dir, "clean.csv")
	os.WriteFile(clean, []byte("name,phone\nwang,13712345678\nzhao,13612345678\n"), 0o600)
	img := filepath.Join(dir, "seized.dd")
	testutil.Run(t, "mkfs.fat", "-F", "32", "-C", img, "65536")
	testutil.Run(t, "mmd", "-i", img, "::/data")
	testutil.Run(t, "mcopy", "-i", img, e, clean, f, "::/data/")
	testutil.Unchanged(t, img)
	out, err = idxRun(t, "evidence", "add", cs, img, "--id", "EV1", "--no-carve", "--no-scan", "--json")
	if err != nil {
		t.Fatalf("evidence add: %v\n%s", err, out)
	}
	fromImage := filepath.Join("rejects", testutil.SHA256File(t, e)+".tsv")
	checkRejectsFile(t, cs, fromImage, "EV1 p1:/data/e.csv", []string{"line 7", "line 19"})

	// The custody layer lists the two, each recorded by the one load
	// that kept it.
	ctx := context.Background()
	c, err := custody.Open(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := c.RejectsItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines, _, err := c.ReadAudit(ctx)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Path != min(fromFile, fromImage) || listed[1].Path != max(fromFile, fromImage) {
		t.Fatalf("custody lists %+v, want %s and %s", listed, fromFile, fromImage)
	}
	var loads int
	keptBy := map[string][]custody.Item{}
	for _, l := range lines {
		if l.Action != "dataset.add" {
			continue
		}
		loads++
		if l.Outcome != custody.OutcomeOK {
			t.Errorf("audit line %d: %s %s", l.Seq, l.Outcome, l.Error)
		}
		keptBy[l.Inputs[0].Path] = append(keptBy[l.Inputs[0].Path], l.Outputs...)
	}
	absF, _ := filepath.Abs(f)
	if loads != 5 || len(keptBy[absF]) != 1 || keptBy[absF][0] != listed[slices.IndexFunc(listed, func(it custody.Item) bool { return it.Path == fromFile })] ||
		len(keptBy["p1:/data/e.csv"]) != 1 || keptBy["p1:/data/e.csv"][0].Path != fromImage ||
		len(keptBy["p1:/data/clean.csv"]) != 0 || len(keptBy["p1:/data/r.csv"]) != 0 {
		t.Errorf("%d dataset.add entries; rejects recorded per input: %+v", loads, keptBy)
	}

	if out, err := idxRun(t, "verify", cs, "--json"); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, rel := range []string{fromImage, fromFile} {
		p := filepath.Join(cs, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		changed := bytes.Clone(b)
		changed[len(changed)-2] ^= 0x20
		os.WriteFile(p, changed, 0o600)
		if _, err := idxRun(t, "verify", cs); err == nil || !strings.Contains(err.Error(), rel) {
			t.Errorf("verify after a byte of %s changed: %v, want a failure naming it", rel, err)
		}
		os.WriteFile(p, b, 0o600)
		if _, err := idxRun(t, "verify", cs); err != nil {
			t.Errorf("verify after %s was restored: %v", rel, err)
		}
	}
}

// checkRejectsFile checks the rejects file rel of case cs: mode 0600 in a
// 0700 directory, one line per wanted location, each naming the dataset
// as name, no temporary rejects file left.
func checkRejectsFile(t *testing.T, cs, rel, name string, locs []string) {
	t.Helper()
	p := filepath.Join(cs, rel)
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("rejects file %s: %v %v", rel, st, err)
	}
	if st, err := os.Stat(filepath.Dir(p)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("rejects directory: %v %v", st, err)
	}
	b, _ := os.ReadFile(p)
	rows := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(rows) != len(locs) {
		t.Fatalf("%s: %q, want %d lines", rel, b, len(locs))
	}
	for i, r := range rows {
		if f := strings.Split(r, "\t"); len(f) != 4 || f[0] != name || f[1] != locs[i] {
			t.Errorf("%s line %d: %q, want %q TAB %q TAB reason TAB text", rel, i+1, r, name, locs[i])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(cs, "rejects", ".loading-*")); len(left) != 0 {
		t.Errorf("temporary rejects left: %v", left)
	}
}

// TestMain removes the binary evidxBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
