package main

import (
	"strings"
	"testing"
)

// serve refuses an address beyond loopback without a token (exit 2), before
// it opens the case.
func TestServeNeedsToken(t *testing.T) {
	t.Setenv("EVIDX_SERVE_TOKEN", "")
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		r := runCLI(t, "serve", t.TempDir(), "--listen", addr)
		if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--token") {
			t.Errorf("serve --listen %s: code %d, %v", addr, r.code, r.err)
		}
	}
	r := runCLI(t, "serve", t.TempDir(), "--listen", "127.0.0.1:0")
	if r.code != 1 || r.err == nil || !strings.Contains(r.err.Error(), "not a case directory") {
		t.Errorf("serve on a non-case: code %d, %v", r.code, r.err)
	}
}
