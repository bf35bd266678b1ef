package scratch

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets the test binary play a run that is killed: with
// SCRATCH_CHILD set it makes a run directory under it, writes a file,
// prints the directory and waits to be killed.
func TestMain(m *testing.M) {
	if parent := os.Getenv("SCRATCH_CHILD"); parent != "" {
		d, err := New(parent, "run-")
		if err != nil {
			os.Exit(3)
		}
		os.WriteFile(filepath.Join(d.Path, "spill"), []byte("13812345678\n"), 0o600)
		os.Stdout.WriteString(d.Path + "\n")
		select {}
	}
	os.Exit(m.Run())
}

// TestKilledRunSwept: a run killed with SIGKILL leaves its directory; the
// next New removes it, but never the directory of a run still alive.
func TestKilledRunSwept(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "tmp")
	live, err := New(parent, "run-")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if fi, err := os.Stat(live.Path); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("run directory %v, %v: want mode 0700", fi, err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SCRATCH_CHILD="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("child: %v", err)
	}
	dead := strings.TrimSpace(line)

	// While the child lives, its directory is not stale.
	if removed, err := Sweep(parent, "run-"); err != nil || len(removed) != 0 {
		t.Fatalf("sweep with the child alive removed %q (%v)", removed, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(dead, "spill")); err != nil {
		t.Fatalf("the killed run left nothing to sweep: %v", err)
	}

	next, err := New(parent, "run-")
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("killed run's %s still there (%v)", dead, err)
	}
	if _, err := os.Stat(live.Path); err != nil {
		t.Errorf("live run's directory swept: %v", err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("Close left %s (%v)", live.Path, err)
	}
}
