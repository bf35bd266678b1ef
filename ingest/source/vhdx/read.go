package vhdx

import (
	"fmt"
	"io"
	"path/filepath"
)

// Size is the virtual disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// Format is "vhdx-fixed", "vhdx-dynamic" or "vhdx-differencing".
func (d *Disk) Format() string { return d.format }

// Files lists the parent files opened, nearest first.
func (d *Disk) Files() []string { return append([]string(nil), d.files...) }

// Problems lists non-fatal findings, one line each.
func (d *Disk) Problems() []string { return append([]string(nil), d.problems...) }

// ReadAt reads virtual-disk bytes.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", filepath.Base(d.name), off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > d.size-off {
		n = int(d.size - off)
		eof = io.EOF
	}
	done := 0
	for done < n {
		o := off + int64(done)
		blk := o / d.blockSize
		in := o % d.blockSize
		m := int(min(int64(n-done), d.blockSize-in))
		if err := d.readBlock(p[done:done+m], blk, in); err != nil {
			return done, err
		}
		done += m
	}
	return n, eof
}

func (d *Disk) readBlock(p []byte, blk, in int64) error {
	idx := blk + blk/d.chunk
	e := d.bat[idx]
	fo := int64(e>>20) * mib
	switch e & 7 {
	case stFull:
		return d.readFile(p, fo+in)
	case stPartial:
		return d.readPartial(p, blk, in, fo)
	default:
		if d.parent != nil {
			_, err := d.parent.ReadAt(p, blk*d.blockSize+in)
			if err == io.EOF {
				err = nil
			}
			return err
		}
		clear(p)
		return nil
	}
}

func (d *Disk) readFile(p []byte, at int64) error {
	if _, err := d.r.ReadAt(p, at); err != nil {
		return fmt.Errorf("%s: data at %#x: %w", filepath.Base(d.name), at, err)
	}
	return nil
}

// readPartial serves a PARTIALLY_PRESENT block sector run by sector run:
// the chunk's sector bitmap says which sectors are in the child.
func (d *Disk) readPartial(p []byte, blk, in, fo int64) error {
	c := blk / d.chunk
	be := d.bat[c*(d.chunk+1)+d.chunk]
	if be&7 != stFull {
		return fmt.Errorf("%s: block %d is partially present but its sector bitmap %d is not present", filepath.Base(d.name), blk, c)
	}
	bmOff := int64(be>>20) * mib
	// Sector number within the chunk of the first sector of this block.
	first := (blk % d.chunk) * (d.blockSize / d.sector)
	s0 := in / d.sector
	s1 := (in + int64(len(p)) - 1) / d.sector
	bm := make([]byte, (s1-s0)/8+2)
	bitBase := (first + s0) &^ 7
	if _, err := d.r.ReadAt(bm[:((first+s1)/8-bitBase/8)+1], bmOff+bitBase/8); err != nil {
		return fmt.Errorf("%s: sector bitmap at %#x: %w", filepath.Base(d.name), bmOff+bitBase/8, err)
	}
	bit := func(s int64) bool {
		k := first + s - bitBase
		return bm[k/8]>>(k%8)&1 != 0
	}
	pos := int64(0)
	for pos < int64(len(p)) {
		s := (in + pos) / d.sector
		child := bit(s)
		end := pos
		for end < int64(len(p)) && bit((in+end)/d.sector) == child {
			end = ((in+end)/d.sector+1)*d.sector - in
		}
		end = min(end, int64(len(p)))
		q := p[pos:end]
		if child {
			if err := d.readFile(q, fo+in+pos); err != nil {
				return err
			}
		} else {
			if _, err := d.parent.ReadAt(q, blk*d.blockSize+in+pos); err != nil && err != io.EOF {
				return err
			}
		}
		pos = end
	}
	return nil
}
