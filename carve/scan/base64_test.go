package scan

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/evidx/evidx/internal/testutil"
)

// mimeMail builds a MIME message with Python's email package: a
// quoted-printable text part and a base64 attachment of the given text;
// also a bare base64 run from coreutils' base64.
func mimeMail(t *testing.T, qpText, attText string) []byte {
	py := testutil.NeedTool(t, "python3")
	script := `
import sys
from email.message import EmailMessage
from email import policy
m = EmailMessage(policy=policy.SMTP)
m['From'] = 'sender@mail.invalid'
m['Subject'] = 'records'
qp, att = sys.stdin.read().split('\x00')
m.set_content(qp, cte='quoted-printable')
m.add_attachment(att.encode(), maintype='application', subtype='octet-stream', filename='list.txt')
# Python's random boundary is 19 digits between '=' runs, which the card
# finder may take for a card number: a fixed one keeps the test exact.
m.set_boundary('=-=evidx-boundary=-=')
sys.stdout.buffer.write(m.as_bytes())
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(qpText + "\x00" + attText)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBase64AndQP(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 4))
	qpIDs, attIDs, runIDs := idents(rng, 20, "qp"), idents(rng, 20, "att"), idents(rng, 20, "run")
	line := func(ids []ident, pad string) string {
		var b strings.Builder
		for i := 0; i+2 < len(ids); i += 3 {
			// Long lines: the QP encoder breaks them with soft breaks, some
			// in the middle of an identifier; non-ASCII becomes =XX.
			fmt.Fprintf(&b, "%s客户 %s%s 电话%s 身份证%s ", pad, ids[i].text, pad, ids[i+1].text, ids[i+2].text)
		}
		return b.String() + "\n"
	}
	mail := mimeMail(t, line(qpIDs, "="), line(attIDs, ""))
	if !bytes.Contains(mail, []byte("Content-Transfer-Encoding: quoted-printable")) || !bytes.Contains(mail, []byte("Content-Transfer-Encoding: base64")) {
		t.Fatalf("python wrote no QP or base64 part:\n%s", mail)
	}
	cmd := exec.Command(testutil.NeedTool(t, "base64"), "-w", "76")
	cmd.Stdin = strings.NewReader(line(runIDs, ""))
	run, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	path, offs := plantFiles(t, rng, mail, append([]byte("log dump:\n"), run...))
	all := scanImage(t, path)
	// The raw scan of the QP part reads fragments that a soft line break
	// cuts ("q=\r\np.0008@example.com"), as bulk_extractor does: such raw
	// hits inside the mail are no identities, but tolerated; any other
	// stray is a false hit.
	planted := map[string]bool{}
	for _, id := range qpIDs {
		planted[id.key] = true
	}
	var feats []Feature
	for _, f := range all {
		k := string(f.Kind) + ":" + f.Value
		raw := !strings.Contains(f.Path, "-")
		if raw && !planted[k] && f.At >= offs[0] && f.At < offs[0]+int64(len(mail)) && fragmentOf(f.Value, qpIDs) {
			t.Logf("raw fragment of a QP line: %s at %s", f.Value, f.Path)
			continue
		}
		feats = append(feats, f)
	}
	var want []ident
	want = append(append(append(want, qpIDs...), attIDs...), runIDs...)
	want = append(want, ident{"email:sender@mail.invalid", ""})
	which := map[string]string{}
	for _, id := range attIDs {
		which[id.key] = "-BASE64-"
	}
	for _, id := range runIDs {
		which[id.key] = "-BASE64-"
	}
	n := map[string]int{}
	for _, f := range feats {
		n[string(f.Kind)+":"+f.Value]++
	}
	qpSeen := 0
	checkFound(t, feats, want, func(k, p string) bool {
		if n[k] != 1 {
			t.Errorf("%s reported %d times", k, n[k])
		}
		if strings.Contains(p, "-QP-") {
			qpSeen++
		}
		if w := which[k]; w != "" {
			return strings.Contains(p, w)
		}
		return !strings.Contains(p, "-BASE64-")
	})
	if qpSeen == 0 {
		t.Error("nothing needed QP decoding: the test shows nothing")
	}
}

func FuzzBase64(f *testing.F) {
	f.Add([]byte("Content-Transfer-Encoding: base64\n\nemhhbmcuc2FuQGV4YW1wbGUuY29tIDEzODAwMTM4MDAw\n\n"))
	f.Add([]byte("x\nemhhbmcuc2FuQGV4YW1wbGUuY29tIDEzODAwMTM4MDAwIHpoYW5nLnNhbkBleGFtcGxlLmNvbSAx\nMzgwMDEzODAwMCB6aGFuZy5zYW5AZXhhbXBsZS5jb20gMTM4MDAxMzgwMDAgemhhbmcuc2FuQGV4\nYW1wbGUuY29tIDEzODAwMTM4MDAw\n"))
	fuzzDecoder(f)
}

func FuzzQP(f *testing.F) {
	f.Add([]byte("Content-Transfer-Encoding: quoted-printable\r\n\r\n=E5=AE=A2 zhang.san@exa=\r\nmple.com 138=\n00138000\r\n--b--\r\n"))
	fuzzDecoder(f)
}

// fragmentOf reports whether v shares 8 characters in a row with one of
// the identifiers' text.
func fragmentOf(v string, ids []ident) bool {
	v = strings.TrimPrefix(v, "+86")
	for _, id := range ids {
		for k := 0; k+8 <= len(v); k++ {
			if strings.Contains(id.text, v[k:k+8]) {
				return true
			}
		}
	}
	return false
}
