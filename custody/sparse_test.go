package custody

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSparseFile: whatever the write sizes, the file reads back the same
// bytes, and aligned zero blocks take no space.
func TestSparseFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	want := make([]byte, 8<<20)
	// Data at the start, at an odd offset in the middle, at the very end;
	// holes between and a zero run that is not block-aligned.
	for _, r := range [][2]int{{0, 5000}, {3<<20 + 17, 3<<20 + 9000}, {len(want) - 10, len(want)}} {
		for i := r[0]; i < r[1]; i++ {
			want[i] = byte(rng.Uint32() | 1)
		}
	}
	for _, tail := range []int{0, 4096 * 3} { // ending in data, ending in a hole
		data := append(bytes.Clone(want), make([]byte, tail)...)
		for _, step := range []int{1, 4095, 4096, 65536 + 3, len(data)} {
			p := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			sf := newSparseFile(f)
			for i := 0; i < len(data); i += step {
				if _, err := sf.Write(data[i:min(i+step, len(data))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := sf.finish(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, data) {
				t.Fatalf("tail %d step %d: content differs (%d bytes, want %d)", tail, step, len(got), len(data))
			}
			var st syscall.Stat_t
			syscall.Stat(p, &st)
			if used := st.Blocks * 512; used > 1<<20 {
				t.Errorf("tail %d step %d: %d bytes on disk for %d of data", tail, step, used, 5000+9000+10)
			}
		}
	}
}
