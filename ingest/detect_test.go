package ingest

import "testing"

func TestLooksLikeDataset(t *testing.T) {
	for _, tc := range []struct {
		name string
		head string
		want bool
	}{
		{"/a/leak.csv", "name,phone\nZhang,13812345678\nLi,13987654321\n", true},
		{"/a/leak.txt", "alice@example.com----13812345678\nbob@example.cn----13912345678\n", true},
		{"/a/readme.txt", "hello world\nnothing to see\n", false},
		{"/a/page.html", "<a href=mailto:a@b.cn>a@b.cn</a> c@d.cn\n", false},
		{"/a/x.gz", "\x1f\x8b\x08\x00rest", true},
		{"/a/x.db", "SQLite format 3\x00....", true},
		{"/a/x.docx", "PK\x03\x04....", false},
		{"/a/x.bin", "\x00\x01\x02\x03", false},
		{"/a/empty", "", false},
	} {
		if got := LooksLikeDataset(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("LooksLikeDataset(%q, %q) = %v, want %v", tc.name, tc.head, got, tc.want)
		}
	}
}
