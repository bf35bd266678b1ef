package leakgen

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// PlaceholderPhone is the phone the persons corpus gives to HubPeople
// different people: a placeholder a linker must not join them by.
const PlaceholderPhone = "13800138000"

// HubPeople is how many people share PlaceholderPhone.
const HubPeople = 300

// PersonsTruth is the ground truth of GeneratePersons: the people the
// data can link, computed by a union-find of its own over the records it
// wrote (identifiers sharing a record, the two SQLite tables joined on
// cid), the placeholder phone a hub by the rule of package persons.
type PersonsTruth struct {
	Seed  uint64   `json:"seed"`
	Files []string `json:"files"` // in the order to load them
	// Persons is the number of distinct people the data can link.
	Persons int64 `json:"persons"`
	// People is how many generated individuals appear (some are split in
	// two by the data: a phone in one file, an ID number alone in another).
	People int64 `json:"people"`
	// Hub is the placeholder: its canonical value and how many people it
	// touches.
	HubValue  string `json:"hub_value"`
	HubPeople int64  `json:"hub_people"`
	// Province counts the unique ID numbers by their first two digits.
	Province map[string]int64 `json:"province"`
	// Prefecture counts them by their first four digits, Sex by the
	// parity of the 17th digit ("male" odd, "female" even).
	Prefecture map[string]int64 `json:"prefecture"`
	Sex        map[string]int64 `json:"sex"`
	// CNIDs is the number of unique ID numbers.
	CNIDs int64 `json:"cn_ids"`
	// SearchPhone (11 digits) is in the GBK file, which has no ID column;
	// SearchCNID is the ID number the SQL dump links it to (by e-mail).
	SearchPhone string `json:"search_phone"`
	SearchCNID  string `json:"search_cn_id"`
	// PersonsUpTo[i] is the truth of Files[:i+1] loaded alone.
	PersonsUpTo []int64 `json:"persons_up_to"`
	// PersonsPerFile[i] is how many of the Persons have a record in Files[i].
	PersonsPerFile []int64 `json:"persons_per_file"`
}

// Persons corpus files, in load order.
var personsFiles = []string{"people.csv", "contacts_gbk.txt", "members.sql", "app.jsonl", "shop.sqlite"}

// precord is one record written: the canonical identifiers it holds
// ("phone:+86...", "email:...", "cn_id:...") and the file it is in.
type precord struct {
	file int
	ids  []string
}

// GeneratePersons writes the persons corpus for n people (n >= 100) into
// dir: a CSV with a header (name, phone, ID number, e-mail, address), a
// GBK "----" text without header (name----phone----e-mail: no ID
// column), a MySQL dump (name, e-mail, ID number), JSON Lines (name,
// mobile, e-mail) and a SQLite file whose tables customer(cid, name,
// phone) and login(cid, id_no, email) share the key cid. People are spread
// over them so that some link only through another file (a phone in the
// GBK file reaches its ID number through the e-mail in the dump), some
// through the SQLite join, some recur in several files, and some cannot be
// linked at all (a phone in one file, the ID number alone in another).
// HubPeople more people each have PlaceholderPhone beside their own ID
// number and e-mail in the CSV.
func GeneratePersons(dir string, seed uint64, n int) (*PersonsTruth, error) {
	if n < 100 {
		return nil, fmt.Errorf("leakgen: persons corpus needs at least 100 people, not %d", n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e45))
	var (
		csvRows   [][]string // name, phone, id, email, addr
		gbkRows   [][]string // name, phone, email
		sqlRows   [][]string // name, email, id
		jsonRows  [][]string // name, phone, email
		customers [][]string // name, phone
		logins    [][]string // id, email
		recs      []precord
	)
	ph := func(p person) string { return "phone:+86" + p.phone11 }
	em := func(p person) string { return "email:" + p.email }
	cn := func(p person) string { return "cn_id:" + p.id18 }
	const (
		fCSV = iota
		fGBK
		fSQL
		fJSON
		fSQLite
	)
	t := &PersonsTruth{Seed: seed, Province: map[string]int64{}, Prefecture: map[string]int64{}, Sex: map[string]int64{}, HubValue: "+86" + PlaceholderPhone, HubPeople: HubPeople}
	for _, f := range personsFiles {
		t.Files = append(t.Files, filepath.Join(dir, f))
	}
	ids := map[string]bool{}
	addID := func(p person) {
		if !ids[p.id18] {
			ids[p.id18] = true
			t.Province[p.id18[:2]]++
			t.Prefecture[p.id18[:4]]++
			if (p.id18[16]-'0')%2 == 1 {
				t.Sex["male"]++
			} else {
				t.Sex["female"]++
			}
		}
	}
	for i := range n {
		p := makePerson(seed, int64(i))
		r := rng.IntN(100)
		switch {
		case r < 30: // the CSV, a third of them also in the app's JSON Lines
			csvRows = append(csvRows, []string{p.name, p.phone11, p.id18, p.email, p.addr})
			recs = append(recs, precord{fCSV, []string{ph(p), cn(p), em(p)}})
			addID(p)
			if rng.IntN(3) == 0 {
				jsonRows = append(jsonRows, []string{p.name, p.phone11, p.email})
				recs = append(recs, precord{fJSON, []string{ph(p), em(p)}})
			}
		case r < 50: // the shop: phone in customer, ID number in login
			customers = append(customers, []string{p.name, p.phone11})
			logins = append(logins, []string{p.id18, p.email})
			recs = append(recs, precord{fSQLite, []string{ph(p), cn(p), em(p)}})
			addID(p)
			if rng.IntN(4) == 0 {
				csvRows = append(csvRows, []string{p.name, p.phone11, p.id18, "", p.addr})
				recs = append(recs, precord{fCSV, []string{ph(p), cn(p)}})
			}
		case r < 70: // the dump has the ID number, the GBK text the phone: the e-mail joins them
			sqlRows = append(sqlRows, []string{p.name, p.email, p.id18})
			gbkRows = append(gbkRows, []string{p.name, p.phone11, p.email})
			recs = append(recs, precord{fSQL, []string{em(p), cn(p)}}, precord{fGBK, []string{ph(p), em(p)}})
			addID(p)
			if t.SearchPhone == "" {
				t.SearchPhone, t.SearchCNID = p.phone11, p.id18
			}
		case r < 85: // the app only, half of them also in the GBK text
			jsonRows = append(jsonRows, []string{p.name, p.phone11, p.email})
			recs = append(recs, precord{fJSON, []string{ph(p), em(p)}})
			if rng.IntN(2) == 0 {
				gbkRows = append(gbkRows, []string{p.name, p.phone11, p.email})
				recs = append(recs, precord{fGBK, []string{ph(p), em(p)}})
			}
		default: // unlinkable: the phone in the app, the ID number alone in the CSV
			jsonRows = append(jsonRows, []string{p.name, p.phone11, ""})
			csvRows = append(csvRows, []string{p.name, "", p.id18, "", p.addr})
			recs = append(recs, precord{fJSON, []string{ph(p)}}, precord{fCSV, []string{cn(p)}})
			addID(p)
		}
	}
	for i := n; i < n+HubPeople; i++ {
		p := makePerson(seed, int64(i))
		csvRows = append(csvRows, []string{p.name, PlaceholderPhone, p.id18, p.email, p.addr})
		// The placeholder is in the records: the hub rule leaves it out.
		recs = append(recs, precord{fCSV, []string{"phone:+86" + PlaceholderPhone, cn(p), em(p)}})
		addID(p)
	}
	t.People = int64(n + HubPeople)
	t.CNIDs = int64(len(ids))
	// Duplicate rows (the same person twice in a file) change no count.
	dup := func(rows [][]string) [][]string {
		for i, l := 0, len(rows)/10; i < l; i++ {
			rows = append(rows, rows[rng.IntN(len(rows))])
		}
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		return rows
	}
	csvRows, gbkRows, sqlRows, jsonRows = dup(csvRows), dup(gbkRows), dup(sqlRows), dup(jsonRows)
	if err := writePersonsFiles(dir, csvRows, gbkRows, sqlRows, jsonRows, customers, logins); err != nil {
		return nil, err
	}
	for i := range personsFiles {
		var sub []precord
		for _, r := range recs {
			if r.file <= i {
				sub = append(sub, r)
			}
		}
		n, _, _ := linkCount(sub, 0)
		t.PersonsUpTo = append(t.PersonsUpTo, n)
	}
	_, t.PersonsPerFile, _ = linkCount(recs, len(personsFiles))
	t.Persons = t.PersonsUpTo[len(t.PersonsUpTo)-1]
	return t, nil
}

// The hub rule of package persons at its defaults (persons.Options): a
// value whose records hold more than hubIDs distinct ID numbers, or more
// than hubPhones distinct phones other than itself, is a hub.
const (
	hubIDs    = 1
	hubPhones = 10
)

// hubTally is what the hub rule counts of one value: the distinct first
// ID number and first phone of its records (up to one past the limit).
type hubTally struct {
	ids, phones []string
}

// hubValues returns the values of recs the hub rule makes hubs: counted,
// like package persons does, over the first ID number and the first phone
// of each record holding the value.
func hubValues(recs []precord) map[string]bool {
	tally := map[string]*hubTally{}
	for _, r := range recs {
		var id, ph string
		for _, v := range r.ids {
			if id == "" && strings.HasPrefix(v, "cn_id:") {
				id = v
			}
			if ph == "" && strings.HasPrefix(v, "phone:") {
				ph = v
			}
		}
		for _, v := range r.ids {
			t := tally[v]
			if t == nil {
				t = &hubTally{}
				tally[v] = t
			}
			if id != "" && !strings.HasPrefix(v, "cn_id:") && len(t.ids) <= hubIDs && !slices.Contains(t.ids, id) {
				t.ids = append(t.ids, id)
			}
			if ph != "" && ph != v && len(t.phones) <= hubPhones && !slices.Contains(t.phones, ph) {
				t.phones = append(t.phones, ph)
			}
		}
	}
	hubs := map[string]bool{}
	for v, t := range tally {
		if len(t.ids) > hubIDs || len(t.phones) > hubPhones {
			hubs[v] = true
		}
	}
	return hubs
}

// linkCount is the number of people in recs: the connected components of
// records joined by shared values, hubs (hubValues) joining nothing,
// counting the components holding an identifier (a join key, "key:…",
// links rows but is no person); and per file the components with a
// record holding an identifier in it (files > 0), and the number of hubs.
// A plain union-find over value strings, written apart from package
// persons, which it checks.
func linkCount(recs []precord, files int) (int64, []int64, int64) {
	hubs := hubValues(recs)
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for _, r := range recs {
		first := ""
		for _, id := range r.ids {
			if hubs[id] {
				continue
			}
			if _, ok := parent[id]; !ok {
				parent[id] = id
			}
			if first == "" {
				first = id
			} else if a, b := find(first), find(id); a != b {
				parent[a] = b
			}
		}
	}
	person := map[string]bool{} // roots of components holding an identifier
	for x := range parent {
		if !strings.HasPrefix(x, "key:") {
			person[find(x)] = true
		}
	}
	per := make([]int64, files)
	seen := map[[2]string]bool{}
	for _, r := range recs {
		if r.file >= files {
			continue
		}
		for _, id := range r.ids {
			if hubs[id] || strings.HasPrefix(id, "key:") {
				continue
			}
			k := [2]string{strconv.Itoa(r.file), find(id)}
			if !seen[k] {
				seen[k] = true
				per[r.file]++
			}
			break
		}
	}
	return int64(len(person)), per, int64(len(hubs))
}

func writePersonsFiles(dir string, csvRows, gbkRows, sqlRows, jsonRows, customers, logins [][]string) error {
	var b strings.Builder
	b.WriteString("姓名,手机号,身份证号,邮箱,地址\n")
	for _, r := range csvRows {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s\n", csvQuote(r[0]), r[1], r[2], r[3], csvQuote(r[4]))
	}
	if err := os.WriteFile(filepath.Join(dir, personsFiles[0]), []byte(b.String()), 0o644); err != nil {
		return err
	}
	b.Reset()
	for _, r := range gbkRows {
		b.WriteString(r[0] + "----" + r[1] + "----" + r[2] + "\n")
	}
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(b.String())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, personsFiles[1]), []byte(gbk), 0o644); err != nil {
		return err
	}
	b.Reset()
	b.WriteString("-- MySQL dump 10.13\n/*!40101 SET NAMES utf8mb4 */;\nDROP TABLE IF EXISTS `members`;\n")
	b.WriteString("CREATE TABLE `members` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `name` varchar(64) DEFAULT NULL,\n  `email` varchar(128) DEFAULT NULL,\n  `id_no` varchar(20) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n")
	b.WriteString("LOCK TABLES `members` WRITE;\n")
	for i := 0; i < len(sqlRows); {
		b.WriteString("INSERT INTO `members` VALUES ")
		for j := 0; j < 50 && i < len(sqlRows); j, i = j+1, i+1 {
			if j > 0 {
				b.WriteByte(',')
			}
			r := sqlRows[i]
			fmt.Fprintf(&b, "(%d,%s,%s,%s)", i+1, sqlQuote(r[0]), sqlQuote(r[1]), sqlQuote(r[2]))
		}
		b.WriteString(";\n")
	}
	b.WriteString("UNLOCK TABLES;\n")
	if err := os.WriteFile(filepath.Join(dir, personsFiles[2]), []byte(b.String()), 0o644); err != nil {
		return err
	}
	b.Reset()
	for _, r := range jsonRows {
		obj := map[string]any{"name": r[0], "mobile": r[1]}
		if r[2] != "" {
			obj["email"] = r[2]
		}
		line, _ := json.Marshal(obj)
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, personsFiles[3]), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return writeShop(filepath.Join(dir, personsFiles[4]), customers, logins)
}

// writeShop writes the SQLite file: customer(cid, name, phone) and
// login(cid, id_no, email), the i-th customer's login under the same cid
// (logins in another order, so rows do not line up by position).
func writeShop(path string, customers, logins [][]string) error {
	os.Remove(path)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range []string{
		"CREATE TABLE customer (cid INTEGER PRIMARY KEY, name TEXT, phone TEXT)",
		"CREATE TABLE login (lid INTEGER PRIMARY KEY, cid INTEGER, id_no TEXT, email TEXT)",
	} {
		if _, err := db.Exec(s); err != nil {
			return err
		}
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i, c := range customers {
		if _, err := tx.Exec("INSERT INTO customer VALUES (?,?,?)", 1000+i, c[0], c[1]); err != nil {
			return err
		}
	}
	order := make([]int, len(logins))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return logins[order[a]][0] < logins[order[b]][0] })
	for k, i := range order {
		if _, err := tx.Exec("INSERT INTO login VALUES (?,?,?,?)", k+1, 1000+i, logins[i][0], logins[i][1]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return db.Close()
}
