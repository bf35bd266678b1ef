package decmpfs

import "fmt"

// lzvnDecode decodes an LZVN stream (Apple's LZ77 variant, used by decmpfs
// types 7/8 and inside LZFSE "bvxn" blocks) of at most want bytes. Each
// opcode carries a literal length L, a match length M and possibly a new
// match distance D; opcodes without a distance reuse the previous one.
func lzvnDecode(in []byte, want int) ([]byte, error) {
	out := make([]byte, 0, want)
	d := 0
	for i := 0; i < len(in); {
		op := in[i]
		need := func(n int) error {
			if i+n > len(in) {
				return fmt.Errorf("%w: lzvn opcode %#x at %d cut by the end of the chunk", ErrCorrupt, op, i)
			}
			return nil
		}
		var L, M, n int
		switch {
		case op == 0x06: // end of stream (followed by 7 padding bytes)
			return out, nil
		case op == 0x0e || op == 0x16: // nop
			i++
			continue
		case op == 0xf0: // large match, previous distance
			if err := need(2); err != nil {
				return nil, err
			}
			M, n = int(in[i+1])+16, 2
		case op > 0xf0: // small match, previous distance
			M, n = int(op&0xf), 1
		case op == 0xe0: // large literal
			if err := need(2); err != nil {
				return nil, err
			}
			L, n = int(in[i+1])+16, 2
		case op > 0xe0: // small literal
			L, n = int(op&0xf), 1
		case op >= 0xa0 && op < 0xc0: // medium distance: 101LLMMM DDDDDDMM DDDDDDDD
			if err := need(3); err != nil {
				return nil, err
			}
			v := int(in[i+1]) | int(in[i+2])<<8
			L, M, d, n = int(op>>3)&3, (int(op&7)<<2|v&3)+3, v>>2, 3
		case op >= 0x70 && op < 0x80, op >= 0xd0 && op < 0xe0, op < 0x40 && op&7 == 6:
			return nil, fmt.Errorf("%w: lzvn undefined opcode %#x at %d", ErrCorrupt, op, i)
		case op&7 == 7: // large distance: LLMMM111 DDDDDDDD DDDDDDDD
			if err := need(3); err != nil {
				return nil, err
			}
			L, M, d, n = int(op>>6), int(op>>3)&7+3, int(in[i+1])|int(in[i+2])<<8, 3
		case op&7 == 6: // previous distance: LLMMM110
			L, M, n = int(op>>6), int(op>>3)&7+3, 1
		default: // small distance: LLMMMDDD DDDDDDDD
			if err := need(2); err != nil {
				return nil, err
			}
			L, M, d, n = int(op>>6), int(op>>3)&7+3, int(op&7)<<8|int(in[i+1]), 2
		}
		i += n
		if L > 0 {
			if err := need(L); err != nil {
				return nil, err
			}
			if len(out)+L > want {
				return nil, fmt.Errorf("%w: lzvn literal at %d runs past %d bytes", ErrCorrupt, i, want)
			}
			out = append(out, in[i:i+L]...)
			i += L
		}
		if M > 0 {
			if d == 0 || d > len(out) {
				return nil, fmt.Errorf("%w: lzvn match distance %d at output %d", ErrCorrupt, d, len(out))
			}
			if len(out)+M > want {
				return nil, fmt.Errorf("%w: lzvn match at %d runs past %d bytes", ErrCorrupt, i, want)
			}
			// Byte by byte: a match may overlap what it produces.
			for s := len(out) - d; M > 0; M-- {
				out = append(out, out[s])
				s++
			}
		}
	}
	return nil, fmt.Errorf("%w: lzvn stream without an end marker", ErrCorrupt)
}
