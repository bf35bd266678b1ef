package persons

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Category is an information category of 法释〔2017〕10号 art. 5: the
// number of records (people) at which an illegal provision or acquisition
// is 情节严重; ten times it is 情节特别严重 (art. 6).
type Category struct {
	Name    string `json:"category"`
	Label   string `json:"label"`
	Serious int64  `json:"serious"`
}

// Categories are the categories an examiner can tag a source with.
var Categories = []Category{
	{"location", "行踪轨迹信息", 50},
	{"communication", "通信内容", 50},
	{"credit", "征信信息", 50},
	{"property", "财产信息", 50},
	{"lodging", "住宿信息", 500},
	{"call_records", "通信记录", 500},
	{"health", "健康生理信息", 500},
	{"transaction", "交易信息", 500},
	{"other", "其他公民个人信息", 5000},
}

// LookupCategory returns the category named name.
func LookupCategory(name string) (Category, bool) {
	for _, c := range Categories {
		if c.Name == name {
			return c, true
		}
	}
	return Category{}, false
}

// CategoryNames lists the category names, for messages.
func CategoryNames() []string {
	var out []string
	for _, c := range Categories {
		out = append(out, c.Name)
	}
	return out
}

// CategoryCount is the sentencing count of one category: its persons
// (deduplicated records) against the thresholds.
type CategoryCount struct {
	Category
	EspeciallySerious int64   `json:"especially_serious"`
	Persons           int64   `json:"persons"`
	Level             string  `json:"level"` // "below", "serious" (情节严重), "especially_serious" (情节特别严重)
	Sources           []int64 `json:"sources"`
}

// Sentencing is the counts a sentencing needs.
type Sentencing struct {
	Categories []CategoryCount `json:"categories"`
	// Combined is the sum over the categories of persons / serious
	// threshold: at 1 or more the categories together reach 情节严重 (art.
	// 5 para. 1 (6)), at 10 情节特别严重.
	Combined      float64 `json:"combined"`
	CombinedLevel string  `json:"combined_level"`
	// Uncategorized counts the persons of sources without a category.
	Uncategorized int64  `json:"uncategorized"`
	Method        string `json:"method"`
}

// SentencingMethod states the count in words a judge can follow.
const SentencingMethod = "Each source (a leaked file) is tagged by the examiner with the category of information it holds, " +
	"as 法释〔2017〕10号 art. 5 distinguishes them. For each category the count is the number of different people " +
	"whose records appear in that category's sources: a person's record counted once however often it recurs, in " +
	"one file or several (art. 11), people being identified by their phone numbers, e-mail addresses, ID numbers " +
	"and bank cards linked as stated in the linking method. A category reaches 情节严重 at its threshold (50 for " +
	"行踪轨迹、通信内容、征信、财产信息; 500 for 住宿、通信记录、健康生理、交易信息; 5000 for other personal " +
	"information) and 情节特别严重 at ten times it; categories below their thresholds are also added in " +
	"proportion (each count divided by its threshold; a sum of 1 reaches 情节严重)."

func level(ratio float64) string {
	switch {
	case ratio >= 10:
		return "especially_serious"
	case ratio >= 1:
		return "serious"
	}
	return "below"
}

const categoriesName = "categories.json"

// SourceCategories returns the categories tagged, by source id.
func SourceCategories(dir string) (map[int64]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, categoriesName))
	if errors.Is(err, os.ErrNotExist) {
		return map[int64]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("persons: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("persons: %s: %w", filepath.Join(dir, categoriesName), err)
	}
	out := map[int64]string{}
	for k, v := range m {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("persons: %s: source %q", filepath.Join(dir, categoriesName), k)
		}
		out[id] = v
	}
	return out, nil
}

// SetCategory tags source id with category ("" removes the tag); the
// next Build counts it.
func SetCategory(dir string, id int64, category string) error {
	if _, ok := LookupCategory(category); !ok && category != "" {
		return fmt.Errorf("category %q: one of %v", category, CategoryNames())
	}
	m, err := SourceCategories(dir)
	if err != nil {
		return err
	}
	if category == "" {
		delete(m, id)
	} else {
		m[id] = category
	}
	out := map[string]string{}
	for k, v := range m {
		out[strconv.FormatInt(k, 10)] = v
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	p := filepath.Join(dir, categoriesName)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	return nil
}

// sentencing counts, per category, the distinct persons among the records
// of its sources; mark is a scratch array of one stamp per record.
func (b *builder) sentencing(mark []uint32, stamp0 uint32) Sentencing {
	s := Sentencing{Categories: []CategoryCount{}, Method: SentencingMethod}
	for k, cat := range Categories {
		stamp := stamp0 + uint32(k)
		cc := CategoryCount{Category: cat, EspeciallySerious: 10 * cat.Serious, Sources: []int64{}}
		for i, src := range b.sources {
			if src.Category != cat.Name {
				continue
			}
			cc.Sources = append(cc.Sources, src.ID)
			for r := b.lo[i]; r < b.lo[i+1]; r++ {
				if b.holds(r) && mark[b.parent[r]] != stamp {
					mark[b.parent[r]] = stamp
					cc.Persons++
				}
			}
		}
		if len(cc.Sources) == 0 {
			continue
		}
		ratio := float64(cc.Persons) / float64(cat.Serious)
		cc.Level = level(ratio)
		s.Combined += ratio
		s.Categories = append(s.Categories, cc)
	}
	s.CombinedLevel = level(s.Combined)
	stamp := stamp0 + uint32(len(Categories))
	for i, src := range b.sources {
		if _, ok := LookupCategory(src.Category); ok {
			continue
		}
		for r := b.lo[i]; r < b.lo[i+1]; r++ {
			if b.holds(r) && mark[b.parent[r]] != stamp {
				mark[b.parent[r]] = stamp
				s.Uncategorized++
			}
		}
	}
	return s
}
