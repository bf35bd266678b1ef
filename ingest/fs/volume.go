package fs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"

	"github.com/evidx/evidx/internal/parse"
)

// Partition-table layout constants (offsets in bytes within a sector).
const (
	sectorSize     = 512 // bytes per LBA assumed for MBR; GPT also tries 4096
	mbrTableOff    = 446 // first of four 16-byte MBR partition entries
	mbrEntrySize   = 16
	mbrSigOff      = 510 // 0x55 0xAA
	mbrTypeGPT     = 0xee
	maxLogical     = 128 // EBR chain cap: more logical partitions than this is a loop or garbage
	gptHeaderMin   = 92  // bytes of the GPT header that the CRC covers at revision 1.0
	gptMaxEntries  = 1024
	gptMaxEntrySz  = 4096
	gptMinEntrySz  = 128
	gptNameOff     = 56 // UTF-16LE name, 72 bytes, in a GPT entry
	gptNameLen     = 72
	gptSignature   = "EFI PART"
	extendedCHS    = 0x05
	extendedLBA    = 0x0f
	extendedLinux  = 0x85
	schemeMBR      = "mbr"
	schemeGPT      = "gpt"
	schemeNone     = "none"
	fsUnknown      = "unknown"
	maxProblemsLog = 1000 // problems recorded per disk; more are counted, not listed
)

// Sentinel errors of the volume layer.
var (
	ErrTruncated = errors.New("fs: truncated")
	ErrBadGPT    = errors.New("fs: bad GPT header")
	ErrEBRLoop   = errors.New("fs: extended partition chain loops")
)

// ParseError says which structure at which image offset was damaged.
type ParseError = parse.Error

// Partition is one volume of a disk image. Start and Size are bytes in the
// image. Container partitions (MBR extended) are not listed; their logical
// partitions are.
type Partition struct {
	Index      int    `json:"index"`               // MBR: slot 1-4, logical 5+ (as Linux numbers them); GPT: entry number from 1; bare file system: 1
	Start      int64  `json:"start"`               // bytes from the start of the image
	Size       int64  `json:"size"`                // bytes
	Type       string `json:"type"`                // MBR "0x0c", GPT type GUID, "" for a bare file system
	TypeName   string `json:"type_name,omitempty"` // "FAT32 LBA", "Microsoft basic data", ...
	Scheme     string `json:"scheme"`              // "mbr", "gpt" or "none"
	Logical    bool   `json:"logical,omitempty"`   // inside an MBR extended partition
	Name       string `json:"name,omitempty"`      // GPT partition name (data from the evidence)
	GUID       string `json:"guid,omitempty"`      // GPT unique partition GUID
	FileSystem string `json:"filesystem"`          // "fat12","fat16","fat32","exfat","ntfs","ext2","ext3","ext4","iso9660","unknown"
	Error      string `json:"error,omitempty"`     // why the file system could not be opened
	Truncated  bool   `json:"truncated,omitempty"` // the partition runs past the end of the image

	// FS is the opened file system, nil when unknown or unreadable.
	FS FileSystem `json:"-"`
}

// Table is what ReadPartitions found: the scheme and the data partitions in
// table order, with damage recorded as problems.
type Table struct {
	Scheme     string
	Partitions []Partition
	Problems   []string
}

// ReadPartitions reads the partition table of an image of size bytes: GPT
// (primary header at LBA 1, else the backup at the last LBA; CRCs checked),
// MBR with extended partitions (EBR chain walked, loop-safe), or no table,
// in which case the whole image is one partition. It never fails on
// damaged tables: damage becomes Problems and the best reading is returned.
// Partition.FileSystem is set from signatures (DetectFileSystem).
func ReadPartitions(r io.ReaderAt, size int64) (*Table, error) {
	t := &Table{}
	if size < sectorSize {
		t.Scheme = schemeNone
		t.Partitions = []Partition{{Index: 1, Start: 0, Size: size, Scheme: schemeNone}}
		t.detect(r, size)
		if t.Partitions[0].FileSystem != "zip" { // a small archive is no short disk
			t.Problems = append(t.Problems, fmt.Sprintf("image is only %d bytes", size))
		}
		return t, nil
	}
	s0 := make([]byte, sectorSize)
	if _, err := r.ReadAt(s0, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ParseError{Op: "sector 0", Offset: 0, Err: err}
	}
	hasSig := s0[mbrSigOff] == 0x55 && s0[mbrSigOff+1] == 0xaa
	entries := parseMBREntries(s0)
	protective := false
	if hasSig {
		for _, e := range entries {
			if e.typ == mbrTypeGPT {
				protective = true
			}
		}
	}
	// GPT: trusted when the protective MBR says so, and also looked for when
	// sector 0 was wiped (a hybrid or damaged MBR must not hide a GPT).
	if protective || !hasSig {
		if ok := t.readGPT(r, size, protective); ok {
			t.detect(r, size)
			return t, nil
		}
		if protective {
			t.problem("protective MBR but no valid GPT header (primary or backup)")
		}
	}
	// A volume boot sector also ends in 55 AA: a bare FAT/NTFS file system
	// is recognised by its BPB before its boot code is read as a table.
	if fsName := DetectFileSystem(r, size); fsName != fsUnknown || !hasSig || !mbrPlausible(entries, size) {
		t.Scheme = schemeNone
		t.Partitions = []Partition{{Index: 1, Start: 0, Size: size, Scheme: schemeNone}}
		t.detect(r, size)
		return t, nil
	}
	t.Scheme = schemeMBR
	for i, e := range entries {
		if e.typ == 0 || e.count == 0 {
			continue
		}
		start := int64(e.lba) * sectorSize
		length := int64(e.count) * sectorSize
		if isExtended(e.typ) {
			t.readEBRChain(r, size, start, length)
			continue
		}
		t.Partitions = append(t.Partitions, Partition{
			Index: i + 1, Start: start, Size: length, Type: fmt.Sprintf("0x%02x", e.typ),
			TypeName: mbrTypeName(e.typ), Scheme: schemeMBR,
		})
	}
	t.detect(r, size)
	return t, nil
}

// problem records one damage note, capped so a hostile table cannot grow it
// without bound.
func (t *Table) problem(format string, a ...any) {
	if len(t.Problems) < maxProblemsLog {
		t.Problems = append(t.Problems, fmt.Sprintf(format, a...))
	}
}

// detect fills FileSystem and Truncated for every partition.
func (t *Table) detect(r io.ReaderAt, size int64) {
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.Start >= size {
			p.Truncated = true
			p.FileSystem = fsUnknown
			p.Error = fmt.Sprintf("partition starts at %#x, beyond the end of the image (%#x)", p.Start, size)
			continue
		}
		if p.Start+p.Size > size {
			p.Truncated = true
			t.problem("partition %d at %#x: %d bytes long but the image ends after %d", p.Index, p.Start, p.Size, size-p.Start)
		}
		p.FileSystem = DetectFileSystem(io.NewSectionReader(r, p.Start, p.Size), p.Size)
	}
}

type mbrEntry struct {
	status, typ byte
	lba, count  uint32
}

func parseMBREntries(sector []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		b := sector[mbrTableOff+i*mbrEntrySize:]
		es[i] = mbrEntry{
			status: b[0],
			typ:    b[4],
			lba:    binary.LittleEndian.Uint32(b[8:]),
			count:  binary.LittleEndian.Uint32(b[12:]),
		}
	}
	return es
}

// mbrPlausible says whether the four entries look like a partition table:
// boot flags 0x00/0x80 only, at least one non-empty entry, and no entry
// starting at LBA 0 (which would overlap the table itself).
func mbrPlausible(es [4]mbrEntry, size int64) bool {
	n := 0
	for _, e := range es {
		if e.status != 0 && e.status != 0x80 {
			return false
		}
		if e.typ == 0 {
			continue
		}
		if e.lba == 0 || e.count == 0 {
			return false
		}
		n++
	}
	return n > 0
}

func isExtended(typ byte) bool {
	return typ == extendedCHS || typ == extendedLBA || typ == extendedLinux
}

// readEBRChain walks the linked list of extended boot records. Each EBR's
// first entry is a logical partition relative to that EBR; its second entry
// points to the next EBR relative to the start of the extended partition.
// Visited EBRs and a count cap make a looping chain end with a problem.
func (t *Table) readEBRChain(r io.ReaderAt, size, extStart, extLen int64) {
	seen := map[int64]bool{}
	ebr := extStart
	idx := 5
	buf := make([]byte, sectorSize)
	for n := 0; ; n++ {
		if seen[ebr] {
			t.problem("%v", &ParseError{Op: "ebr", Offset: ebr, Err: ErrEBRLoop})
			return
		}
		if n >= maxLogical {
			t.problem("ebr at %#x: more than %d logical partitions, chain not followed further", ebr, maxLogical)
			return
		}
		seen[ebr] = true
		if ebr+sectorSize > size {
			t.problem("%v", &ParseError{Op: "ebr", Offset: ebr, Err: ErrTruncated})
			return
		}
		if _, err := r.ReadAt(buf, ebr); err != nil {
			t.problem("%v", &ParseError{Op: "ebr", Offset: ebr, Err: err})
			return
		}
		if buf[mbrSigOff] != 0x55 || buf[mbrSigOff+1] != 0xaa {
			t.problem("ebr at %#x: no 55 AA signature", ebr)
			return
		}
		es := parseMBREntries(buf)
		if e := es[0]; e.typ != 0 && e.count != 0 {
			start := ebr + int64(e.lba)*sectorSize
			length := int64(e.count) * sectorSize
			if start+length > extStart+extLen {
				t.problem("logical partition %d at %#x: extends past its extended partition (ends %#x)", idx, start, extStart+extLen)
			}
			t.Partitions = append(t.Partitions, Partition{
				Index: idx, Start: start, Size: length, Type: fmt.Sprintf("0x%02x", e.typ),
				TypeName: mbrTypeName(e.typ), Scheme: schemeMBR, Logical: true,
			})
			idx++
		}
		next := es[1]
		if !isExtended(next.typ) || next.lba == 0 {
			return
		}
		ebr = extStart + int64(next.lba)*sectorSize
		if ebr >= extStart+extLen {
			t.problem("ebr link at %#x points to %#x, outside the extended partition", ebr, ebr)
			return
		}
	}
}

// readGPT tries the primary GPT header at LBA 1 and then the backup at the
// last LBA, each with 512- and 4096-byte sectors. It returns true once a
// header and its entry array pass their CRC checks. A missing signature is
// a problem only when a protective MBR promised a GPT; damaged headers
// always are.
func (t *Table) readGPT(r io.ReaderAt, size int64, promised bool) bool {
	var errs []error
	for _, ss := range []int64{512, 4096} {
		if size < 3*ss {
			continue
		}
		if ss == 4096 && len(errs) > 0 && allNoSignature(errs) {
			errs = nil // a 4 KiB-sector disk: nothing at the 512-byte places was ever a GPT
		}
		for _, hdrOff := range []int64{ss, (size/ss - 1) * ss} {
			parts, err := readGPTAt(r, size, ss, hdrOff)
			if err != nil {
				if promised || !errors.Is(err, errNoGPTSignature) {
					errs = append(errs, err)
				}
				continue
			}
			for _, e := range errs {
				t.problem("%v", e)
			}
			if hdrOff != ss {
				t.problem("primary GPT header unusable; partitions read from the backup header at %#x", hdrOff)
			}
			t.Scheme = schemeGPT
			t.Partitions = parts
			return true
		}
	}
	for _, e := range errs {
		t.problem("%v", e)
	}
	return false
}

func allNoSignature(errs []error) bool {
	for _, e := range errs {
		if !errors.Is(e, errNoGPTSignature) {
			return false
		}
	}
	return true
}

// errNoGPTSignature: no "EFI PART" where a GPT header would be.
var errNoGPTSignature = fmt.Errorf("%w: no signature", ErrBadGPT)

func readGPTAt(r io.ReaderAt, size, ss, hdrOff int64) ([]Partition, error) {
	hdr := make([]byte, ss)
	if _, err := r.ReadAt(hdr, hdrOff); err != nil {
		return nil, &ParseError{Op: "gpt header", Offset: hdrOff, Err: err}
	}
	if string(hdr[:8]) != gptSignature {
		return nil, &ParseError{Op: "gpt header", Offset: hdrOff, Err: errNoGPTSignature}
	}
	hsz := int64(binary.LittleEndian.Uint32(hdr[12:]))
	if hsz < gptHeaderMin || hsz > ss {
		return nil, &ParseError{Op: "gpt header", Offset: hdrOff, Err: fmt.Errorf("%w: header size %d", ErrBadGPT, hsz)}
	}
	want := binary.LittleEndian.Uint32(hdr[16:])
	chk := append([]byte(nil), hdr[:hsz]...)
	clear(chk[16:20])
	if got := crc32.ChecksumIEEE(chk); got != want {
		return nil, &ParseError{Op: "gpt header", Offset: hdrOff, Err: fmt.Errorf("%w: header CRC %#08x, stored %#08x", ErrBadGPT, got, want)}
	}
	entLBA := int64(binary.LittleEndian.Uint64(hdr[72:]))
	nEnt := int64(binary.LittleEndian.Uint32(hdr[80:]))
	entSz := int64(binary.LittleEndian.Uint32(hdr[84:]))
	entCRC := binary.LittleEndian.Uint32(hdr[88:])
	if nEnt > gptMaxEntries || entSz < gptMinEntrySz || entSz > gptMaxEntrySz || entSz%8 != 0 {
		return nil, &ParseError{Op: "gpt header", Offset: hdrOff, Err: fmt.Errorf("%w: %d entries of %d bytes", ErrBadGPT, nEnt, entSz)}
	}
	arrOff := entLBA * ss
	if entLBA <= 0 || arrOff/ss != entLBA || arrOff+nEnt*entSz > size {
		return nil, &ParseError{Op: "gpt header", Offset: hdrOff, Err: fmt.Errorf("%w: entry array at LBA %d outside the image", ErrBadGPT, entLBA)}
	}
	arr := make([]byte, nEnt*entSz)
	if _, err := r.ReadAt(arr, arrOff); err != nil {
		return nil, &ParseError{Op: "gpt entries", Offset: arrOff, Err: err}
	}
	if got := crc32.ChecksumIEEE(arr); got != entCRC {
		return nil, &ParseError{Op: "gpt entries", Offset: arrOff, Err: fmt.Errorf("%w: entry array CRC %#08x, stored %#08x", ErrBadGPT, got, entCRC)}
	}
	var parts []Partition
	for i := int64(0); i < nEnt; i++ {
		e := arr[i*entSz : (i+1)*entSz]
		typ := e[0:16]
		if bytes.Equal(typ, make([]byte, 16)) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[32:])
		last := binary.LittleEndian.Uint64(e[40:])
		p := Partition{Index: int(i) + 1, Scheme: schemeGPT, Type: guidString(typ), GUID: guidString(e[16:32]),
			Name: utf16Name(e[gptNameOff : gptNameOff+gptNameLen])}
		p.TypeName = gptTypeNames[p.Type]
		if last < first || last >= 1<<48 { // 1<<48 sectors: beyond any real disk, and keeps *ss from overflowing
			p.Error = fmt.Sprintf("gpt entry %d at %#x: bad LBA range %d-%d", i+1, arrOff+i*entSz, first, last)
			p.FileSystem = fsUnknown
			parts = append(parts, p)
			continue
		}
		p.Start = int64(first) * ss
		p.Size = int64(last-first+1) * ss
		parts = append(parts, p)
	}
	return parts, nil
}

// guidString formats a 16-byte on-disk GUID (first three fields
// little-endian) as the upper-case text form.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]),
		binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// utf16Name decodes a NUL-padded UTF-16LE name.
func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD")
}

var gptTypeNames = map[string]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"48465300-0000-11AA-AA11-00306543ECAC": "Apple HFS+",
	"7C3457EF-0000-11AA-AA11-00306543ECAC": "Apple APFS",
}

func mbrTypeName(t byte) string {
	switch t {
	case 0x01:
		return "FAT12"
	case 0x04, 0x06:
		return "FAT16"
	case 0x0e:
		return "FAT16 LBA"
	case 0x07:
		return "NTFS/exFAT"
	case 0x0b:
		return "FAT32"
	case 0x0c:
		return "FAT32 LBA"
	case 0x82:
		return "Linux swap"
	case 0x83:
		return "Linux"
	case 0x8e:
		return "Linux LVM"
	case 0xee:
		return "GPT protective"
	case 0xef:
		return "EFI System"
	}
	return ""
}
