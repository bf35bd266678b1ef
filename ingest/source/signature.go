package source

import (
	"encoding/binary"
	"io"
)

// Unread recognises the media containers evidx does not read, so that an
// image in one is named (in the image's Problems) instead of being taken
// for a raw disk with nothing on it. It returns the format and the offset
// of its signature.
func Unread(r io.ReaderAt, size int64) (format string, offset int64, ok bool) {
	head := make([]byte, 512)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	at := func(off int, sig string) bool {
		return len(head) >= off+len(sig) && string(head[off:off+len(sig)]) == sig
	}
	switch {
	case at(0, "COWD"):
		return "VMware ESX sparse (COWD)", 0, true
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f:
		return "VirtualBox VDI", 0x40, true
	case at(0, "<<< Oracle VM VirtualBox Disk Image >>>"), at(0, "<<< Sun VirtualBox Disk Image >>>"):
		return "VirtualBox VDI", 0, true
	case at(0, "WithoutFreeSpace"), at(0, "WithouFreSpacExt"):
		return "Parallels", 0, true
	case at(0, "sprs"):
		return "Apple sparse image", 0, true
	case at(0, "AFF10\r\n\x00"):
		return "AFF", 0, true
	}
	if size >= 512 {
		var tail [4]byte
		if n, _ := r.ReadAt(tail[:], size-512); n == 4 && string(tail[:]) == "koly" {
			return "Apple disk image (UDIF dmg)", size - 512, true
		}
	}
	return "", 0, false
}
