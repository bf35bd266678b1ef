package vhdx

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// readMetadata reads the metadata table and its items; it returns whether
// the disk has a parent and the parent locator's key/value pairs.
func (d *Disk) readMetadata(off, n int64, base string) (bool, map[string]string, error) {
	if n > 64*mib {
		return false, nil, fmt.Errorf("%s: metadata region at %#x: length %#x too large", base, off, n)
	}
	b := make([]byte, n)
	if _, err := d.r.ReadAt(b, off); err != nil {
		return false, nil, fmt.Errorf("%s: metadata region at %#x: %w", base, off, err)
	}
	if n < 32 || string(b[:8]) != "metadata" {
		return false, nil, fmt.Errorf("%s: metadata table at %#x: bad signature", base, off)
	}
	cnt := int(binary.LittleEndian.Uint16(b[10:]))
	if cnt > 2047 || 32+32*int64(cnt) > n {
		return false, nil, fmt.Errorf("%s: metadata table at %#x: %d entries do not fit", base, off, cnt)
	}
	items := map[[16]byte][]byte{}
	for i := 0; i < cnt; i++ {
		e := b[32+32*i:]
		var g [16]byte
		copy(g[:], e[:16])
		iOff := int64(binary.LittleEndian.Uint32(e[16:]))
		ln := int64(binary.LittleEndian.Uint32(e[20:]))
		if ln == 0 {
			items[g] = nil
			continue
		}
		if iOff < 0x10000 || iOff+ln > n {
			return false, nil, fmt.Errorf("%s: metadata entry %d at %#x: item offset %#x length %#x outside the region", base, i, off+32+32*int64(i), iOff, ln)
		}
		items[g] = b[iOff : iOff+ln]
	}
	need := func(g [16]byte, what string, ln int) ([]byte, error) {
		v, ok := items[g]
		if !ok || len(v) < ln {
			return nil, fmt.Errorf("%s: metadata at %#x: %s item missing or short", base, off, what)
		}
		return v, nil
	}
	fp, err := need(guidFileParams, "file parameters", 8)
	if err != nil {
		return false, nil, err
	}
	d.blockSize = int64(binary.LittleEndian.Uint32(fp))
	flags := binary.LittleEndian.Uint32(fp[4:])
	d.leaveAlloc = flags&1 != 0
	hasParent := flags&2 != 0
	if d.blockSize < mib || d.blockSize > 256*mib || d.blockSize&(d.blockSize-1) != 0 {
		return false, nil, fmt.Errorf("%s: metadata at %#x: block size %d not a power of two in 1 MiB..256 MiB", base, off, d.blockSize)
	}
	vs, err := need(guidDiskSize, "virtual disk size", 8)
	if err != nil {
		return false, nil, err
	}
	d.size = int64(binary.LittleEndian.Uint64(vs))
	ls, err := need(guidLogical, "logical sector size", 4)
	if err != nil {
		return false, nil, err
	}
	d.sector = int64(binary.LittleEndian.Uint32(ls))
	if d.sector != 512 && d.sector != 4096 {
		return false, nil, fmt.Errorf("%s: metadata at %#x: logical sector size %d, want 512 or 4096", base, off, d.sector)
	}
	if ps, err := need(guidPhysical, "physical sector size", 4); err != nil {
		return false, nil, err
	} else if p := binary.LittleEndian.Uint32(ps); p != 512 && p != 4096 {
		d.problems = append(d.problems, fmt.Sprintf("%s: metadata at %#x: physical sector size %d, want 512 or 4096", base, off, p))
	}
	if d.size <= 0 || d.size > 64<<40 || d.size%d.sector != 0 {
		return false, nil, fmt.Errorf("%s: metadata at %#x: virtual disk size %d invalid (0, over 64 TiB, or not a sector multiple)", base, off, d.size)
	}
	d.chunk = (1 << 23) * d.sector / d.blockSize
	if !hasParent {
		return false, nil, nil
	}
	pl, err := need(guidParentLoc, "parent locator", 20)
	if err != nil {
		return false, nil, err
	}
	kv := int(binary.LittleEndian.Uint16(pl[18:]))
	if 20+12*kv > len(pl) {
		return false, nil, fmt.Errorf("%s: parent locator: %d entries do not fit in %d bytes", base, kv, len(pl))
	}
	loc := map[string]string{}
	str := func(o uint32, l uint16) (string, bool) {
		if int64(o)+int64(l) > int64(len(pl)) || l%2 != 0 {
			return "", false
		}
		s := pl[o : int64(o)+int64(l)]
		u := make([]uint16, len(s)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(s[2*i:])
		}
		return string(utf16.Decode(u)), true
	}
	for i := 0; i < kv; i++ {
		e := pl[20+12*i:]
		k, ok1 := str(binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint16(e[8:]))
		v, ok2 := str(binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint16(e[10:]))
		if !ok1 || !ok2 {
			return false, nil, fmt.Errorf("%s: parent locator entry %d: key or value outside the item", base, i)
		}
		loc[k] = v
	}
	return true, loc, nil
}

// guidString formats an on-disk GUID as {XXXXXXXX-XXXX-...}.
func guidString(g [16]byte) string {
	return fmt.Sprintf("{%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15])
}

func (d *Disk) openParent(loc map[string]string, open OpenFunc, chain []string) error {
	base := filepath.Base(d.name)
	if len(chain) > maxDepth {
		return fmt.Errorf("%s: parent chain deeper than %d", base, maxDepth)
	}
	var cands []string
	if rp := loc["relative_path"]; rp != "" {
		rp = strings.ReplaceAll(rp, `\`, "/")
		cands = append(cands, filepath.Join(filepath.Dir(d.name), filepath.Base(rp)), filepath.Join(filepath.Dir(d.name), rp))
	}
	for _, k := range []string{"absolute_win32_path", "volume_path"} {
		if p := loc[k]; p != "" {
			cands = append(cands, strings.ReplaceAll(p, `\`, "/"))
		}
	}
	if len(cands) == 0 {
		return fmt.Errorf("%s: parent locator names no parent path", base)
	}
	if open == nil {
		return fmt.Errorf("%s: needs parent %s but no opener was given", base, cands[0])
	}
	var lastErr error
	for _, p := range cands {
		for _, c := range chain {
			if filepath.Clean(c) == filepath.Clean(p) {
				return fmt.Errorf("%s: parent %s loops back into the chain", base, p)
			}
		}
		r, sz, err := open(p)
		if err != nil {
			lastErr = err
			continue
		}
		par, err := openDepth(r, sz, p, open, append(chain, p))
		if err != nil {
			return fmt.Errorf("%s: parent: %w", base, err)
		}
		if par.size != d.size {
			return fmt.Errorf("%s: parent %s has size %d, child %d", base, p, par.size, d.size)
		}
		if want := loc["parent_linkage"]; !strings.EqualFold(want, guidString(par.dataGUID)) {
			d.problems = append(d.problems, fmt.Sprintf("%s: parent_linkage %s does not match parent %s DataWriteGuid %s", base, want, filepath.Base(p), guidString(par.dataGUID)))
		}
		d.parent = par
		d.files = append(append(d.files, p), par.files...)
		d.problems = append(d.problems, par.problems...)
		return nil
	}
	return fmt.Errorf("%s: parent %s: %v", base, cands[0], lastErr)
}
