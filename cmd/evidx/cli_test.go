package main

import (
	"bytes"
	"testing"
)

// cliResult is one in-process run of the CLI.
type cliResult struct {
	stdout []byte
	stderr string
	err    error // what main would map to an exit code
	code   int   // the exit code main would use
}

// runCLI runs evidx with argv in-process, as main does but without exiting.
func runCLI(t *testing.T, argv ...string) cliResult {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(argv)
	err := root.Execute()
	return cliResult{stdout: out.Bytes(), stderr: errb.String(), err: err, code: exitStatus(err)}
}
