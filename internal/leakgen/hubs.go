package leakgen

import (
	"bufio"
	"io"
	"math/rand/v2"
)

// HubsTruth is the truth of a hubs CSV: how many persons it holds and,
// per hub phone (canonical "+86…"), how many distinct persons share it.
type HubsTruth struct {
	Rows    int64            `json:"rows"`
	Persons int64            `json:"persons"`
	Hubs    map[string]int64 `json:"hubs"`
}

// WriteHubsCSV writes a CSV (name, phone, id_no, email) where each of hubs
// phones is shared by 2 to 4 distinct persons (one in ten by up to
// 61), the way a leak drawn from
// recycled numbers shares them. Every person has an ID number and e-mail
// of their own; some appear twice with the hub phone, some once more with
// a phone of their own, so a hub's people are fewer than its records.
func WriteHubsCSV(w io.Writer, seed uint64, hubs int) (HubsTruth, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0x4b5b))
	truth := HubsTruth{Hubs: map[string]int64{}}
	bw.WriteString("name,phone,id_no,email\n")
	row := func(p person, phone string) {
		bw.WriteString(p.name + "," + phone + "," + p.id18 + "," + p.email + "\n")
		truth.Rows++
	}
	for h := range hubs {
		// Hub phones come from person numbers no holder uses.
		phone := makePerson(seed, personSpace-1-int64(h)).phone11
		// Most hubs of a recycled pool touch a few people, a few many.
		k := 2 + rng.IntN(3)
		if rng.IntN(10) == 0 {
			k = 2 + rng.IntN(60)
		}
		truth.Hubs["+86"+phone] = int64(k)
		for range k {
			p := makePerson(seed, truth.Persons)
			truth.Persons++
			row(p, phone)
			switch rng.IntN(4) {
			case 0:
				row(p, phone)
			case 1:
				row(p, p.phone11)
			}
		}
	}
	return truth, bw.Flush()
}
