package vhd

import (
	"errors"
	"fmt"
	"io"
)

// ReadAt reads virtual-disk bytes (io.EOF at the end). Unallocated blocks
// and sectors whose bitmap bit is 0 read as zeros, or from the parent of a
// differencing disk. Safe for concurrent use.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: read at negative offset %d", d.name, off)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	q := p
	if int64(len(q)) > d.size-off {
		q = q[:d.size-off]
	}
	if d.bat == nil {
		if m, err := d.r.ReadAt(q, off); m < len(q) {
			return m, fmt.Errorf("%s: data at %#x: %w", d.name, off+int64(m), errors.Join(io.ErrUnexpectedEOF, err))
		}
	} else {
		for n := 0; n < len(q); {
			o := off + int64(n)
			b, in := o/d.blockSize, o%d.blockSize
			k := int(min(int64(len(q)-n), d.blockSize-in))
			if err := d.readBlock(q[n:n+k], b, in); err != nil {
				return n, err
			}
			n += k
		}
	}
	if len(q) < len(p) {
		return len(q), io.EOF
	}
	return len(q), nil
}

// readBlock fills q from block b starting in bytes into it.
func (d *Disk) readBlock(q []byte, b, in int64) error {
	e := d.bat[b]
	vo := b*d.blockSize + in
	if e == unallocated {
		return d.fromParent(q, vo)
	}
	start := int64(e) * 512
	data := start + d.bitmapSize
	if data+in+int64(len(q)) > d.fileSize {
		return fmt.Errorf("%s: BAT entry %d at %#x: %w: block at %#x past the end of the file (%d bytes)", d.name, b, d.batOff+4*b, ErrCorrupt, start, d.fileSize)
	}
	bm, err := d.bitmap(b, start)
	if err != nil {
		return err
	}
	// Runs of sectors with the same bit: 1 from this file, 0 from the
	// parent (or zeros).
	for pos := int64(0); pos < int64(len(q)); {
		sec := (in + pos) / 512
		last := (in + int64(len(q)) - 1) / 512
		bit, end := run(bm, sec, last)
		stop := min(int64(len(q)), (end+1)*512-in)
		part := q[pos:stop]
		if bit {
			if m, err := d.r.ReadAt(part, data+in+pos); m < len(part) {
				return fmt.Errorf("%s: block %d at %#x: %w", d.name, b, data+in+pos+int64(m), errors.Join(io.ErrUnexpectedEOF, err))
			}
		} else if err := d.fromParent(part, vo+pos); err != nil {
			return err
		}
		pos = stop
	}
	return nil
}

// run returns the bit of sector sec (bit 7 of byte 0 is sector 0) and the
// last sector up to last that has the same bit.
func run(bm []byte, sec, last int64) (bool, int64) {
	bit := bm[sec/8]&(0x80>>(sec%8)) != 0
	full := byte(0)
	if bit {
		full = 0xff
	}
	s := sec + 1
	for s <= last {
		if s%8 == 0 && s+7 <= last && bm[s/8] == full {
			s += 8
			continue
		}
		if (bm[s/8]&(0x80>>(s%8)) != 0) != bit {
			break
		}
		s++
	}
	return bit, s - 1
}

// fromParent fills q with the parent's bytes at virtual offset vo, zeros
// past the parent's end or without a parent.
func (d *Disk) fromParent(q []byte, vo int64) error {
	if d.parent == nil || vo >= d.parent.size {
		clear(q)
		return nil
	}
	n := int(min(int64(len(q)), d.parent.size-vo))
	if _, err := d.parent.ReadAt(q[:n], vo); err != nil && err != io.EOF {
		return err
	}
	clear(q[n:])
	return nil
}

// bitmap returns block b's sector bitmap, at start in the file, cached.
func (d *Disk) bitmap(b, start int64) ([]byte, error) {
	d.mu.Lock()
	bm, ok := d.bitmaps[b]
	d.mu.Unlock()
	if ok {
		return bm, nil
	}
	bm = make([]byte, d.bitmapSize)
	if m, err := d.r.ReadAt(bm, start); m < len(bm) {
		return nil, fmt.Errorf("%s: sector bitmap of block %d at %#x: %w", d.name, b, start, errors.Join(io.ErrUnexpectedEOF, err))
	}
	d.mu.Lock()
	if d.cached+d.bitmapSize > bitmapCacheBytes {
		// Bounded: start afresh rather than track recency.
		clear(d.bitmaps)
		d.cached = 0
	}
	if _, ok := d.bitmaps[b]; !ok {
		d.bitmaps[b] = bm
		d.cached += d.bitmapSize
	}
	d.mu.Unlock()
	return bm, nil
}
