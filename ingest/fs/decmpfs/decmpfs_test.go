package decmpfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

func header(typ uint32, size uint64) []byte {
	h := []byte("fpmc")
	h = binary.LittleEndian.AppendUint32(h, typ)
	return binary.LittleEndian.AppendUint64(h, size)
}

func TestZlibChunks(t *testing.T) {
	data := bytes.Repeat([]byte("evidx decmpfs "), 2000)
	z := zlibBytes(data)
	got, err := decodeChunk(ZlibFork, z, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("zlib: %v, %d bytes", err, len(got))
	}
	got, err = decodeChunk(ZlibInline, append([]byte{0xff}, data[:100]...), 100)
	if err != nil || !bytes.Equal(got, data[:100]) {
		t.Errorf("raw: %v", err)
	}
	if _, err := decodeChunk(ZlibFork, z[:20], len(data)); err == nil {
		t.Error("cut zlib stream decoded")
	}
	h, rest, err := ParseHeader(append(header(ZlibInline, uint64(len(data))), z...))
	if err != nil || h.InFork() {
		t.Fatal(err)
	}
	if out, err := Inline(h, rest); err != nil || !bytes.Equal(out, data) {
		t.Errorf("inline: %v", err)
	}
}

// TestLZVN decodes a hand-assembled stream using each opcode class
// (opcodes as in Apple's lzvn_decode_base.c).
func TestLZVN(t *testing.T) {
	in := []byte{
		0xe4, 'a', 'b', 'c', 'd', // sml_l: "abcd"
		0x0e,                    // nop
		0x40 | 1<<3 | 0, 4, 'x', // sml_d L=1 M=4 D=4
		0x0f, 5, 0, // lrg_d L=0 M=4 D=5
		0xf3,    // sml_m M=3, D=5
		0xf0, 0, // lrg_m M=16, D=5
		0xa0 | 1<<3 | 0, 1<<2 | 0, 0, // med_d L=1 M=3 D=1
		'z',
		0x46, 'q', // pre_d L=1 M=3 D=1
		0xe0, 0, // lrg_l L=16
	}
	in = append(in, []byte("0123456789abcdef")...)
	in = append(in, 0x06, 0, 0, 0, 0, 0, 0, 0)
	var w []byte
	match := func(d, m int) {
		for range m {
			w = append(w, w[len(w)-d])
		}
	}
	w = append(w, "abcdx"...)
	match(4, 4)
	match(5, 4)
	match(5, 3)
	match(5, 16)
	w = append(w, 'z')
	match(1, 3)
	w = append(w, 'q')
	match(1, 3)
	w = append(w, "0123456789abcdef"...)
	got, err := lzvnDecode(in, len(w))
	if err != nil || !bytes.Equal(got, w) {
		t.Fatalf("lzvn: %v\n got %q\nwant %q", err, got, w)
	}
	if _, err := lzvnDecode(in[:10], len(w)); err == nil {
		t.Error("cut stream decoded")
	}
	if _, err := lzvnDecode([]byte{0x00, 9, 0x06}, 10); err == nil {
		t.Error("distance before the start decoded")
	}
	// In an LZVN resource fork: a table of offsets, its own size first.
	var fork []byte
	fork = binary.LittleEndian.AppendUint32(fork, 8)
	fork = binary.LittleEndian.AppendUint32(fork, uint32(8+len(in)))
	fork = append(fork, in...)
	r, err := NewForkReader(Header{Type: LZVNFork, Size: int64(len(w))}, bytes.NewReader(fork), int64(len(fork)), "f")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, w) {
		t.Errorf("fork: %v", err)
	}
	if _, err := decodeChunk(LZFSEFork, []byte("bvx2\x00\x00\x00\x00"), 10); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("bvx2: %v", err)
	}
}

func TestBadHeaders(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("fpmc"), header(99, 1), header(ZlibInline, 1<<40), append([]byte("xxxx"), header(3, 1)[4:]...)} {
		if _, _, err := ParseHeader(b); err == nil {
			t.Errorf("%q parsed", b)
		}
	}
}

// FuzzDecmpfs decodes damaged attributes and resource forks.
func FuzzDecmpfs(f *testing.F) {
	data := bytes.Repeat([]byte("evidx decmpfs "), 100)
	f.Add(append(header(ZlibInline, uint64(len(data))), zlibBytes(data)...), []byte(nil))
	f.Add(header(LZVNFork, 20), []byte{8, 0, 0, 0, 13, 0, 0, 0, 0xe4, 'a', 'b', 'c', 'd', 0x06})
	f.Fuzz(func(t *testing.T, attr, fork []byte) {
		h, rest, err := ParseHeader(attr)
		if err != nil {
			return
		}
		if !h.InFork() {
			Inline(h, rest)
			return
		}
		r, err := NewForkReader(h, bytes.NewReader(fork), int64(len(fork)), "f")
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(r, 1<<22))
		}
	})
}
