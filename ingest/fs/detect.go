package fs

import (
	"encoding/binary"
	"io"
)

// Signature offsets used by DetectFileSystem (bytes from the volume start).
const (
	oemOff        = 3     // OEM name in a FAT/NTFS/exFAT boot sector
	extSuperOff   = 1024  // ext2/3/4 superblock
	extMagicOff   = 56    // s_magic within the superblock, 0xEF53
	extCompatOff  = 92    // s_feature_compat
	extIncompOff  = 96    // s_feature_incompat
	extROCompOff  = 100   // s_feature_ro_compat
	isoPVDOff     = 32768 // ISO9660 volume descriptor set starts at sector 16 of 2048 bytes
	fat12MaxClust = 4085  // fewer clusters than this: FAT12 (Microsoft FAT spec)
	fat16MaxClust = 65525 // fewer than this: FAT16; else FAT32
)

// DetectFileSystem names the file system on a volume of size bytes from its
// signatures alone: "fat12", "fat16", "fat32", "exfat", "ntfs", "ext2",
// "ext3", "ext4", "iso9660", "apfs", "hfsplus", "hfsx", "zip" or "unknown". It reads at most a few sectors.
func DetectFileSystem(r io.ReaderAt, size int64) string {
	bs := make([]byte, 512)
	if n, _ := r.ReadAt(bs, 0); n >= 30 && string(bs[:4]) == "PK\x03\x04" {
		// A ZIP archive (its first local header) opens as a file system of
		// its members; office documents are refused by the reader.
		return "zip"
	}
	if n, _ := r.ReadAt(bs, 0); n == len(bs) {
		switch string(bs[oemOff : oemOff+8]) {
		case "NTFS    ":
			return "ntfs"
		case "EXFAT   ":
			return "exfat"
		}
		if t := unreadKind(r, bs); t != "" {
			return t
		}
		if t := fatKind(bs); t != "" {
			return t
		}
		// A damaged FAT32 boot sector still has its backup at sector 6.
		if bs[510] != 0x55 || bs[511] != 0xaa || !plausibleMBR(bs) {
			if n, _ := r.ReadAt(bs, 6*512); n == len(bs) && fatKind(bs) == "fat32" {
				return "fat32"
			}
		}
	}
	sb := make([]byte, 1024)
	if n, _ := r.ReadAt(sb, extSuperOff); n == len(sb) && binary.LittleEndian.Uint16(sb[extMagicOff:]) == 0xef53 {
		compat := binary.LittleEndian.Uint32(sb[extCompatOff:])
		incompat := binary.LittleEndian.Uint32(sb[extIncompOff:])
		rocompat := binary.LittleEndian.Uint32(sb[extROCompOff:])
		const (
			compatJournal   = 0x4
			incompatExtents = 0x40
			incompat64bit   = 0x80
			incompatFlexBG  = 0x200
			rocompatHugeFil = 0x8
			rocompatGdtCsum = 0x10
			rocompatDirNlnk = 0x20
			rocompatExtra   = 0x40
			rocompatMetaCs  = 0x400
		)
		switch {
		case incompat&(incompatExtents|incompat64bit|incompatFlexBG) != 0,
			rocompat&(rocompatHugeFil|rocompatGdtCsum|rocompatDirNlnk|rocompatExtra|rocompatMetaCs) != 0:
			return "ext4"
		case compat&compatJournal != 0:
			return "ext3"
		default:
			return "ext2"
		}
	}
	vd := make([]byte, 6)
	if n, _ := r.ReadAt(vd, isoPVDOff); n == len(vd) && string(vd[1:6]) == "CD001" {
		return "iso9660"
	}
	if t := unreadKindDeep(r); t != "" {
		return t
	}
	// NTFS keeps a backup boot sector in the volume's last sector: a
	// wiped first sector does not hide the volume.
	for _, sec := range []int64{512, 4096} {
		if off := size/sec*sec - sec; off > 0 {
			if n, _ := r.ReadAt(bs, off); n == len(bs) && string(bs[oemOff:oemOff+8]) == "NTFS    " && bs[510] == 0x55 && bs[511] == 0xaa {
				return "ntfs"
			}
		}
	}
	return fsUnknown
}

// Unread lists the file systems and volume formats DetectFileSystem names
// that evidx does not read: a volume holding one is named in the disk's
// problems, never shown as empty.
var Unread = map[string]string{
	"xfs": "XFS", "btrfs": "Btrfs",
	"refs": "ReFS", "lvm2": "LVM2 physical volume", "luks": "LUKS encrypted volume",
	"bitlocker": "BitLocker encrypted volume", "f2fs": "F2FS", "swap": "Linux swap",
}

// unreadKind recognises, from the first sector bs and the superblocks
// near it, the volume formats of Unread.
func unreadKind(r io.ReaderAt, bs []byte) string {
	switch {
	case string(bs[oemOff:oemOff+8]) == "-FVE-FS-":
		return "bitlocker"
	case string(bs[oemOff:oemOff+8]) == "ReFS\x00\x00\x00\x00":
		return "refs"
	case string(bs[:4]) == "XFSB":
		return "xfs"
	case string(bs[:6]) == "LUKS\xba\xbe":
		return "luks"
	case string(bs[32:36]) == "NXSB": // APFS container superblock, block 0
		return "apfs"
	}
	return ""
}

// unreadKindDeep looks at the signatures further in: HFS+ (bare or in
// an HFS wrapper) and F2FS at 1024, the LVM2 label in one of the first four sectors, swap at the end
// of the first page, Btrfs at 64 KiB.
func unreadKindDeep(r io.ReaderAt) string {
	b := make([]byte, 4096)
	n, _ := r.ReadAt(b, 0)
	b = b[:n]
	if len(b) >= 1026 {
		switch string(b[1024:1026]) {
		case "H+":
			return "hfsplus"
		case "HX":
			return "hfsx"
		case "BD": // HFS master directory block: an HFS+ volume embedded in it
			if len(b) >= 1024+0x7e && string(b[1024+0x7c:1024+0x7e]) == "H+" {
				return "hfsplus"
			}
		}
	}
	if len(b) >= 1028 && binary.LittleEndian.Uint32(b[1024:]) == 0xf2f52010 {
		return "f2fs"
	}
	for sec := 0; sec < 4 && (sec+1)*512 <= len(b); sec++ {
		if l := b[sec*512:]; string(l[:8]) == "LABELONE" && string(l[24:32]) == "LVM2 001" {
			return "lvm2"
		}
	}
	if len(b) == 4096 && string(b[4086:]) == "SWAPSPACE2" {
		return "swap"
	}
	m := make([]byte, 8)
	if n, _ := r.ReadAt(m, 0x10040); n == 8 && string(m) == "_BHRfS_M" {
		return "btrfs"
	}
	return ""
}

// fatKind validates a FAT BIOS parameter block and classifies it by its
// cluster count, as the FAT specification does. It returns "" when the
// sector is not a plausible FAT boot sector.
func fatKind(bs []byte) string {
	if bs[0] != 0xeb && bs[0] != 0xe9 {
		return ""
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	rsvd := int64(binary.LittleEndian.Uint16(bs[14:]))
	nfats := int64(bs[16])
	rootEnt := int64(binary.LittleEndian.Uint16(bs[17:]))
	tot := int64(binary.LittleEndian.Uint16(bs[19:]))
	media := bs[21]
	fatSz := int64(binary.LittleEndian.Uint16(bs[22:]))
	if tot == 0 {
		tot = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	if fatSz == 0 {
		fatSz = int64(binary.LittleEndian.Uint32(bs[36:]))
	}
	switch bps {
	case 512, 1024, 2048, 4096:
	default:
		return ""
	}
	if spc == 0 || spc&(spc-1) != 0 || rsvd == 0 || nfats == 0 || nfats > 4 || fatSz == 0 || tot == 0 {
		return ""
	}
	if media != 0xf0 && media < 0xf8 {
		return ""
	}
	rootSec := (rootEnt*32 + bps - 1) / bps
	data := tot - rsvd - nfats*fatSz - rootSec
	if data <= 0 {
		return ""
	}
	switch clusters := data / spc; {
	case clusters < fat12MaxClust:
		return "fat12"
	case clusters < fat16MaxClust:
		return "fat16"
	default:
		return "fat32"
	}
}

// plausibleMBR says whether sector 0 carries a partition table, so that a
// disk's sector 6 is never taken for a FAT32 backup boot sector.
func plausibleMBR(s0 []byte) bool {
	return mbrPlausible(parseMBREntries(s0), 0)
}
