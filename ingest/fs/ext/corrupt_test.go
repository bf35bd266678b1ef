package ext

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidx/evidx/ingest/fs"
	"github.com/evidx/evidx/internal/testutil"
)

// smallImage builds a small ext image (kb KiB, 1 KiB blocks) from a seeded
// tree of a few files, with one deleted file, and returns its bytes.
func smallImage(t testing.TB, mkfs string, kb int, extra ...string) []byte {
	t.Helper()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	for i, p := range []string{"a/b/x.txt", "a/y.bin", "z.txt", "gone.txt"} {
		full := filepath.Join(src, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, bytes.Repeat([]byte{byte('a' + i)}, 500+3000*i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 20 KiB: past the 12 direct blocks of 1 KiB, so ext2/3 need the
	// single indirect block.
	if err := os.WriteFile(filepath.Join(src, "ind.bin"), bytes.Repeat([]byte("indirect"), 2560), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(tmp, "fs.img")
	args := append([]string{"-q", "-F", "-b", "1024", "-d", src}, extra...)
	testutil.Run(t, mkfs, append(args, img, fmt.Sprintf("%dk", kb))...)
	debugfs(t, img, "rm /gone.txt")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// walkBytes walks an in-memory image and returns the paths listed.
func walkBytes(t testing.TB, b []byte) (*FS, map[string]*fs.File, error) {
	e, err := open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, err
	}
	files := map[string]*fs.File{}
	err = e.Walk(context.Background(), func(f *fs.File) error {
		files[f.Path] = f
		if f.Type == "file" && f.Recoverable {
			if r, err := e.Open(f); err == nil {
				_, _ = io.CopyN(io.Discard, r, 8<<20) // sparse files may be huge
			}
		}
		return nil
	})
	if _, uerr := e.Unallocated(); uerr != nil && err == nil {
		err = uerr
	}
	return e, files, err
}

func hasProblem(e *FS, sub string) bool {
	for _, p := range e.Problems() {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

func TestCorrupt(t *testing.T) {
	good := smallImage(t, "mkfs.ext4", 10240) // 2 groups: a backup superblock in group 1
	_, clean, err := walkBytes(t, good)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/a/b/x.txt", "/a/y.bin", "/z.txt", "/gone.txt"} {
		if clean[p] == nil {
			t.Fatalf("clean image lacks %s", p)
		}
	}
	if !clean["/gone.txt"].Deleted || !clean["/gone.txt"].Recoverable {
		t.Errorf("gone.txt: %+v", clean["/gone.txt"])
	}
	inodeOff := func(t *testing.T, b []byte, path string) int64 {
		e, err := open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		off, err := e.inodeLoc(uint32(clean[path].Inode))
		if err != nil {
			t.Fatal(err)
		}
		return off
	}

	t.Run("extents cleared at deletion", func(t *testing.T) {
		// The kernel zeroes i_block of a deleted ext4 inode; debugfs rm
		// does not, so do it by hand: 60 bytes at inode offset 0x28.
		b := bytes.Clone(good)
		off := inodeOff(t, b, "/gone.txt")
		clear(b[off+iBlock : off+iBlock+iBlockLen])
		_, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		f := files["/gone.txt"]
		if f == nil || !f.Deleted || f.Recoverable || f.Err != "extents cleared at deletion" || f.Size == 0 || f.Mtime.IsZero() {
			t.Errorf("gone.txt: %+v", f)
		}
	})
	t.Run("deleted name, inode reallocated", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "r.img")
		if err := os.WriteFile(img, good, 0o644); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(t.TempDir(), "new")
		if err := os.WriteFile(src, []byte("new owner of the inode"), 0o644); err != nil {
			t.Fatal(err)
		}
		// In another directory, so gone.txt's name survives in the root's
		// slack; the new file takes the lowest free inode: gone.txt's.
		debugfs(t, img, "cd /a", "write "+src+" newfile")
		b, _ := os.ReadFile(img)
		_, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		g, nf := files["/gone.txt"], files["/a/newfile"]
		if g == nil || nf == nil || g.Inode != nf.Inode || !g.Deleted || g.Recoverable || !strings.Contains(g.Err, "reallocated") || len(g.Runs) != 0 {
			t.Errorf("gone.txt %+v, newfile %+v", g, nf)
		}
	})
	t.Run("superblock magic flipped uses backup", func(t *testing.T) {
		b := bytes.Clone(good)
		b[superOff+sbMagic] ^= 0x01 // s_magic low byte
		e, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if !hasProblem(e, "using backup superblock at 0x800400") { // (8192+1) blocks of 1 KiB {
			t.Errorf("problems %q", e.Problems())
		}
		if files["/a/b/x.txt"] == nil {
			t.Error("files not listed from the backup superblock")
		}
	})
	t.Run("superblock block size flipped uses backup", func(t *testing.T) {
		b := bytes.Clone(good)
		b[superOff+sbLogBlockSize] = 0x40 // s_log_block_size absurd
		e, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if !hasProblem(e, "s_log_block_size at 0x418") {
			t.Errorf("problems %q", e.Problems())
		}
		if files["/z.txt"] == nil {
			t.Error("z.txt not listed")
		}
	})
	t.Run("not ext", func(t *testing.T) {
		b := make([]byte, 1<<20)
		if Probe(bytes.NewReader(b), int64(len(b))) {
			t.Error("Probe true on zeros")
		}
		if _, err := Open(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrNotExt) {
			t.Errorf("Open on zeros: %v", err)
		}
	})
	t.Run("extent past the end", func(t *testing.T) {
		b := bytes.Clone(good)
		off := inodeOff(t, b, "/a/y.bin")
		// First leaf extent of the in-inode tree: header 12 bytes, then
		// ee_block(4) ee_len(2) ee_start_hi(2) ee_start_lo(4).
		binary.LittleEndian.PutUint32(b[off+iBlock+12+8:], 0x7FFFFFF0)
		e, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		f := files["/a/y.bin"]
		if f == nil || f.Err == "" || f.Recoverable {
			t.Fatalf("y.bin: %+v", f)
		}
		want := "at " + hexOff(off+iBlock+12)
		if !strings.Contains(f.Err, want) {
			t.Errorf("error %q does not name offset %s", f.Err, want)
		}
		if files["/z.txt"] == nil || files["/a/b/x.txt"] == nil {
			t.Error("other files lost")
		}
		_ = e
	})
	t.Run("indirect block past the end", func(t *testing.T) {
		b := smallImage(t, "mkfs.ext2", 1024)
		_, files, err := walkBytes(t, b)
		if err != nil || files["/ind.bin"] == nil {
			t.Fatalf("ext2: %v", err)
		}
		e, _ := open(bytes.NewReader(b), int64(len(b)))
		off, _ := e.inodeLoc(uint32(files["/ind.bin"].Inode))
		ptr := off + iBlock + 4*indSingle // i_block[12]: the single indirect block
		binary.LittleEndian.PutUint32(b[ptr:], 0x00FFFFF0)
		_, files, err = walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		f := files["/ind.bin"]
		if want := "at " + hexOff(ptr); f == nil || !strings.Contains(f.Err, want) || f.Recoverable || len(f.Runs) == 0 {
			t.Errorf("ind.bin: want error naming %s and the direct blocks kept, got %+v", want, f)
		}
		if files["/z.txt"] == nil {
			t.Error("z.txt lost")
		}
	})
	t.Run("directory cycle", func(t *testing.T) {
		tmp := t.TempDir()
		img := filepath.Join(tmp, "c.img")
		if err := os.WriteFile(img, good, 0o644); err != nil {
			t.Fatal(err)
		}
		debugfs(t, img, "ln /a /a/b/loop")
		b, _ := os.ReadFile(img)
		e, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if !hasProblem(e, "directory cycle") {
			t.Errorf("cycle not reported: %q", e.Problems())
		}
		if files["/a/b/loop"] == nil || files["/a/b/x.txt"] == nil || files["/a/b/loop/y.bin"] != nil {
			t.Errorf("listing with cycle wrong: %v", keys(files))
		}
	})
	t.Run("truncated", func(t *testing.T) {
		b := good[:len(good)/3]
		e, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if !hasProblem(e, "read past the end") {
			t.Errorf("truncation not reported: %q", e.Problems())
		}
		if files["/z.txt"] == nil {
			t.Errorf("files lost: %v", keys(files))
		}
	})
	t.Run("directory record damaged", func(t *testing.T) {
		b := bytes.Clone(good)
		off := inodeOff(t, b, "/a")
		// The directory's first data block: first extent's ee_start_lo.
		blk := int64(binary.LittleEndian.Uint32(b[off+iBlock+12+8:]))
		binary.LittleEndian.PutUint16(b[blk*1024+4:], 3) // "." rec_len 3: not a multiple of 4
		e, files, err := walkBytes(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if !hasProblem(e, "directory entry at "+hexOff(blk*1024)) {
			t.Errorf("problems %q", e.Problems())
		}
		if files["/z.txt"] == nil {
			t.Error("z.txt lost")
		}
	})
}

func hexOff(n int64) string { return fmt.Sprintf("%#x", n) }

func keys(m map[string]*fs.File) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzExt walks a small mkfs-made image (ext2 with a block map, or ext4
// with extents and inline data, 256 KiB, 1 KiB blocks) with the fuzz input
// patched in at a byte offset inside its first 64 KiB, where the
// superblock, descriptors, bitmaps, inode tables and the first directories
// lie. The input is a patch, not the whole image: the fuzz engine crawls on
// inputs of many KiB. which >= 128 also truncates the image after the
// patch. Walk, every Open and Unallocated must not panic.
func FuzzExt(f *testing.F) {
	seeds := [][]byte{
		smallImage(f, "mkfs.ext2", 256),
		smallImage(f, "mkfs.ext4", 256, "-O", "^has_journal,inline_data"),
	}
	for i := range seeds {
		f.Add(uint8(i), uint16(superOff+sbBlocksCountLo), []byte{0xff, 0xff})
		f.Add(uint8(i), uint16(superOff+sbInodesPerGroup), []byte{0, 0x10})
		f.Add(uint8(i), uint16(0x800), []byte{0, 0, 0, 0, 0xff}) // group descriptors
		f.Add(uint8(i+128), uint16(0x2000), []byte{1})
	}
	f.Fuzz(func(t *testing.T, which uint8, at uint16, patch []byte) {
		img := bytes.Clone(seeds[int(which&0x7f)%len(seeds)])
		end := min(int(at)+len(patch), len(img))
		copy(img[at:end], patch)
		if which >= 128 {
			img = img[:end] // a truncated image
		}
		_, _, _ = walkBytes(t, img)
	})
}

// TestUnallocatedMatchesFreeCount checks Unallocated against the free block
// count mke2fs writes in the superblock (s_free_blocks_count, bytes 0x0C
// and 0x158), on a 256 MiB ext4 of 1 KiB blocks: 32 groups, most of them
// BLOCK_UNINIT, whose bitmaps are never written and are derived instead.
func TestUnallocatedMatchesFreeCount(t *testing.T) {
	for _, extra := range [][]string{nil, {"-O", "^flex_bg"}, {"-O", "64bit,metadata_csum"}} {
		t.Run(strings.Join(extra, ""), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "u.img")
			args := append([]string{"-q", "-F", "-b", "1024"}, extra...)
			testutil.Run(t, "mkfs.ext4", append(args, img, "256M")...)
			testutil.Unchanged(t, img)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			e, err := open(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			sb := make([]byte, superLen)
			if _, err := f.ReadAt(sb, superOff); err != nil {
				t.Fatal(err)
			}
			free := uint64(binary.LittleEndian.Uint32(sb[0x0C:]))
			if e.sb.incompat&incompat64bit != 0 {
				free |= uint64(binary.LittleEndian.Uint32(sb[0x158:])) << 32
			}
			uninit := 0
			for _, g := range e.groups {
				if g.flags&bgBlockUninit != 0 {
					uninit++
				}
			}
			un, err := e.Unallocated()
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			for _, r := range un {
				got += r.Len
			}
			if got/e.sb.blockSize != int64(free) {
				t.Errorf("unallocated %d blocks, superblock says %d free (%d BLOCK_UNINIT groups)", got/e.sb.blockSize, free, uninit)
			}
			if uninit == 0 {
				t.Log("no BLOCK_UNINIT groups")
			}
		})
	}
}
