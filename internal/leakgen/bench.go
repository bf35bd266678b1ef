package leakgen

import (
	"bufio"
	"io"
	"math/rand/v2"
)

// BenchTruth is the truth of a bench CSV: every person has a distinct
// phone, ID number and e-mail by construction (see makePerson), so each
// kind's unique count is the number of distinct people written.
type BenchTruth struct {
	Rows   int64  `json:"rows"`
	Unique Counts `json:"unique"`
}

// WriteBenchCSV writes the benchmark CSV: a header, then rows of name,
// phone, ID number, e-mail and address in canonical-looking spellings;
// a share dup of the rows repeat an earlier row exactly. It streams: only
// the count of people is kept, each row is regenerated from its number.
func WriteBenchCSV(w io.Writer, seed uint64, rows int64, dup float64) (BenchTruth, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0xbe4c))
	bw.WriteString("name,phone,id_no,email,address\n")
	var people int64
	buf := make([]byte, 0, 256)
	for i := int64(0); i < rows; i++ {
		var pn int64
		if people > 0 && rng.Float64() < dup {
			pn = rng.Int64N(people)
		} else {
			pn = people
			people++
		}
		p := makePerson(seed, pn)
		buf = append(buf[:0], p.name...)
		buf = append(buf, ',')
		buf = append(buf, p.phone11...)
		buf = append(buf, ',')
		buf = append(buf, p.id18...)
		buf = append(buf, ',')
		buf = append(buf, p.email...)
		buf = append(buf, ',')
		buf = append(buf, p.addr...)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return BenchTruth{}, err
		}
	}
	if err := bw.Flush(); err != nil {
		return BenchTruth{}, err
	}
	return BenchTruth{Rows: rows, Unique: Counts{"phone": people, "email": people, "cn_id": people, "bank_card": 0}}, nil
}
